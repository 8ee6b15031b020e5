// The frozen trunk run batch by batch in front of the tail, outside the
// gradient tape: how training goes when the trunk's outputs are not cached
// (augmentation on, or FEATURE_CACHE=off). Under the tape every activation of
// the whole network is kept for the backward pass; here only the tail's are,
// so a 224 px batch of 32 fits in the 4 GiB wasm heap (the whole model under
// the tape aborts there). Frozen layers get no gradient either way, so the
// weights are those of training the whole model.
import * as tf from "@tensorflow/tfjs";
import type { Batch, BatchSource } from "../datasets/batch-source.js";
import type { OnnxTrunk } from "../engine/onnx/onnx-trunk.js";
import type { CutTensor } from "../network/trunk-split.js";

/** Images per trunk pass: bounds the activations alive at once. */
const TRUNK_CHUNK = 8;

/** Preprocessed images -> the cut tensors, computed by another engine than TF.js. */
export type TrunkFeatures = (xs: tf.Tensor) => Promise<tf.Tensor[]>;

/** The trunk on ONNX Runtime as a TrunkFeatures: one run per batch (ONNX Runtime bounds its own memory per run). */
export function onnxTrunkFeatures(trunk: OnnxTrunk, cut: CutTensor[]): TrunkFeatures {
  return async (xs) => {
    const count = xs.shape[0];
    const features = await trunk.runPreprocessed((await xs.data()) as Float32Array, count);
    return features.map((values, i) => tf.tensor(values, [count, ...cut[i].shape]));
  };
}

/** `source`'s batches with the images replaced by the trunk's outputs (the cut tensors, in the trunk's output order). */
export function trunkBatches(source: BatchSource, trunk: tf.LayersModel | TrunkFeatures, chunk = TRUNK_CHUNK): BatchSource<tf.Tensor[]> {
  return {
    size: source.size,
    batchSize: source.batchSize,
    batchCount: source.batchCount,
    async *batches(epoch: number): AsyncIterable<Batch<tf.Tensor[]>> {
      for await (const { xs, ys } of source.batches(epoch)) {
        let features: tf.Tensor[];
        try {
          // Inference mode, as Keras runs frozen BatchNormalization layers.
          features =
            typeof trunk === "function"
              ? await trunk(xs)
              : tf.tidy(() => {
                  const out = trunk.predict(xs, { batchSize: chunk });
                  return Array.isArray(out) ? out : [out];
                });
        } catch (error) {
          ys.dispose();
          throw error;
        } finally {
          xs.dispose();
        }
        yield { xs: features, ys };
      }
    },
  };
}
