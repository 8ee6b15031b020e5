// An in-memory BatchSource over tensors already in memory: the training
// tests' data, shuffled per (seed, epoch) as the contract says.
import * as tf from "@tensorflow/tfjs";
import type { Batch, BatchSource } from "../../src/datasets/batch-source.js";
import { mixSeed, shuffledIndices } from "../../src/datasets/seeded-random.js";

/** `xs` [n, h, w, c] and one-hot `ys` [n, classes] stay owned by the caller. */
export function arrayBatchSource(xs: tf.Tensor4D, ys: tf.Tensor2D, batchSize: number, seed: number): BatchSource {
  const size = xs.shape[0];
  return {
    size,
    batchSize,
    batchCount: Math.ceil(size / batchSize),
    async *batches(epoch: number): AsyncIterable<Batch> {
      const order = shuffledIndices(size, mixSeed(seed, epoch));
      for (let start = 0; start < size; start += batchSize) {
        const indices = tf.tensor1d(order.slice(start, start + batchSize), "int32");
        const batch = { xs: tf.gather(xs, indices), ys: tf.gather(ys, indices) };
        indices.dispose();
        yield batch;
      }
    },
  };
}
