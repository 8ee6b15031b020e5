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
import { startModuleThread, threadReady } from "./module-thread.js";

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

interface Helper {
  worker: Worker;
  /** Requests whose dW is worth a copy and a handover: at least this many multiply-adds. */
  minMultiplyAdds: number;
}

let helper: Helper | null = null;
let pending: Pending | null = null;
const ctrl = new Int32Array(new SharedArrayBuffer(4));
let shared = new Float32Array(new SharedArrayBuffer(0));
let offloaded = 0;
/** filter dataId -> the input it was last convolved with. */
let convInputs = new WeakMap<object, tf.TensorInfo>();

export interface GradientThreadOptions {
  /** Default 5e7 (a few milliseconds of work): smaller ones cost more to hand over than they save. */
  minMultiplyAdds?: number;
}

/** Whether a helper can help in this process: the wasm backend (one thread) and more than one core. */
export function gradientThreadCanHelp(): boolean {
  return tf.getBackend() === "wasm" && os.availableParallelism() > 1;
}

/**
 * Starts the process's helper thread when gradientThreadCanHelp(). Resolves
 * once the helper is ready; true when one runs. Calling it again while one
 * runs changes nothing.
 */
export async function startGradientThread(opts: GradientThreadOptions = {}): Promise<boolean> {
  if (helper) return true;
  if (!gradientThreadCanHelp()) return false;
  const worker = startModuleThread(import.meta.url, "gradient-thread-worker", null);
  try {
    await threadReady(worker);
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  worker.unref(); // an idle helper never keeps the process alive
  worker.on("error", () => void stopGradientThread());
  worker.on("exit", () => {
    if (helper?.worker === worker) helper = null;
  });
  helper = { worker, minMultiplyAdds: opts.minMultiplyAdds ?? 5e7 };
  return true;
}

export async function stopGradientThread(): Promise<void> {
  const current = helper;
  helper = null;
  pending = null;
  convInputs = new WeakMap();
  await current?.worker.terminate();
}

/** How many filter gradients the helper has computed in this process. */
export function offloadedFilterGradients(): number {
  return offloaded;
}

/** Called by the forward convolution kernels. */
export function rememberConvInput(x: tf.TensorInfo, filter: tf.TensorInfo): void {
  if (helper) convInputs.set(filter.dataId, x);
}

const attrsKey = (a: FilterGradientAttrs, filterShape: number[]) => JSON.stringify([a.strides, a.pad, a.dataFormat, a.dimRoundingMode ?? null, filterShape]);

const size = tf.util.sizeFromShape;

/** Called by the input-gradient kernel before it computes dx: hands dW of the same convolution to the helper. */
export function offloadFilterGradient(dy: tf.TensorInfo, filter: tf.TensorInfo, attrs: FilterGradientAttrs & { inputShape: number[] }, backend: unknown): void {
  if (!helper) return;
  if (pending && Atomics.load(pending.request.ctrl, 0) === WORKING) return; // busy with one tfjs never took
  pending = null;
  const x = convInputs.get(filter.dataId);
  const heap = backend as HeapBackend;
  if (!x || !heap.dataIdMap.has(x.dataId) || x.dtype !== "float32" || dy.dtype !== "float32") return;
  if (x.shape.join() !== attrs.inputShape.join()) return;
  const [kh, kw, inChannels] = filter.shape;
  if (size(dy.shape) * kh * kw * inChannels < helper.minMultiplyAdds) return;
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
  helper.worker.postMessage(request);
  pending = { x: x.dataId, dy: dy.dataId, key: attrsKey(attrs, filter.shape), request };
}

/** Called by the filter-gradient kernel: the helper's dW for this x and dy, or null (compute it here). */
export function takeFilterGradient(x: tf.TensorInfo, dy: tf.TensorInfo, attrs: FilterGradientAttrs & { filterShape: number[] }): tf.Tensor4D | null {
  const request = pending?.request;
  if (!pending || !request || pending.x !== x.dataId || pending.dy !== dy.dataId || pending.key !== attrsKey(attrs, attrs.filterShape)) return null;
  pending = null;
  if (Atomics.wait(request.ctrl, 0, WORKING, WAIT_LIMIT_MS) === "timed-out") {
    void stopGradientThread();
    return null;
  }
  if (Atomics.load(request.ctrl, 0) !== DONE) return null;
  offloaded += 1;
  const at = size(request.xShape) + size(request.dyShape);
  return tf.tensor4d(request.data.slice(at, at + size(request.filterShape)), request.filterShape);
}
