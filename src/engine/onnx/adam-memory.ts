// Where the tail's ONNX step keeps what Adam updates: each trainable weight,
// its two moments and the buffer ONNX Runtime writes its gradient into, all
// in one wasm memory, so that adam-kernel.wat updates them in place four
// values at a time. ONNX Runtime reads the weights and writes the gradients
// through Float32Array views of that memory, as it would any other buffer.
// The update in JS (adam-in-place.ts) took ~0.15 s of a step's ~0.6 s for the
// tutorial's 30 M trainable values.
import { ADAM_KERNEL_WASM } from "./adam-kernel-wasm.js";
import { adamInPlace, type AdamStep } from "./adam-in-place.js";

export interface AdamArrays {
  weight: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** Null when the weight has no gradient (its update only decays the moments). */
  gradient: Float32Array | null;
}

export interface AdamMemory {
  /** One entry per weight, in the order of the lengths given. */
  readonly arrays: readonly AdamArrays[];
  /** "wasm" when the arrays live in a wasm memory and the SIMD kernel updates them; "js" otherwise. */
  readonly kernel: "wasm" | "js";
  /** One Adam step over every weight, in place. */
  step(c: AdamStep): void;
}

interface AdamKernel {
  adam(
    w: number,
    m: number,
    v: number,
    g: number,
    n: number,
    beta1: number,
    beta2: number,
    keep1: number,
    keep2: number,
    stepSize: number,
    epsilonHat: number,
  ): void;
}

const PAGE = 65536;
/** wasm32's limit: a tail whose state is larger keeps it in ordinary arrays, updated in JS. */
const MAX_PAGES = 65536;
const f32 = Math.fround;

let module: WebAssembly.Module | undefined;

/** Room for `weights` (each one's length and whether ONNX Runtime outputs its gradient), zeroed. */
export function allocateAdamMemory(weights: readonly { length: number; hasGradient: boolean }[]): AdamMemory {
  // Four arrays a weight at most, each starting on a 16-byte boundary for the SIMD loads.
  const padded = (n: number) => Math.ceil((n * 4) / 16) * 16;
  const bytes = weights.reduce((sum, w) => sum + padded(w.length) * (w.hasGradient ? 4 : 3), 0);
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  if (pages > MAX_PAGES) return inArrays(weights);
  let memory: WebAssembly.Memory;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  } catch {
    return inArrays(weights);
  }
  module ??= new WebAssembly.Module(Buffer.from(ADAM_KERNEL_WASM, "base64"));
  const kernel = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as AdamKernel;
  // The memory never grows (maximum = initial), so these views stay attached for the memory's life.
  const buffer = memory.buffer;
  let offset = 0;
  const take = (n: number) => {
    const view = new Float32Array(buffer, offset, n);
    offset += padded(n);
    return view;
  };
  const arrays = weights.map((w) => ({
    weight: take(w.length),
    m: take(w.length),
    v: take(w.length),
    gradient: w.hasGradient ? take(w.length) : null,
  }));
  return {
    arrays,
    kernel: "wasm",
    step(c) {
      const keep1 = f32(1 - c.beta1);
      const keep2 = f32(1 - c.beta2);
      for (const a of arrays) {
        if (a.gradient === null) {
          adamInPlace(a.weight, a.m, a.v, null, c);
          continue;
        }
        kernel.adam(
          a.weight.byteOffset,
          a.m.byteOffset,
          a.v.byteOffset,
          a.gradient.byteOffset,
          a.weight.length,
          c.beta1,
          c.beta2,
          keep1,
          keep2,
          c.stepSize,
          c.epsilonHat,
        );
      }
    },
  };
}

function inArrays(weights: readonly { length: number; hasGradient: boolean }[]): AdamMemory {
  const arrays = weights.map((w) => ({
    weight: new Float32Array(w.length),
    m: new Float32Array(w.length),
    v: new Float32Array(w.length),
    gradient: w.hasGradient ? new Float32Array(w.length) : null,
  }));
  return {
    arrays,
    kernel: "js",
    step(c) {
      for (const a of arrays) adamInPlace(a.weight, a.m, a.v, a.gradient, c);
    },
  };
}
