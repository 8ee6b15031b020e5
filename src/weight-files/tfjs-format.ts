// The TensorFlow.js layers format: model.json (topology + weights manifest) and binary shards, in a
// directory or a zip. Reading it as a weights source, saving a model in it, and loading a model from it.
import fs from "node:fs/promises";
import path from "node:path";
import { buffer as readStream } from "node:stream/consumers";
import * as tf from "@tensorflow/tfjs";
import yauzl from "yauzl";
// Registers our BatchNormalization class, so models loaded from model.json keep Keras' frozen-BN semantics.
import "../network/keras-batch-normalization.js";
import { loadConfig } from "../config.js";
import { archiveLimits, createLimitTracker, tooManyEntries, type ArchiveLimits } from "../datasets/archive-guard.js";
import { unreadable } from "./h5-file.js";
import type { AppError } from "../errors.js";
import { shapeSize, type SourceLayer, type SourceWeight, type WeightsSource } from "./weights-source.js";

/** The TF.js layers format's topology file, in a directory, a zip, a checkpoint or a saved model. */
export const MODEL_JSON = "model.json";
/** Shard size of the tfjs converter: small enough for any HTTP cache or object store. */
const SHARD_BYTES = 4 * 1024 * 1024;
/** A zip's shards are held in memory one at a time; the converter writes 4 MB shards. */
const MAX_ZIP_ENTRY_BYTES = 2 * 1024 ** 3;
/**
 * model.json is parsed whole: ResNet-50 with its head is ~100 KB of topology and manifest, so 16 MiB
 * leaves room for any layers model while a model.json bomb is refused from its declared size.
 */
export const MAX_MODEL_JSON_BYTES = 16 * 1024 ** 2;

/** The dataset archives' limits (entries, uncompressed bytes, compression ratio) with their default settings. */
function defaultZipLimits(): ArchiveLimits {
  return archiveLimits(loadConfig({}));
}

interface ManifestGroup {
  paths: string[];
  weights: { name: string; shape: number[]; dtype: string }[];
}

interface ModelJson {
  modelTopology: unknown;
  weightsManifest: ManifestGroup[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  trainingConfig?: unknown;
}

/** Where model.json and its shards are: a directory or a zip, read through one interface. */
interface TfjsContainer {
  modelJson: Buffer;
  size(file: string): Promise<number | undefined>;
  read(file: string): Promise<Buffer>;
  close(): void;
}

function isModelJson(value: unknown): value is ModelJson {
  if (typeof value !== "object" || value === null) return false;
  const manifest = (value as ModelJson).weightsManifest;
  return (
    "modelTopology" in value &&
    Array.isArray(manifest) &&
    manifest.every(
      (g) =>
        Array.isArray(g?.paths) &&
        g.paths.every((p) => typeof p === "string") &&
        Array.isArray(g.weights) &&
        g.weights.every(
          (w) => typeof w?.name === "string" && Array.isArray(w.shape) && w.shape.every((d) => Number.isInteger(d) && d >= 0),
        ),
    )
  );
}

/** Shard paths are relative to model.json and may not leave its directory. */
function safeRelative(file: string): boolean {
  const normal = path.posix.normalize(file);
  return !path.posix.isAbsolute(normal) && !normal.startsWith("../network/") && normal !== "..";
}

function modelJsonTooLarge(filePath: string, bytes: number): AppError {
  return unreadable(filePath, `${MODEL_JSON} is ${bytes} bytes, more than ${MAX_MODEL_JSON_BYTES}`);
}

async function directoryContainer(modelJsonPath: string): Promise<TfjsContainer> {
  const dir = path.dirname(modelJsonPath);
  const size = (await fs.stat(modelJsonPath)).size;
  if (size > MAX_MODEL_JSON_BYTES) throw modelJsonTooLarge(modelJsonPath, size);
  return {
    modelJson: await fs.readFile(modelJsonPath),
    size: async (file) => (safeRelative(file) ? (await fs.stat(path.join(dir, file)).catch(() => undefined))?.size : undefined),
    read: (file) => fs.readFile(path.join(dir, file)),
    close: () => undefined,
  };
}

/**
 * Checks a zip's entries against the dataset archives' limits before anything is unpacked: the entry
 * count, the declared uncompressed total, and the compression ratio of each entry and of the whole
 * (yauzl refuses an entry that inflates past its declared size, so the declared sizes hold).
 */
function checkZipEntries(archiveBytes: number, entries: Iterable<yauzl.Entry>, limits: ArchiveLimits): void {
  const tracker = createLimitTracker(limits, archiveBytes);
  for (const entry of entries) {
    tracker.entry();
    tracker.checkEntryRatio(entry.fileName, entry.uncompressedSize, entry.compressedSize);
    tracker.addBytes(entry.uncompressedSize);
  }
}

async function zipContainer(zipPath: string, limits: ArchiveLimits): Promise<TfjsContainer> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false }).catch((error: Error) => {
    throw unreadable(zipPath, `not a readable zip archive (${error.message})`);
  });
  try {
    const entries = new Map<string, yauzl.Entry>();
    let count = 0;
    for await (const entry of zip.eachEntry()) {
      // Counted as they are listed: a central directory of millions of entries stops at the limit.
      if (++count > limits.maxEntries) tooManyEntries(limits.maxEntries, count);
      if (!entry.fileName.endsWith("/")) entries.set(entry.fileName, entry);
    }
    checkZipEntries(zip.fileSize, entries.values(), limits);
    // model.json at the root or in one folder (a zipped model directory)
    const modelJsonName = [...entries.keys()]
      .filter((name) => path.posix.basename(name) === MODEL_JSON)
      .sort((a, b) => a.split("/").length - b.split("/").length)[0];
    if (!modelJsonName) throw unreadable(zipPath, `the zip holds no ${MODEL_JSON}`);
    const modelJsonSize = entries.get(modelJsonName)!.uncompressedSize;
    if (modelJsonSize > MAX_MODEL_JSON_BYTES) throw modelJsonTooLarge(zipPath, modelJsonSize);
    const base = path.posix.dirname(modelJsonName);
    const entryOf = (file: string) => (safeRelative(file) ? entries.get(path.posix.join(base, file)) : undefined);
    const read = async (file: string): Promise<Buffer> => {
      const entry = entryOf(file);
      if (!entry) throw unreadable(zipPath, `the zip holds no ${file}`);
      if (entry.uncompressedSize > MAX_ZIP_ENTRY_BYTES) throw unreadable(zipPath, `${file} is larger than ${MAX_ZIP_ENTRY_BYTES} bytes`);
      try {
        return await readStream(await zip.openReadStreamPromise(entry));
      } catch (error) {
        throw unreadable(zipPath, `cannot unpack ${file} (${(error as Error).message})`);
      }
    };
    return {
      modelJson: await read(path.posix.basename(modelJsonName)),
      size: async (file) => entryOf(file)?.uncompressedSize,
      read,
      close: () => zip.close(),
    };
  } catch (error) {
    zip.close();
    throw error;
  }
}

