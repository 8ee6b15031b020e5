// Decoded pixels of a dataset at one image size: every image decoded and
// resized once (image-decode.ts), stored as fixed-size uint8 rows in index
// order, so training reads any image with one positioned read.
import type { Storage } from "../storage/storage.js";
import { writeThroughFile } from "../storage/write-through-file.js";
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

/** Builds the cache file if it does not exist yet (written to a temporary file, then committed). */
async function ensureCache(storage: Storage, tenant: string, datasetId: string, index: DatasetIndex, imageSize: number): Promise<string> {
  const keys = datasetKeys(tenant, datasetId);
  const key = keys.decoded(imageSize);
  const rowBytes = imageSize * imageSize * CHANNELS;
  const existing = await storage.stat(key);
  if (existing && existing.size === rowBytes * index.images.length) return key;
  await writeThroughFile(storage, key, async (out) => {
    for (const img of index.images) {
      const source = await storage.localPath(keys.file(img.file));
      await out.write(await decodeResizeRgb(source, imageSize));
    }
  });
  return key;
}

export async function openDecodedCache(storage: Storage, tenant: string, datasetId: string, index: DatasetIndex, imageSize: number): Promise<DecodedCache> {
  const key = await ensureCache(storage, tenant, datasetId, index, imageSize);
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
