// `npm run fetch:imagenet [-- --url URL]`: downloads Keras' ImageNet weights for ResNet-50 (notop) to
// IMAGENET_WEIGHTS, for machines with internet. The md5 is checked before the file appears at its
// path (temporary file, then rename), so a failed or corrupt download never leaves a usable-looking file.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.js";
import { IMAGENET_WEIGHTS_MD5, IMAGENET_WEIGHTS_URL } from "../src/weight-files/imagenet.js";

export interface DownloadOptions {
  url: string;
  dest: string;
  md5: string;
}

async function md5Of(file: string): Promise<string | undefined> {
  const hash = createHash("md5");
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch {
    return undefined;
  }
  return hash.digest("hex");
}

/** Downloads `url` to `dest` if `dest` is not already the file with that md5. */
export async function downloadVerified({ url, dest, md5 }: DownloadOptions): Promise<"downloaded" | "present"> {
  if ((await md5Of(dest)) === md5) return "present";
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach ${url} (${cause?.code ?? cause?.message ?? (error as Error).message})`);
  }
  if (!response.ok || !response.body) throw new Error(`${url} answered HTTP ${response.status}`);
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.download-${process.pid}`;
  const hash = createHash("md5");
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body as import("node:stream/web").ReadableStream), hashing, createWriteStream(tmp));
    const found = hash.digest("hex");
    if (found !== md5) throw new Error(`the download from ${url} has md5 ${found}, expected ${md5}`);
    await fs.rename(tmp, dest);
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return "downloaded";
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { url: { type: "string", default: IMAGENET_WEIGHTS_URL } } });
  const dest = loadConfig().imagenetWeights;
  try {
    const result = await downloadVerified({ url: values.url!, dest, md5: IMAGENET_WEIGHTS_MD5 });
    console.log(
      result === "present" ? `${dest} is already there (md5 ${IMAGENET_WEIGHTS_MD5})` : `downloaded ${dest} (md5 ${IMAGENET_WEIGHTS_MD5})`,
    );
    return 0;
  } catch (error) {
    console.error(
      `fetch:imagenet failed: ${(error as Error).message}\n` +
        `Without internet access, download ${IMAGENET_WEIGHTS_URL} on another machine ` +
        `(md5 ${IMAGENET_WEIGHTS_MD5}) and copy it to ${dest} (or point IMAGENET_WEIGHTS at it).`,
    );
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
