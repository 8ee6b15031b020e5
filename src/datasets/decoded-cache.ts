// Decoded pixels of a dataset at one image size: every image decoded and
// resized once (image-decode.ts), stored as fixed-size uint8 rows in index
// order, so training reads any image with one positioned read. Its size and
// sha256 are stored next to it and checked when it is opened: a torn or
// altered file is decoded again, never trained on.
import type { Storage } from "../storage/storage.js";
import { writeThroughFile } from "../storage/write-through-file.js";
import { digestProblem, isFileDigest, readRecord } from "../storage/file-digest.js";
import type { Logger } from "../log.js";
import { openRowFile } from "../storage/row-file.js";
import { datasetKeys, type DatasetIndex } from "./dataset-store.js";
import { CHANNELS, decodeResizeRgb } from "./image-decode.js";

export interface DecodedCache {
  imageSize: number;
  rowBytes: number;
  count: number;
  /** Opens the file for reading rows; the reader is closed by the caller. */
  open(): Promise<CacheReader>;
}

export interface CacheReader {
  /** Reads rows (index rows) into one buffer, in the order given. */
  read(rows: number[]): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * Why the stored cache cannot be used as it is (absent, a size that does not fit the index, torn or
 * altered since it was written), or null when it can: checked once per open, not per read.
 */
async function cacheProblem(storage: Storage, key: string, digestKey: string, expectedBytes: number): Promise<string | null> {
  const digest = await readRecord(storage, digestKey);
  if (!isFileDigest(digest)) return `${digestKey} is missing or unreadable`;
  if (digest.bytes !== expectedBytes) return `${key} was written for another index`;
  return digestProblem(storage, key, digest);
}

/** Builds the cache file unless a good one is stored (written to a temporary file, then committed, then its digest). */
async function ensureCache(
  storage: Storage,
  tenant: string,
  datasetId: string,
  index: DatasetIndex,
  imageSize: number,
  log?: Logger,
): Promise<string> {
  const keys = datasetKeys(tenant, datasetId);
  const key = keys.decoded(imageSize);
  const digestKey = keys.decodedDigest(imageSize);
  const rowBytes = imageSize * imageSize * CHANNELS;
  const problem = await cacheProblem(storage, key, digestKey, rowBytes * index.images.length);
  if (problem === null) return key;
  if (await storage.exists(key)) log?.warn({ datasetId, imageSize, problem }, "decoded-image cache failed its check; decoding again");
  // A digest left from an earlier file must not vouch for the new one while it is written.
  await storage.delete(digestKey);
  const digest = await writeThroughFile(storage, key, async (write) => {
    for (const img of index.images) {
      const source = await storage.localPath(keys.file(img.file));
      await write(await decodeResizeRgb(source, imageSize));
    }
  });
  await storage.put(digestKey, JSON.stringify(digest));
  return key;
}

export async function openDecodedCache(
  storage: Storage,
  tenant: string,
  datasetId: string,
  index: DatasetIndex,
  imageSize: number,
  log?: Logger,
): Promise<DecodedCache> {
  const key = await ensureCache(storage, tenant, datasetId, index, imageSize, log);
  const rowBytes = imageSize * imageSize * CHANNELS;
  const file = await storage.localPath(key);
  return {
    imageSize,
    rowBytes,
    count: index.images.length,
    open: () => openRowFile(file, rowBytes),
  };
}

/** `count` consecutive rows from `first`, e.g. to run every image of the table through a model in order. */
export async function readDecodedRange(cache: DecodedCache, first: number, count: number): Promise<Buffer> {
  const reader = await cache.open();
  try {
    return await reader.read(Array.from({ length: count }, (_, i) => first + i));
  } finally {
    await reader.close();
  }
}
