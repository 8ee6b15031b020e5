// The frozen trunk in front of the tail when its outputs are not cached
// (augmentation, FEATURE_CACHE=off): split the model, and compute each batch's
// cut tensors on the job's engine (TF.js, or the trunk's ONNX graph).
import type * as tf from "@tensorflow/tfjs";
import type { BatchSource } from "../datasets/batch-source.js";
import type { EngineName } from "../engine/engine.js";
import { createOnnxTrunk, type OnnxTrunk } from "../engine/onnx/onnx-trunk.js";
import type { TransferModel } from "../network/transfer-model.js";
import { splitAtFrozenBoundary } from "../network/trunk-split.js";
import { onnxTrunkFeatures, trunkBatches } from "./trunk-batches.js";

export interface StreamedTrunk {
  /** What training trains: the tail shares the full model's layers. */
  tail: tf.LayersModel;
  /** `source`'s batches with the images replaced by the cut tensors. */
  batches(source: BatchSource): BatchSource<tf.Tensor[]>;
  close(): Promise<void>;
}

/** null when nothing before the head is frozen: train the whole model on its images. */
export async function prepareStreamedTrunk(
  tm: TransferModel,
  unfrozenLayers: number,
  imageSize: number,
  engine: EngineName,
): Promise<StreamedTrunk | null> {
  const split = splitAtFrozenBoundary(tm, unfrozenLayers);
  if (!split) return null;
  const onnx: OnnxTrunk | null = engine === "onnxruntime" ? await createOnnxTrunk(split.trunk, imageSize) : null;
  const features = onnx ? onnxTrunkFeatures(onnx, split.cut) : split.trunk;
  return {
    tail: split.tail,
    batches: (source) => trunkBatches(source, features),
    close: async () => onnx?.close(),
  };
}
