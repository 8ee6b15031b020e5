// Frozen-trunk feature cache: the trunk's outputs for every image of a
// dataset at one image size, computed once and reused by every epoch and by
// every job with the same dataset, image size, trunk weights, engine and cut. Stored as
// fixed-size rows in the dataset index's order; least recently used entries
// are deleted to stay under FEATURE_CACHE_BYTES. The meta file, written after
// the rows, records their size and sha256, checked when the cache is opened: a
// torn or altered rows file is computed again, never trained on.
import { createHash } from "node:crypto";
import * as tf from "@tensorflow/tfjs";
import type { CutTensor } from "../network/trunk-split.js";
import { storageKeys } from "../storage/keys.js";
import type { Storage } from "../storage/storage.js";
import { writeThroughFile } from "../storage/write-through-file.js";
import { openRowFile } from "../storage/row-file.js";
import { digestProblem, isFileDigest, readRecord, type FileDigest } from "../storage/file-digest.js";
import type { Logger } from "../log.js";
import { float16ToFloat32, float32ToFloat16 } from "./float16.js";
import type { TrunkRunner } from "./trunk-pool.js";

export type FeatureDtype = "float32" | "float16";

export interface FeatureCacheIdentity {
  tenant: string;
  datasetId: string;
  imageSize: number;
  /** sha256 of the trunk's weights (trunkFingerprint): the same base weights give the same features. */
  trunkFingerprint: string;
  /** The engine that computes the features ("tfjs", "onnxruntime"): engines agree within 1e-4, not bit for bit, so each keeps its own. */
  engine: string;
  cut: CutTensor[];
  dtype: FeatureDtype;
}

interface FeatureCacheMeta extends FeatureCacheIdentity {
  rows: number;
  rowBytes: number;
  bytes: number;
  /** Size and sha256 of the rows file as it was written: checked when the cache is opened. */
  digest: FileDigest;
  lastUsedAt: string;
}

export interface FeatureReader {
  /** One tensor per cut tensor, [rows.length, ...shape], float32. The caller disposes them. */
  read(rows: number[]): Promise<tf.Tensor[]>;
  close(): Promise<void>;
}

export interface FeatureCache {
  identity: FeatureCacheIdentity;
  rows: number;
  /** True when this call computed the features, false when they were already stored. */
  built: boolean;
  open(): Promise<FeatureReader>;
}

function cacheKeys(identity: FeatureCacheIdentity) {
  const hash = createHash("sha256")
    .update(JSON.stringify([identity.imageSize, identity.trunkFingerprint, identity.engine, identity.cut, identity.dtype]))
    .digest("hex")
    .slice(0, 32);
  const base = `${storageKeys.datasetFeatures(identity.tenant, identity.datasetId)}/${hash}`;
  return { data: `${base}.bin`, meta: `${base}.json` };
}

export function trunkFingerprint(trunk: tf.LayersModel): string {
  const hash = createHash("sha256");
  for (const w of trunk.weights) {
    hash.update(`${w.originalName}:${w.shape.join("x")};`);
    hash.update(Buffer.from((w.read().dataSync() as Float32Array).buffer));
  }
  return hash.digest("hex");
}

function elementsPerRow(cut: CutTensor[]): number[] {
  return cut.map((c) => c.shape.reduce((a, b) => a * b, 1));
}

function bytesPerElement(dtype: FeatureDtype): number {
  return dtype === "float16" ? 2 : 4;
}

