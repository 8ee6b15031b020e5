// Keras 2 HDF5 weights ("legacy" h5: model.save() and model.save_weights() files): reading them as
// Keras' load_weights does, and writing them with the layout, names and attribute types Keras uses.
import fs from "node:fs/promises";
import type * as tf from "@tensorflow/tfjs";
import {
  checkWeightDataset,
  createH5,
  getInFile,
  guardRead,
  isDataset,
  isGroup,
  readFloat32,
  readStringList,
  unreadable,
  writeStringList,
  type Dataset,
  type Group,
  type H5File,
} from "./h5-file.js";
import type { SourceLayer, SourceWeight, WeightsSource } from "./weights-source.js";

/** The Keras version our files claim; their layout is the one Keras 2.x (2.4 to 2.15) reads and writes. */
export const KERAS_VERSION = "2.13.1";

/**
 * A weight's dataset inside its layer group: the name as written, tolerating a missing or extra ":0";
 * checked to be read from the file itself.
 */
function findWeightDataset(filePath: string, layerGroup: Group, weightName: string): Dataset | undefined {
  const alternative = weightName.endsWith(":0") ? weightName.slice(0, -2) : `${weightName}:0`;
  for (const candidate of [weightName, alternative]) {
    const entity = getInFile(filePath, layerGroup, candidate);
    if (isDataset(entity)) {
      checkWeightDataset(filePath, entity);
      return entity;
    }
  }
  return undefined;
}

/** "conv1_conv/kernel:0" -> "conv1_conv"; a bare "kernel" belongs to the group's own layer. */
function ownerOf(weightName: string, layerName: string): string {
  const slash = weightName.lastIndexOf("/");
  return slash < 0 ? layerName : weightName.slice(0, slash);
}

/**
 * The weighted layers of a Keras 2 h5 file, or undefined when the file is not in that format. A nested
 * model saved as one layer (e.g. a ResNet50 used as a layer of a Sequential) lists the weights of all its
 * layers; they are split back into one layer per owner ("conv1_conv/kernel:0" belongs to conv1_conv).
 */
export function readKerasH5(filePath: string, file: H5File): WeightsSource | undefined {
  return guardRead(filePath, () => {
    const modelWeights = getInFile(filePath, file, "model_weights");
    const root = isGroup(modelWeights) ? modelWeights : file;
    const layerNames = readStringList(root, "layer_names");
    if (layerNames === undefined) return undefined;
    const layers: SourceLayer[] = [];
    for (const layerName of layerNames) {
      const group = getInFile(filePath, root, layerName);
      if (!isGroup(group)) throw unreadable(filePath, `layer_names lists "${layerName}" but the file has no group for it`);
      const weightNames = readStringList(group, "weight_names") ?? [];
      const byOwner = new Map<string, SourceWeight[]>();
      for (const weightName of weightNames) {
        const dataset = findWeightDataset(filePath, group, weightName);
        if (!dataset) throw unreadable(filePath, `layer "${layerName}" lists weight "${weightName}" but holds no such dataset`);
        const owner = ownerOf(weightName, layerName);
        if (!byOwner.has(owner)) byOwner.set(owner, []);
        byOwner.get(owner)!.push({
          name: weightName,
          shape: dataset.shape ?? [],
          read: async () => readFloat32(filePath, dataset),
        });
      }
      const nested = byOwner.size > 1;
      for (const [owner, weights] of byOwner) layers.push({ name: nested ? owner : layerName, weights });
    }
    return { format: "keras-h5", layers, matchBy: "name-or-position", close: () => file.close() };
  });
}

export interface KerasWeight {
  /** As Keras 2 names it: "conv1_conv/kernel:0"; also the dataset's path inside the layer's group. */
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface KerasLayer {
  name: string;
  /** Empty for layers without weights (input, activations, pooling...): Keras lists those too. */
  weights: KerasWeight[];
}

/** The layers of a tfjs model with their current values, named as Keras 2 names them. */
export function kerasLayersOf(model: tf.LayersModel): KerasLayer[] {
  return model.layers.map((layer) => ({
    name: layer.name,
    weights: layer.weights.map((variable) => {
      const shortName = variable.originalName.slice(variable.originalName.lastIndexOf("/") + 1);
      const value = variable.read();
      return { name: `${layer.name}/${shortName}:0`, shape: value.shape, data: value.dataSync() as Float32Array };
    }),
  }));
}

/** Keras 2 writes "backend"/"keras_version" on a weights group as ASCII variable-length strings. */
function writeVlenAscii(holder: Group, name: string, value: string): void {
  holder.create_attribute(name, value, null, "A");
}

/**
 * Writes layers as Keras' save_weights_to_hdf5_group: attributes layer_names (every layer, weightless ones
 * included), backend, keras_version; one group per layer with its weight_names attribute and its datasets
 * at `<layer>/<weight name>`, e.g. `conv1_conv/conv1_conv/kernel:0`, float32, contiguous.
 */
export function writeKerasLayers(root: Group, layers: KerasLayer[], layerNamesLimit?: number): void {
  writeStringList(
    root,
    "layer_names",
    layers.map((l) => l.name),
    layerNamesLimit,
  );
  writeVlenAscii(root, "backend", "tensorflow");
  writeVlenAscii(root, "keras_version", KERAS_VERSION);
  for (const layer of layers) {
    const group = root.create_group(layer.name);
    writeStringList(
      group,
      "weight_names",
      layer.weights.map((w) => w.name),
    );
    for (const weight of layer.weights) {
      const parts = weight.name.split("/");
      let parent = group;
      for (const part of parts.slice(0, -1)) {
        const existing = parent.get(part);
        parent = isGroup(existing) ? existing : parent.create_group(part);
      }
      parent.create_dataset({ name: parts[parts.length - 1], data: weight.data, shape: weight.shape, dtype: "<f" });
    }
  }
}

/** Python's json.dumps escapes non-ASCII characters; the model_config attribute is an ASCII string. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The Keras topology JSON tfjs produces, with the class name Keras 2.4+ gives functional models. */
export function kerasModelConfig(model: tf.LayersModel): { class_name: string; config: unknown } {
  const json = model.toJSON(null, false) as unknown as { class_name: string; config: unknown };
  return { class_name: json.class_name === "Model" ? "Functional" : json.class_name, config: json.config };
}

/**
 * Writes `model` as a Keras full-model HDF5 file (what keras.models.load_model opens): root attributes
 * keras_version and backend (UTF-8 variable-length strings) and model_config (ASCII variable-length
 * string), and a model_weights group in Keras 2 naming. Written to a temporary file renamed into place,
 * so `filePath` is never half-written.
 */
export async function saveKerasH5(model: tf.LayersModel, filePath: string): Promise<void> {
  const layers = kerasLayersOf(model);
  const tmpPath = `${filePath}.tmp-${process.pid}-${Date.now()}`;
  let file: H5File | undefined;
  try {
    file = await createH5(tmpPath);
    file.create_attribute("backend", "tensorflow", null, "S");
    file.create_attribute("keras_version", KERAS_VERSION, null, "S");
    file.create_attribute("model_config", asciiJson(kerasModelConfig(model)), null, "A");
    writeKerasLayers(file.create_group("model_weights"), layers);
    file.close();
    file = undefined;
    await fs.rename(tmpPath, filePath);
  } catch (error) {
    file?.close();
    await fs.rm(tmpPath, { force: true });
    throw error;
  }
}
