// The helper thread of gradient-thread.ts: its own wasm backend with this
// project's kernels (so it computes what the training thread would), computing
// the filter gradients it is handed.
import { parentPort } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import { DONE, FAILED, type FilterGradientRequest } from "./gradient-thread.js";
import { selectBackend } from "../select-backend.js";
import { conv2DBackpropFilter, registerWasmKernels } from "./wasm-kernels.js";

const port = parentPort!;
const size = tf.util.sizeFromShape;

function filterGradient({ data, xShape, dyShape, filterShape, attrs }: FilterGradientRequest): void {
  const xSize = size(xShape);
  const dySize = size(dyShape);
  const dw = tf.tidy(() =>
    conv2DBackpropFilter(tf.tensor4d(data.subarray(0, xSize), xShape), tf.tensor4d(data.subarray(xSize, xSize + dySize), dyShape), {
      ...attrs,
      filterShape,
    }),
  );
  data.set(dw.dataSync(), xSize + dySize);
  dw.dispose();
}

try {
  await selectBackend("wasm");
  registerWasmKernels(); // no helper of its own
  port.on("message", (request: FilterGradientRequest) => {
    let outcome = DONE;
    try {
      filterGradient(request);
    } catch {
      outcome = FAILED; // the asking thread computes this gradient itself
    }
    Atomics.store(request.ctrl, 0, outcome);
    Atomics.notify(request.ctrl, 0);
  });
  port.postMessage({ ready: true });
} catch (error) {
  port.postMessage({ error: (error as Error).message });
}