async function openContainer(filePath: string, limits: ArchiveLimits = defaultZipLimits()): Promise<TfjsContainer> {
  const stat = await fs.stat(filePath);
  if (stat.isDirectory()) return directoryContainer(path.join(filePath, MODEL_JSON));
  const handle = await fs.open(filePath, "r");
  const head = Buffer.alloc(4);
  await handle.read(head, 0, 4, 0).finally(() => handle.close());
  if (head.toString("latin1") === "PK\u0003\u0004") return zipContainer(filePath, limits);
  return directoryContainer(filePath);
}

function parseModelJson(filePath: string, container: TfjsContainer): ModelJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(container.modelJson.toString("utf8"));
  } catch {
    throw unreadable(filePath, `${MODEL_JSON} is not JSON`);
  }
  if (!isModelJson(parsed))
    throw unreadable(filePath, `${MODEL_JSON} is not a TensorFlow.js layers model (modelTopology and weightsManifest)`);
  for (const group of parsed.weightsManifest) {
    const bad = group.weights.find((w) => (w.dtype ?? "float32") !== "float32" || "quantization" in w);
    if (bad)
      throw unreadable(
        filePath,
        `weight ${bad.name} is ${bad.dtype}${"quantization" in bad ? " quantized" : ""}; only float32 weights are supported`,
      );
  }
  return parsed;
}

/** Layer names in topology order, descending into nested models, so weights can be put in layer order. */
function topologyLayerNames(topology: unknown): string[] {
  const names: string[] = [];
  const visit = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    const record = node as Record<string, unknown>;
    if (record.model_config) {
      visit(record.model_config);
      return;
    }
    const config = record.config as Record<string, unknown> | unknown[] | undefined;
    const layers = Array.isArray(config) ? config : (config as Record<string, unknown> | undefined)?.layers;
    if (!Array.isArray(layers)) return;
    for (const layer of layers as Record<string, unknown>[]) {
      const nested = (layer?.config as Record<string, unknown> | undefined)?.layers;
      if (Array.isArray(nested)) visit(layer);
      const name = (layer?.config as Record<string, unknown> | undefined)?.name ?? layer?.name;
      if (typeof name === "string") names.push(name);
    }
  };
  visit(topology);
  return names;
}

/**
 * Reads bytes [start, start + length) of a manifest group's shards taken as one stream, one shard at a
 * time: only the shards the range touches are unpacked, and the last one is kept for the next weight
 * (weights are mostly read in order), so at most one shard is held beyond the weight being read.
 */
