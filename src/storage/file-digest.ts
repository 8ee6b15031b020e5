// Size and sha256 of the files a resumed job reads (checkpoints, the decoded
// image and trunk feature caches): taken as they are written, recorded in a
// small file written after them, and checked once when they are opened, so a
// torn, truncated or altered file is noticed and never trained on.
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Storage } from "./storage.js";

export interface FileDigest {
  bytes: number;
  sha256: string;
}

export interface Digester {
  update(bytes: Uint8Array): void;
  digest(): FileDigest;
}

export function createDigester(): Digester {
  const hash: Hash = createHash("sha256");
  let bytes = 0;
  return {
    update(chunk) {
      hash.update(chunk);
      bytes += chunk.byteLength;
    },
    digest: () => ({ bytes, sha256: hash.digest("hex") }),
  };
}

/** Streams the file once: memory stays at one read buffer, whatever the file's size. */
export async function digestLocalFile(file: string): Promise<FileDigest> {
  const digester = createDigester();
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) digester.update(chunk as Buffer);
  return digester.digest();
}

export function isFileDigest(value: unknown): value is FileDigest {
  const d = value as FileDigest | null;
  return (
    typeof d === "object" &&
    d !== null &&
    Number.isInteger(d.bytes) &&
    d.bytes >= 0 &&
    typeof d.sha256 === "string" &&
    /^[0-9a-f]{64}$/.test(d.sha256)
  );
}

/** A JSON record written after the file it describes; absent, torn or not JSON reads as null (the file is then unverified). */
export async function readRecord(storage: Storage, key: string): Promise<unknown> {
  try {
    return JSON.parse((await storage.get(key)).toString("utf8")) as unknown;
  } catch {
    return null;
  }
}

/** Why the object under `key` is not the one `expected` describes, or null when it is. */
export async function digestProblem(storage: Storage, key: string, expected: FileDigest): Promise<string | null> {
  const stat = await storage.stat(key);
  if (!stat) return `${key} is missing`;
  // The size first: a truncated file is told apart without reading it.
  if (stat.size !== expected.bytes) return `${key} has ${stat.size} bytes, ${expected.bytes} were written`;
  const actual = await digestLocalFile(await storage.localPath(key));
  if (actual.sha256 !== expected.sha256) return `${key} does not have the sha256 it was written with`;
  return null;
}
