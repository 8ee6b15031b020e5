// A small, seeded conv net shaped like the transfer head (conv, Flatten,
// Dense relu, Dropout, Dense softmax) and generated two-class images as
// batch sources: fast stand-ins for ResNet-50 in training tests.
import * as tf from "@tensorflow/tfjs";
import type { BatchSource } from "../../src/datasets/batch-source.js";
import { arrayBatchSource } from "./array-batch-source.js";
import { twoClassImages } from "./generated-images.js";

export const SMALL_SIZE = 8;

export function smallModel(seed: number, dropout = 0.5): tf.LayersModel {
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: seed + offset });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [SMALL_SIZE, SMALL_SIZE, 3],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: init(0),
        name: "conv",
      }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({ units: 8, activation: "relu", kernelInitializer: init(1), name: "dense" }),
      tf.layers.dropout({ rate: dropout, name: "dropout" }),
      tf.layers.dense({ units: 2, activation: "softmax", kernelInitializer: init(2), name: "predictions" }),
    ],
  });
}

export interface SmallData {
  source: BatchSource;
  labels: number[];
  dispose(): void;
}

/** Generated images scaled to about [-1, 1], as a batch source. */
export function smallData(seed: number, perClass = 12, batchSize = 5): SmallData {
  const images = twoClassImages({ perClass, size: SMALL_SIZE, seed });
  const xs = tf.tidy(() => images.xs.div(127.5).sub(1)) as tf.Tensor4D;
  images.xs.dispose();
  return {
    source: arrayBatchSource(xs, images.ys, batchSize, seed),
    labels: images.labels,
    dispose: () => tf.dispose([xs, images.ys]),
  };
}

export async function weightValues(model: tf.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array));
}
