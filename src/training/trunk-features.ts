// The frozen trunk's pass over decoded images: uint8 RGB rows -> caffe
// preprocessing -> trunk -> one Float32Array per cut tensor. Shared by the
// in-process path and the worker-thread pool so both compute the same thing.
import * as tf from "@tensorflow/tfjs";
import { rgbToTensor } from "../datasets/image-decode.js";
import { preprocessInput } from "../network/preprocess.js";

export async function computeTrunkFeatures(
  trunk: tf.LayersModel,
  pixels: Uint8Array,
  count: number,
  imageSize: number,
): Promise<Float32Array[]> {
  const outputs = tf.tidy(() => {
    const rgb = rgbToTensor(pixels, count, imageSize);
    const out = trunk.predict(preprocessInput(rgb));
    return Array.isArray(out) ? out : [out];
  });
  try {
    return (await Promise.all(outputs.map((t) => t.data()))) as Float32Array[];
  } finally {
    tf.dispose(outputs);
  }
}