function groupReader(container: TfjsContainer, group: ManifestGroup, shardSizes: number[]) {
  let cached: { index: number; bytes: Buffer } | undefined;
  const shard = async (index: number): Promise<Buffer> => {
    if (cached?.index !== index) cached = { index, bytes: await container.read(group.paths[index]) };
    return cached.bytes;
  };
  return async (start: number, length: number): Promise<Float32Array> => {
    const out = new Uint8Array(length);
    let shardStart = 0;
    let written = 0;
    for (let i = 0; i < group.paths.length && written < length; i++) {
      const shardEnd = shardStart + shardSizes[i];
      if (start + written < shardEnd) {
        const bytes = await shard(i);
        const from = start + written - shardStart;
        const piece = bytes.subarray(from, Math.min(bytes.length, from + length - written));
        out.set(piece, written);
        written += piece.length;
      }
      shardStart = shardEnd;
    }
    return new Float32Array(out.buffer);
  };
}

/** Each group's shard sizes (as declared by the container), checked against what its manifest describes. */
async function checkShardSizes(filePath: string, container: TfjsContainer, manifest: ManifestGroup[]): Promise<number[][]> {
  const sizes: number[][] = [];
  for (const group of manifest) {
    const expected = group.weights.reduce((sum, w) => sum + shapeSize(w.shape) * 4, 0);
    const groupSizes: number[] = [];
    for (const shard of group.paths) {
      const size = await container.size(shard);
      if (size === undefined) throw unreadable(filePath, `weights shard ${shard} is missing`);
      groupSizes.push(size);
    }
    const found = groupSizes.reduce((a, b) => a + b, 0);
    if (found !== expected) throw unreadable(filePath, `weights shards hold ${found} bytes, the manifest describes ${expected}`);
    sizes.push(groupSizes);
  }
  return sizes;
}

/**
 * A TF.js layers model (a directory, its model.json, or a zip of them) as a weights source. Weights are
 * grouped by layer ("conv1_conv/kernel" belongs to conv1_conv) and put in topology order: tfjs lists
 * trainable weights before non-trainable ones, which is not layer order.
 */
export async function readTfjs(filePath: string, limits?: ArchiveLimits): Promise<WeightsSource> {
  const container = await openContainer(filePath, limits);
  try {
    const modelJson = parseModelJson(filePath, container);
    const shardSizes = await checkShardSizes(filePath, container, modelJson.weightsManifest);
    const order = new Map(topologyLayerNames(modelJson.modelTopology).map((name, i) => [name, i]));
    const byOwner = new Map<string, SourceWeight[]>();
    for (const [g, group] of modelJson.weightsManifest.entries()) {
      const readRange = groupReader(container, group, shardSizes[g]);
      let offset = 0;
      for (const spec of group.weights) {
        const start = offset;
        const bytes = shapeSize(spec.shape) * 4;
        offset += bytes;
        const owner = spec.name.includes("/") ? spec.name.slice(0, spec.name.lastIndexOf("/")) : spec.name;
        if (!byOwner.has(owner)) byOwner.set(owner, []);
        byOwner.get(owner)!.push({
          name: spec.name,
          shape: spec.shape,
          read: () => readRange(start, bytes),
        });
      }
    }
    const owners = [...byOwner.keys()];
    const position = (owner: string) => order.get(owner) ?? order.size + owners.indexOf(owner);
    const layers: SourceLayer[] = owners
      .sort((a, b) => position(a) - position(b))
      .map((owner) => ({ name: owner, weights: byOwner.get(owner)! }));
    return { format: "tfjs", layers, matchBy: "name-or-position", close: () => container.close() };
  } catch (error) {
    container.close();
    throw error;
  }
}

/** Saves `model` as model.json + 4 MB shards in `dir`; model.json is written last, via a rename. */
export async function saveTfjs(model: tf.LayersModel, dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = Buffer.from(new tf.io.CompositeArrayBuffer(artifacts.weightData).slice());
      const count = Math.max(1, Math.ceil(data.length / SHARD_BYTES));
      const paths = Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`);
      for (const [i, name] of paths.entries()) {
        await fs.writeFile(path.join(dir, name), data.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
      }
      const modelJson: ModelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths, weights: (artifacts.weightSpecs ?? []) as ManifestGroup["weights"] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
      };
      const tmp = path.join(dir, `${MODEL_JSON}.tmp-${process.pid}`);
      await fs.writeFile(tmp, JSON.stringify(modelJson));
      await fs.rename(tmp, path.join(dir, MODEL_JSON));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/** Loads a model saved by saveTfjs (or any float32 TF.js layers model): a directory, model.json or a zip. */
export async function loadTfjsModel(filePath: string): Promise<tf.LayersModel> {
  const container = await openContainer(filePath);
  try {
    const modelJson = parseModelJson(filePath, container);
    await checkShardSizes(filePath, container, modelJson.weightsManifest);
    const weightSpecs = modelJson.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[];
    const parts: Buffer[] = [];
    for (const group of modelJson.weightsManifest) for (const shard of group.paths) parts.push(await container.read(shard));
    const data = Buffer.concat(parts);
    const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.length);
    return await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology as object, weightSpecs, weightData }));
  } finally {
    container.close();
  }
}
