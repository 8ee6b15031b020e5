// Keras-layout HDF5 weights files made from a tfjs model, for tests: a Keras 2 save_weights file (with
// options to rename, drop or reshape layers, add the ImageNet top, split layer_names, nest the base)
// and a Keras 3 .weights.h5 file. Written with h5wasm directly: a 32 px ResNet-50 file takes about a second.
import type * as tf from "@tensorflow/tfjs";
import { createH5 } from "../../src/weight-files/h5-file.js";
import { keras3Keys } from "../../src/weight-files/keras3.js";
import { kerasLayersOf, writeKerasLayers, type KerasLayer } from "../../src/weight-files/keras-h5.js";

export interface KerasWeightsFileOptions {
  /** New layer names (weight names follow), e.g. the Keras 2.2 ResNet-50 naming. */
  rename?: (name: string) => string;
  /** Append Keras' include_top=True layers: avg_pool and predictions (Dense 2048 -> 1000). */
  includeTop?: boolean;
  /** Leave these layers out entirely. */
  drop?: string[];
  /** Give one weight of a layer another shape (filled with zeros). */
  reshape?: { layer: string; weight: number; shape: number[] };
  /** Weight names without Keras' ":0" suffix (as some writers store them). */
  withoutColonZero?: boolean;
  /** Split layer_names into layer_names0, layer_names1... when larger than this many bytes. */
  layerNamesLimit?: number;
  /** Save the model as one nested layer of this name, as a Sequential([base, ...]) in Keras 2 does. */
  nestAs?: string;
}

function seededValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (state * 1664525 + 1013904223) >>> 0;
    out[i] = state / 2 ** 32 - 0.5;
  }
  return out;
}

function transform(layers: KerasLayer[], options: KerasWeightsFileOptions): KerasLayer[] {
  const { rename = (n: string) => n, drop = [], reshape, withoutColonZero, includeTop } = options;
  let out = layers
    .filter((layer) => !drop.includes(layer.name))
    .map((layer) => {
      const name = rename(layer.name);
      const weights = layer.weights.map((w, i) => {
        const short = w.name.slice(w.name.lastIndexOf("/") + 1);
        const renamed = { ...w, name: `${name}/${withoutColonZero ? short.replace(/:0$/, "") : short}` };
        if (reshape?.layer !== layer.name || reshape.weight !== i) return renamed;
        return { ...renamed, shape: reshape.shape, data: new Float32Array(reshape.shape.reduce((a, b) => a * b, 1)) };
      });
      return { name, weights };
    });
  if (includeTop) {
    out.push({ name: "avg_pool", weights: [] });
    out.push({
      name: "predictions",
      weights: [
        { name: "predictions/kernel:0", shape: [2048, 1000], data: seededValues(2048 * 1000, 7) },
        { name: "predictions/bias:0", shape: [1000], data: seededValues(1000, 8) },
      ],
    });
  }
  if (options.nestAs) {
    // A nested model is one layer whose weight_names are its layers' own names.
    out = [{ name: options.nestAs, weights: out.flatMap((l) => l.weights) }];
  }
  return out;
}

/** A Keras 2 `model.save_weights("x.h5")` file of `model`'s current weights (layout at the file's root). */
export async function writeKerasWeightsFile(model: tf.LayersModel, filePath: string, options: KerasWeightsFileOptions = {}): Promise<void> {
  const file = await createH5(filePath);
  try {
    writeKerasLayers(file, transform(kerasLayersOf(model), options), options.layerNamesLimit);
  } finally {
    file.close();
  }
}

/** A Keras 3 `model.save_weights("x.weights.h5")` file: layers/<snake_case_class>[_n]/vars/<i>. */
export async function writeKeras3WeightsFile(model: tf.LayersModel, filePath: string): Promise<void> {
  const keys = keras3Keys(model.layers);
  const layers = kerasLayersOf(model);
  const file = await createH5(filePath);
  try {
    file.create_group("vars");
    const container = file.create_group("layers");
    layers.forEach((layer, i) => {
      const vars = container.create_group(keys[i]).create_group("vars");
      layer.weights.forEach((w, j) => {
        vars.create_dataset({ name: String(j), data: w.data, shape: w.shape, dtype: "<f" });
      });
    });
  } finally {
    file.close();
  }
}
