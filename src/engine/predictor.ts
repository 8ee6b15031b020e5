// A trained model loaded for predict on one engine: TF.js runs the layers
// model, ONNX Runtime its exported graph. Both take the caffe-preprocessed
// images predict decoded and give the class probabilities.
import * as tf from "@tensorflow/tfjs";
import { createOrtSession } from "./onnx/ort-session.js";

export interface Predictor {
  /** [n, size, size, 3] preprocessed images -> n rows of probabilities. */
  predict(images: tf.Tensor4D): Promise<number[][]>;
  /** Frees the model once the predictions in flight are done. */
  dispose(): void;
}

/** TF.js computes synchronously within predict(): a dispose cannot land in the middle of a run. */
export function tfjsPredictor(model: tf.LayersModel): Predictor {
  return {
    async predict(images) {
      const probabilities = tf.tidy(() => model.predict(images) as tf.Tensor2D);
      try {
        return (await probabilities.array()) as number[][];
      } finally {
        probabilities.dispose();
      }
    },
    dispose: () => model.dispose(),
  };
}

/** The model's ONNX graph (see models/onnx-file.ts) on ONNX Runtime. */
export async function onnxPredictor(onnx: Uint8Array): Promise<Predictor> {
  const session = await createOrtSession(onnx);
  const [input] = session.inputNames;
  const [output] = session.outputNames;
  // Runs are asynchronous: an eviction from the model cache waits for them before releasing the session.
  const inFlight = new Set<Promise<unknown>>();
  return {
    async predict(images) {
      const n = images.shape[0];
      const run = session.run({ [input]: { data: images.dataSync() as Float32Array, dims: images.shape } });
      inFlight.add(run);
      try {
        const { data, dims } = (await run)[output];
        const classes = dims[1];
        return Array.from({ length: n }, (_, i) => Array.from(data.subarray(i * classes, (i + 1) * classes)));
      } finally {
        inFlight.delete(run);
      }
    },
    dispose() {
      void Promise.allSettled([...inFlight]).then(() => session.release());
    },
  };
}
