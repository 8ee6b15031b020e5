// Keras 3 `.weights.h5` files (model.save_weights in Keras 3, also inside `.keras` archives): one group
// per layer under `layers/`, keyed by the layer's class in snake case with a per-class counter
// (`conv2d`, `conv2d_1`, ...), its variables as datasets `vars/0`, `vars/1`... in layer.weights order.
import type * as tf from "@tensorflow/tfjs";
import { checkWeightDataset, getInFile, guardRead, isDataset, isGroup, readFloat32, type H5File } from "./h5-file.js";
import type { SourceLayer, WeightsSource } from "./weights-source.js";

/** Keras 2.13-2.15 wrote the same layout under `_layer_checkpoint_dependencies`. */
const LAYER_CONTAINERS = ["layers", "_layer_checkpoint_dependencies"];

/** keras.src.utils.naming.to_snake_case. */
export function toSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, "")
    .replace(/(.)([A-Z][a-z]+)/g, "$1_$2")
    .replace(/([a-z])([A-Z])/g, "$1_$2")
    .toLowerCase();
}

/** The key Keras 3 saves each layer under, in model.layers order: `conv2d`, `conv2d_1`, ... */
export function keras3Keys(layers: readonly tf.layers.Layer[]): string[] {
  const used = new Map<string, number>();
  return layers.map((layer) => {
    const base = toSnakeCase(layer.getClassName());
    const count = used.get(base);
    used.set(base, count === undefined ? 0 : count + 1);
    return count === undefined ? base : `${base}_${count + 1}`;
  });
}

/** The weighted layers of a Keras 3 weights file, or undefined when the file is not in that format. */
export function readKeras3(filePath: string, file: H5File): WeightsSource | undefined {
  return guardRead(filePath, () => {
    const container = LAYER_CONTAINERS.map((name) => getInFile(filePath, file, name)).find(isGroup);
    if (!container) return undefined;
    const layers: SourceLayer[] = [];
    for (const key of container.keys()) {
      const vars = getInFile(filePath, container, `${key}/vars`);
      if (!isGroup(vars)) continue;
      const indices = vars
        .keys()
        .filter((k) => /^\d+$/.test(k))
        .sort((a, b) => Number(a) - Number(b));
      const weights = indices.flatMap((index) => {
        const dataset = getInFile(filePath, vars, index);
        if (!isDataset(dataset)) return [];
        checkWeightDataset(filePath, dataset);
        return [{ name: `vars/${index}`, shape: dataset.shape ?? [], read: async () => readFloat32(filePath, dataset) }];
      });
      if (weights.length > 0) layers.push({ name: key, weights });
    }
    return { format: "keras3", layers, matchBy: "keras3-key", close: () => file.close() };
  });
}
