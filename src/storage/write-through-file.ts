// Writing an object piece by piece, atomically: the bytes go to a temporary
// file that is flushed to disk and committed under `key` only when `fill`
// succeeds, and removed otherwise. Returns the size and sha256 of what was
// written, taken on the way, for the caller to record (file-digest.ts).
import fs from "node:fs/promises";
import type { Storage } from "./storage.js";
import { createDigester, type FileDigest } from "./file-digest.js";

export async function writeThroughFile(
  storage: Storage,
  key: string,
  fill: (write: (bytes: Uint8Array) => Promise<void>) => Promise<void>,
): Promise<FileDigest> {
  const pending = await storage.beginWrite(key);
  try {
    const digester = createDigester();
    const out = await fs.open(pending.tempPath, "w");
    try {
      await fill(async (bytes) => {
        await out.write(bytes);
        digester.update(bytes);
      });
    } finally {
      await out.close();
    }
    await pending.commit();
    return digester.digest();
  } catch (error) {
    await pending.abort();
    throw error;
  }
}