/** Per-cut arrays for `count` rows -> the row-major bytes stored for them. */
function encodeRows(features: Float32Array[], count: number, elements: number[], dtype: FeatureDtype): Buffer {
  const rowElements = elements.reduce((a, b) => a + b, 0);
  const rows = new Float32Array(count * rowElements);
  for (let r = 0; r < count; r++) {
    let offset = r * rowElements;
    features.forEach((f, c) => {
      rows.set(f.subarray(r * elements[c], (r + 1) * elements[c]), offset);
      offset += elements[c];
    });
  }
  const encoded = dtype === "float16" ? float32ToFloat16(rows) : rows;
  return Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

function decodeRows(bytes: Buffer, count: number, cut: CutTensor[], dtype: FeatureDtype): tf.Tensor[] {
  const elements = elementsPerRow(cut);
  const rowElements = elements.reduce((a, b) => a + b, 0);
  const aligned = new Uint8Array(bytes).buffer; // typed arrays need an aligned, owned buffer
  const values = dtype === "float16" ? float16ToFloat32(new Uint16Array(aligned)) : new Float32Array(aligned);
  return cut.map((c, i) => {
    const start = elements.slice(0, i).reduce((a, b) => a + b, 0);
    const out = new Float32Array(count * elements[i]);
    for (let r = 0; r < count; r++)
      out.set(values.subarray(r * rowElements + start, r * rowElements + start + elements[i]), r * elements[i]);
    return tf.tensor(out, [count, ...c.shape]);
  });
}

export interface EnsureFeatureCacheOptions {
  storage: Storage;
  identity: FeatureCacheIdentity;
  rows: number;
  /** Reads `count` decoded image rows starting at `first` (uint8 RGB). */
  readPixels(first: number, count: number): Promise<Uint8Array>;
  runner: TrunkRunner;
  /** Images per trunk call. */
  chunkRows?: number;
  budgetBytes: number;
  /** Told when a stored cache fails its check and is computed again. */
  log?: Logger;
}

/** The stored meta when its rows can be used as they are; otherwise why not (absent, another shape, torn or altered since written). */
async function checkStored(
  storage: Storage,
  keys: { data: string; meta: string },
  rows: number,
  rowBytes: number,
): Promise<{ meta: FeatureCacheMeta } | { problem: string }> {
  const meta = (await readRecord(storage, keys.meta)) as FeatureCacheMeta | null;
  if (meta === null || typeof meta !== "object") return { problem: `${keys.meta} is missing or unreadable` };
  if (meta.rows !== rows || meta.rowBytes !== rowBytes)
    return { problem: `${keys.data} holds ${meta.rows} rows of ${meta.rowBytes} bytes, ${rows} of ${rowBytes} are needed` };
  if (!isFileDigest(meta.digest) || meta.digest.bytes !== rows * rowBytes) return { problem: `${keys.meta} records no usable digest` };
  const problem = await digestProblem(storage, keys.data, meta.digest);
  return problem === null ? { meta } : { problem };
}

/** Opens the cache for `identity`, computing and storing it first when absent or when the stored rows fail their check. */
export async function ensureFeatureCache(opts: EnsureFeatureCacheOptions): Promise<FeatureCache> {
  const { storage, identity, rows } = opts;
  const keys = cacheKeys(identity);
  const elements = elementsPerRow(identity.cut);
  const rowBytes = elements.reduce((a, b) => a + b, 0) * bytesPerElement(identity.dtype);
  // Checked once here, never per batch: a file changed after this is caught by the row reader's length check at most.
  const stored = await checkStored(storage, keys, rows, rowBytes);
  const built = "problem" in stored;
  let digest: FileDigest;
  if ("problem" in stored) {
    if (await storage.exists(keys.data))
      opts.log?.warn({ datasetId: identity.datasetId, problem: stored.problem }, "feature cache failed its check; computing it again");
    // The old meta must not vouch for rows while they are rewritten.
    await storage.delete(keys.meta);
    digest = await computeInto(opts, keys.data, elements);
  } else {
    digest = stored.meta.digest;
  }
  const meta: FeatureCacheMeta = { ...identity, rows, rowBytes, bytes: rows * rowBytes, digest, lastUsedAt: new Date().toISOString() };
  await storage.put(keys.meta, JSON.stringify(meta));
  await evictLeastRecentlyUsed(storage, opts.budgetBytes, keys.meta);
  const file = await storage.localPath(keys.data);
  return {
    identity,
    rows,
    built,
    async open() {
      const rowsFile = await openRowFile(file, rowBytes);
      return {
        read: async (wanted) => decodeRows(await rowsFile.read(wanted), wanted.length, identity.cut, identity.dtype),
        close: () => rowsFile.close(),
      };
    },
  };
}

/** Chunks go to the runner `parallelism` at a time and are written in row order. */
async function computeInto(opts: EnsureFeatureCacheOptions, key: string, elements: number[]): Promise<FileDigest> {
  const chunkRows = opts.chunkRows ?? 16;
  return writeThroughFile(opts.storage, key, async (write) => {
    const inFlight: Promise<{ features: Float32Array[]; count: number }>[] = [];
    const launch = (first: number) => {
      const count = Math.min(chunkRows, opts.rows - first);
      inFlight.push(opts.readPixels(first, count).then(async (pixels) => ({ features: await opts.runner.run(pixels, count), count })));
    };
    let nextFirst = 0;
    while (nextFirst < opts.rows && inFlight.length < opts.runner.parallelism) {
      launch(nextFirst);
      nextFirst += chunkRows;
    }
    while (inFlight.length > 0) {
      const { features, count } = await inFlight.shift()!;
      if (nextFirst < opts.rows) {
        launch(nextFirst);
        nextFirst += chunkRows;
      }
      await write(encodeRows(features, count, elements, opts.identity.dtype));
    }
  });
}

/** Deletes the least recently used caches until the total is within budget; `keep` (in use) is never deleted. */
async function evictLeastRecentlyUsed(storage: Storage, budgetBytes: number, keep: string): Promise<void> {
  const metas: { key: string; meta: FeatureCacheMeta }[] = [];
  for (const obj of await storage.list(storageKeys.cache("features"))) {
    if (!obj.key.endsWith(".json")) continue;
    try {
      metas.push({ key: obj.key, meta: JSON.parse((await storage.get(obj.key)).toString("utf8")) as FeatureCacheMeta });
    } catch {
      // A cache deleted meanwhile by another worker, or unreadable: nothing to count.
    }
  }
  let total = metas.reduce((sum, m) => sum + m.meta.bytes, 0);
  metas.sort((a, b) => a.meta.lastUsedAt.localeCompare(b.meta.lastUsedAt));
  for (const { key, meta } of metas) {
    if (total <= budgetBytes) break;
    if (key === keep) continue;
    await storage.delete(key);
    await storage.delete(key.replace(/\.json$/, ".bin"));
    total -= meta.bytes;
  }
}
