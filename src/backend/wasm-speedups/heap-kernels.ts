// heap-kernels.wat, instantiated on the tfjs wasm backend's own memory: kernels
// that read and write tensors where they are, without copies.
import type * as tf from "@tensorflow/tfjs";
import { HEAP_KERNELS_WASM } from "./heap-kernels-wasm.js";

export interface HeapKernels {
  adam(x: number, m: number, v: number, g: number, outX: number, outM: number, outV: number, n: number, ...constants: number[]): void;
  sumRows(x: number, rows: number, columns: number, out: number): void;
}

/** What these kernels need of the wasm backend: its memory, and where each tensor lives in it. */
export interface WasmBackendInternals {
  wasm: { asm?: { memory?: WebAssembly.Memory } };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

let module: WebAssembly.Module | undefined;
const byMemory = new WeakMap<WebAssembly.Memory, HeapKernels>();

/** The kernels on `backend`'s memory (instantiated once per memory: a backend keeps its memory for life). */
export function heapKernels(backend: WasmBackendInternals): HeapKernels {
  const memory = backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error("the tfjs wasm backend does not expose its memory (wasm.asm.memory)");
  let kernels = byMemory.get(memory);
  if (!kernels) {
    module ??= new WebAssembly.Module(Buffer.from(HEAP_KERNELS_WASM, "base64"));
    kernels = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as HeapKernels;
    byMemory.set(memory, kernels);
  }
  return kernels;
}

/** Byte offset of a tensor's values in the heap. */
export function heapOffset(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).memoryOffset;
}
