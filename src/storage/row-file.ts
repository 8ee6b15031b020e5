// Reading a table of fixed-size rows stored as one local file (decoded
// images, cached trunk features): any rows, in the order asked, with one
// positioned read each.
import fs from "node:fs/promises";

export interface RowFileReader {
  read(rows: number[]): Promise<Buffer>;
  close(): Promise<void>;
}

export async function openRowFile(file: string, rowBytes: number): Promise<RowFileReader> {
  const handle = await fs.open(file, "r");
  return {
    async read(rows) {
      const buf = Buffer.allocUnsafe(rows.length * rowBytes);
      for (const [i, row] of rows.entries()) {
        const { bytesRead } = await handle.read(buf, i * rowBytes, rowBytes, row * rowBytes);
        if (bytesRead !== rowBytes) throw new Error(`${file} is shorter than its ${rowBytes}-byte rows say (row ${row})`);
      }
      return buf;
    },
    close: () => handle.close(),
  };
}
