// Writing an object piece by piece through a file handle, atomically: the
// bytes go to a temporary file that is committed under `key` only when `fill`
// succeeds, and removed otherwise.
import fs, { type FileHandle } from "node:fs/promises";
import type { Storage } from "./storage.js";

export async function writeThroughFile(storage: Storage, key: string, fill: (out: FileHandle) => Promise<void>): Promise<void> {
  const pending = await storage.beginWrite(key);
  try {
    const out = await fs.open(pending.tempPath, "w");
    try {
      await fill(out);
    } finally {
      await out.close();
    }
    await pending.commit();
  } catch (error) {
    await pending.abort();
    throw error;
  }
}
