// The TensorFlow.js layers format: model.json (topology + weights manifest) and binary shards, in a
// directory or a zip. Reading it as a weights source, saving a model in it, and loading a model from it.
import fs from "node:fs/promises";
import path from "node:path";
import { buffer as readStream } from "node:stream/consumers";
import * as tf from "@tensorflow/tfjs";
import yauzl from "yauzl";
// Registers our BatchNormalization class, so models loaded from model.json keep Keras' frozen-BN semantics.
import "../keras-batch-normalization.js";
import { unreadable } from "./h5-file.js";
import { shapeSize, type SourceLayer, type SourceWeight, type WeightsSource } from "./weights-source.js";

const MODEL_JSON = "model.json";
/** Shard size of the tfjs converter: small enough for any HTTP cache or object store. */
const SHARD_BYTES = 4 * 1024 * 1024;
/** A zip's model.json and shards are held in memory; ResNet-50 with a Flatten head at 512 px is ~1.2 GB. */
const MAX_ZIP_ENTRY_BYTES = 2 * 1024 ** 3;

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
  return !path.posix.isAbsolute(normal) && !normal.startsWith("../") && normal !== "..";
}

async function directoryContainer(modelJsonPath: string): Promise<TfjsContainer> {
  const dir = path.dirname(modelJsonPath);
  return {
    modelJson: await fs.readFile(modelJsonPath),
    size: async (file) => (safeRelative(file) ? (await fs.stat(path.join(dir, file)).catch(() => undefined))?.size : undefined),
    read: (file) => fs.readFile(path.join(dir, file)),
    close: () => undefined,
  };
}

async function zipContainer(zipPath: string): Promise<TfjsContainer> {
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false }).catch((error: Error) => {
    throw unreadable(zipPath, `not a readable zip archive (${error.message})`);
  });
  try {
    const entries = new Map<string, yauzl.Entry>();
    for await (const entry of zip.eachEntry()) {
      if (!entry.fileName.endsWith("/")) entries.set(entry.fileName, entry);
    }
    // model.json at the root or in one folder (a zipped model directory)
    const modelJsonName = [...entries.keys()]
      .filter((name) => path.posix.basename(name) === MODEL_JSON)
      .sort((a, b) => a.split("/").length - b.split("/").length)[0];
    if (!modelJsonName) throw unreadable(zipPath, `the zip holds no ${MODEL_JSON}`);
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

async function openContainer(filePath: string): Promise<TfjsContainer> {
  const stat = await fs.stat(filePath);
  if (stat.isDirectory()) return directoryContainer(path.join(filePath, MODEL_JSON));
  const handle = await fs.open(filePath, "r");
  const head = Buffer.alloc(4);
  await handle.read(head, 0, 4, 0).finally(() => handle.close());
  if (head.toString("latin1") === "PK\u0003\u0004") return zipContainer(filePath);
  return directoryContainer(filePath);
}

function parseModelJson(filePath: string, container: TfjsContainer): ModelJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(container.modelJson.toString("utf8"));
  } catch {
    throw unreadable(filePath, `${MODEL_JSON} is not JSON`);
  }
  if (!isModelJson(parsed)) throw unreadable(filePath, `${MODEL_JSON} is not a TensorFlow.js layers model (modelTopology and weightsManifest)`);
  for (const group of parsed.weightsManifest) {
    const bad = group.weights.find((w) => (w.dtype ?? "float32") !== "float32" || "quantization" in w);
    if (bad) throw unreadable(filePath, `weight ${bad.name} is ${bad.dtype}${"quantization" in bad ? " quantized" : ""}; only float32 weights are supported`);
  }
  return parsed;
}

/** Layer names in topology order, descending into nested models, so weights can be put in layer order. */
function topologyLayerNames(topology: unknown): string[] {
  const names: string[] = [];
  const visit = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    const record = node as Record<string, unknown>;
    if (record.model_config) return visit(record.model_config);
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

/** The shards of each manifest group, read once when the first weight is read. */
function groupReader(container: TfjsContainer, group: ManifestGroup): () => Promise<Buffer[]> {
  let shards: Promise<Buffer[]> | undefined;
  return () => (shards ??= Promise.all(group.paths.map((p) => container.read(p))));
}

/** Bytes [start, start + length) of the shards taken as one stream, copied once into a float32 array. */
function copyRange(shards: Buffer[], start: number, length: number): Float32Array {
  const out = new Uint8Array(length);
  let shardStart = 0;
  let written = 0;
  for (const shard of shards) {
    const from = Math.max(start + written - shardStart, 0);
    if (written < length && from < shard.length) {
      const piece = shard.subarray(from, Math.min(shard.length, from + length - written));
      out.set(piece, written);
      written += piece.length;
    }
    shardStart += shard.length;
  }
  return new Float32Array(out.buffer);
}

async function checkShardSizes(filePath: string, container: TfjsContainer, manifest: ManifestGroup[]): Promise<void> {
  for (const group of manifest) {
    const expected = group.weights.reduce((sum, w) => sum + shapeSize(w.shape) * 4, 0);
    let found = 0;
    for (const shard of group.paths) {
      const size = await container.size(shard);
      if (size === undefined) throw unreadable(filePath, `weights shard ${shard} is missing`);
      found += size;
    }
    if (found !== expected) throw unreadable(filePath, `weights shards hold ${found} bytes, the manifest describes ${expected}`);
  }
}

/**
 * A TF.js layers model (a directory, its model.json, or a zip of them) as a weights source. Weights are
 * grouped by layer ("conv1_conv/kernel" belongs to conv1_conv) and put in topology order: tfjs lists
 * trainable weights before non-trainable ones, which is not layer order.
 */
export async function readTfjs(filePath: string): Promise<WeightsSource> {
  const container = await openContainer(filePath);
  try {
    const modelJson = parseModelJson(filePath, container);
    await checkShardSizes(filePath, container, modelJson.weightsManifest);
    const order = new Map(topologyLayerNames(modelJson.modelTopology).map((name, i) => [name, i]));
    const byOwner = new Map<string, SourceWeight[]>();
    for (const group of modelJson.weightsManifest) {
      const readGroup = groupReader(container, group);
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
          read: async () => copyRange(await readGroup(), start, bytes),
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
    return await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: modelJson.modelTopology as object, weightSpecs, weightData }),
    );
  } finally {
    container.close();
  }
}
