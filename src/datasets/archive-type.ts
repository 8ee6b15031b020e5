// Recognises archives by their first bytes, never by their names: the upload
// itself, and (to refuse them) archives nested inside it.
import fs from "node:fs/promises";
import { createGunzip } from "node:zlib";

export type ArchiveType = "zip" | "tar" | "tar.gz";

/** Bytes needed to recognise every supported header (a tar header block). */
export const ARCHIVE_HEAD_BYTES = 512;

const ZIP_LOCAL = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const ZIP_EMPTY = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
const GZIP = Buffer.from([0x1f, 0x8b]);

/** A POSIX/GNU tar header: "ustar" at 257, or (old v7 tar) a header whose checksum adds up. */
function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  if (block.subarray(257, 262).toString("latin1") === "ustar") return true;
  const stored = parseInt(block.subarray(148, 156).toString("latin1").replace(/\0.*$/s, "").trim(), 8);
  if (!Number.isFinite(stored) || block[0] === 0) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === stored;
}

/** Any archive or compressed stream (zip, tar, gzip, bzip2, xz, 7z, rar, zstd): what a dataset must not contain. */
export function looksLikeArchive(head: Buffer): boolean {
  const starts = (sig: number[]) => sig.every((b, i) => head[i] === b);
  return (
    starts([...ZIP_LOCAL]) ||
    starts([...ZIP_EMPTY]) ||
    starts([...GZIP]) ||
    starts([0x42, 0x5a, 0x68]) || // bzip2
    starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) || // xz
    starts([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]) || // 7z
    starts([0x52, 0x61, 0x72, 0x21, 0x1a, 0x07]) || // rar
    starts([0x28, 0xb5, 0x2f, 0xfd]) || // zstd
    isTarHeader(head)
  );
}

async function readHead(filePath: string, bytes: number): Promise<Buffer> {
  const handle = await fs.open(filePath, "r");
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The first tar block inside a gzip file, or what decompresses before the stream fails. */
async function gunzipHead(filePath: string): Promise<Buffer> {
  const handle = await fs.open(filePath, "r");
  const gunzip = createGunzip();
  const stream = handle.createReadStream();
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    await new Promise<void>((resolve) => {
      const finish = () => resolve();
      gunzip.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
        if (length >= 512) finish();
      });
      gunzip.on("end", finish);
      gunzip.on("error", finish);
      stream.on("error", finish);
      stream.pipe(gunzip);
    });
  } finally {
    stream.unpipe(gunzip);
    stream.destroy();
    gunzip.destroy();
    await handle.close().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, 512);
}

/** The archive type of a file by content, or null when it is none we accept. */
export async function detectArchiveType(filePath: string): Promise<ArchiveType | null> {
  const head = await readHead(filePath, ARCHIVE_HEAD_BYTES);
  if (head.subarray(0, 4).equals(ZIP_LOCAL) || head.subarray(0, 4).equals(ZIP_EMPTY)) return "zip";
  if (head.subarray(0, 2).equals(GZIP)) return isTarHeader(await gunzipHead(filePath)) ? "tar.gz" : null;
  return isTarHeader(head) ? "tar" : null;
}
