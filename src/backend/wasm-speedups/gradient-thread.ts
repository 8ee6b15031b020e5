// The second core for training steps on wasm. wasm runs one thread, and a
// training step is a chain of kernels; but the backward pass of a convolution
// has two independent halves, the input gradient dx and the filter gradient dW,
// of about equal cost (the tutorial's 3x3 conv5_block3_2_conv at 224 px,
// batch 32: about 0.5 s each). When tfjs asks for dx, the filter gradient is
// sent to a helper thread (its own wasm instance, the same kernels) with copies
// of x and dy; dx is computed here meanwhile, and when tfjs asks for dW next,
// the helper's result is taken, waiting for it if needed. The helper computes
// exactly what this thread would (same code, same wasm build, one thread
// each), so training gives the same weights with it or without it.
//
// tfjs' kernels are synchronous, so the handover is too: the request and its
// result live in a SharedArrayBuffer and this thread waits with Atomics.wait.
// x is found from the filter: the forward convolution records which input each
// filter tensor was applied to (the tape keeps both alive until the backward
// pass). Anything that does not match (another x, a filter gradient tfjs never
// asks for, a helper that failed) falls back to computing dW here.
import os from "node:os";
import type { Worker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../../errors.js";
import { startModuleThread, threadReady } from "../module-thread.js";
import { savedTensorsKeepTheirData } from "./tape-identity.js";

/** Convolution attributes the filter gradient depends on. */
export interface FilterGradientAttrs {
  strides: [number, number] | number;
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** One request: x, dy and room for dW in `data`; ctrl[0] is 0 while the helper works, then 1 (done) or 2 (failed). */
export interface FilterGradientRequest {
  ctrl: Int32Array;
  data: Float32Array;
  xShape: [number, number, number, number];
  dyShape: [number, number, number, number];
  filterShape: [number, number, number, number];
  attrs: FilterGradientAttrs;
}

export const WORKING = 0;
export const DONE = 1;
export const FAILED = 2;

/** A helper that does not answer within this time is given up (and dW computed here). */
const WAIT_LIMIT_MS = 120_000;

/** Requests below this many multiply-adds (a few milliseconds of work) cost more to hand over than they save. */
const MIN_MULTIPLY_ADDS = 5e7;

interface HeapBackend {
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  dataIdMap: { has(dataId: object): boolean };
}

interface Pending {
  x: object;
  dy: object;
  key: string;
  request: FilterGradientRequest;
}

export interface GradientThreadOptions {
  /** Default MIN_MULTIPLY_ADDS; tests lower it to offload the small convolutions of their models. */
  minMultiplyAdds?: number;
}

/** The helper thread of one process, and the hooks its convolution kernels call. */
export interface GradientThread {
  /**
   * Starts the helper when canHelp(). Resolves once it is ready; true when one
   * runs. Calling it again while one runs changes nothing.
   */
  start(opts?: GradientThreadOptions): Promise<boolean>;
  stop(): Promise<void>;
  /** Whether a helper is running. */
  readonly running: boolean;
  /** How many filter gradients the helper has computed. */
  offloaded(): number;
  /** Called by the forward convolution kernels. */
  rememberConvInput(x: tf.TensorInfo, filter: tf.TensorInfo): void;
  /** Called by the input-gradient kernel before it computes dx: hands dW of the same convolution to the helper. */
  offloadFilterGradient(
    dy: tf.TensorInfo,
    filter: tf.TensorInfo,
    attrs: FilterGradientAttrs & { inputShape: number[] },
    backend: unknown,
  ): void;
  /** Called by the filter-gradient kernel: the helper's dW for this x and dy, or null (compute it here). */
  takeFilterGradient(x: tf.TensorInfo, dy: tf.TensorInfo, attrs: FilterGradientAttrs & { filterShape: number[] }): tf.Tensor4D | null;
}

/** Whether a helper can help in this process: the wasm backend (one thread) and more than one core. */
export function gradientThreadCanHelp(): boolean {
  return tf.getBackend() === "wasm" && os.availableParallelism() > 1;
}

const attrsKey = (a: FilterGradientAttrs, filterShape: number[]) =>
  JSON.stringify([a.strides, a.pad, a.dataFormat, a.dimRoundingMode ?? null, filterShape]);

const size = tf.util.sizeFromShape;

/** A stopped helper: start() starts it. */
export function createGradientThread(): GradientThread {
  let worker: Worker | null = null;
  let minMultiplyAdds = MIN_MULTIPLY_ADDS;
  let pending: Pending | null = null;
  const ctrl = new Int32Array(new SharedArrayBuffer(4));
  let shared = new Float32Array(new SharedArrayBuffer(0));
  let offloaded = 0;
  /** filter dataId -> the input it was last convolved with. */
  let convInputs = new WeakMap<object, tf.TensorInfo>();

  const stop = async (): Promise<void> => {
    const current = worker;
    worker = null;
    pending = null;
    convInputs = new WeakMap();
    await current?.terminate();
  };

  return {
    async start(opts = {}) {
      if (worker) return true;
      if (!gradientThreadCanHelp()) return false;
      // takeFilterGradient finds its pending request by x's dataId: the x the backward pass gets is the tape's
      // saved copy of the x rememberConvInput saw, so the two must share their data (wasm-kernels.ts' Identity).
      if (!savedTensorsKeepTheirData()) {
        throw new AppError(
          "BACKEND_UNAVAILABLE",
          "the tape's saved tensors do not share their input's data: the gradient helper could never match a request",
        );
      }
      const started = startModuleThread(import.meta.url, "gradient-thread-worker", null);
      try {
        await threadReady(started);
      } catch (error) {
        await started.terminate();
        throw error;
      }
      started.unref(); // an idle helper never keeps the process alive
      started.on("error", () => void stop());
      started.on("exit", () => {
        if (worker === started) worker = null;
      });
      worker = started;
      minMultiplyAdds = opts.minMultiplyAdds ?? MIN_MULTIPLY_ADDS;
      return true;
    },
    stop,
    get running() {
      return worker !== null;
    },
    offloaded: () => offloaded,
    rememberConvInput(x, filter) {
      if (worker) convInputs.set(filter.dataId, x);
    },
    offloadFilterGradient(dy, filter, attrs, backend) {
      if (!worker) return;
      if (pending && Atomics.load(pending.request.ctrl, 0) === WORKING) return; // busy with one tfjs never took
      pending = null;
      const x = convInputs.get(filter.dataId);
      const heap = backend as HeapBackend;
      if (!x || !heap.dataIdMap.has(x.dataId) || x.dtype !== "float32" || dy.dtype !== "float32") return;
      if (x.shape.join() !== attrs.inputShape.join()) return;
      const [kh, kw, inChannels] = filter.shape;
      if (size(dy.shape) * kh * kw * inChannels < minMultiplyAdds) return;
      const xSize = size(x.shape);
      const dySize = size(dy.shape);
      const needed = xSize + dySize + size(filter.shape);
      if (shared.length < needed) shared = new Float32Array(new SharedArrayBuffer(needed * 4));
      shared.set(heap.typedArrayFromHeap(x), 0);
      shared.set(heap.typedArrayFromHeap(dy), xSize);
      Atomics.store(ctrl, 0, WORKING);
      const request: FilterGradientRequest = {
        ctrl,
        data: shared,
        xShape: x.shape as FilterGradientRequest["xShape"],
        dyShape: dy.shape as FilterGradientRequest["dyShape"],
        filterShape: filter.shape as FilterGradientRequest["filterShape"],
        attrs: { strides: attrs.strides, pad: attrs.pad, dataFormat: attrs.dataFormat, dimRoundingMode: attrs.dimRoundingMode },
      };
      worker.postMessage(request);
      pending = { x: x.dataId, dy: dy.dataId, key: attrsKey(attrs, filter.shape), request };
    },
    takeFilterGradient(x, dy, attrs) {
      const request = pending?.request;
      const matches = pending?.x === x.dataId && pending.dy === dy.dataId && pending.key === attrsKey(attrs, attrs.filterShape);
      if (!pending || !request || !matches) return null;
      pending = null;
      if (Atomics.wait(request.ctrl, 0, WORKING, WAIT_LIMIT_MS) === "timed-out") {
        void stop();
        return null;
      }
      if (Atomics.load(request.ctrl, 0) !== DONE) return null;
      offloaded += 1;
      const at = size(request.xShape) + size(request.dyShape);
      return tf.tensor4d(request.data.slice(at, at + size(request.filterShape)), request.filterShape);
    },
  };
}
