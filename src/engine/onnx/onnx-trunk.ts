// The frozen trunk on ONNX Runtime: uint8 RGB rows -> caffe preprocessing ->
// the trunk's ONNX graph -> one Float32Array per cut tensor, what
// training/trunk-features.ts computes on TF.js. ONNX Runtime spreads one run
// over every core, so one run at a time is enough.
import type * as tf from "@tensorflow/tfjs";
import { IMAGENET_BGR_MEANS } from "../../network/preprocess.js";
import { createOrtSession, type OrtSession } from "./ort-session.js";
import { tfjsToOnnx } from "./tfjs-to-onnx.js";

export interface OnnxTrunk {
  /** Features of `count` images (uint8 RGB rows, imageSize x imageSize), one array per cut tensor in the trunk's output order. */
  run(pixels: Uint8Array, count: number): Promise<Float32Array[]>;
  /** Features of `count` caffe-preprocessed images (float32 NHWC). */
  runPreprocessed(images: Float32Array, count: number): Promise<Float32Array[]>;
  readonly parallelism: number;
  close(): Promise<void>;
}

/** keras' resnet50.preprocess_input on uint8 RGB rows: BGR minus the ImageNet means, float32 NHWC. */
export function caffePreprocess(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  const [b, g, r] = IMAGENET_BGR_MEANS.map(Math.fround);
  for (let i = 0; i < pixels.length; i += 3) {
    out[i] = pixels[i + 2] - b;
    out[i + 1] = pixels[i + 1] - g;
    out[i + 2] = pixels[i] - r;
  }
  return out;
}

export async function createOnnxTrunk(trunk: tf.LayersModel, imageSize: number, threads = 0): Promise<OnnxTrunk> {
  const onnx = tfjsToOnnx(trunk);
  const session: OrtSession = await createOrtSession(onnx.bytes, { threads });
  const [input] = onnx.inputNames;
  const runPreprocessed = async (images: Float32Array, count: number): Promise<Float32Array[]> => {
    const out = await session.run({ [input]: { data: images, dims: [count, imageSize, imageSize, 3] } });
    return onnx.outputNames.map((name) => out[name].data);
  };
  return {
    run: (pixels, count) => runPreprocessed(caffePreprocess(pixels), count),
    runPreprocessed,
    parallelism: 1,
    close: () => session.release(),
  };
}
