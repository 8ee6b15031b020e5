// An ONNX Runtime session over float32 tensors, with onnxruntime-node loaded
// on first use only: processes that never run a graph never load the native
// library.
import type * as ort from "onnxruntime-node";

export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /**
   * Named float32 inputs -> every output, by name. An output named in `into` is written into that
   * buffer (which must not be one of the inputs) instead of a fresh one, so a caller that runs the
   * same graph again and again allocates and copies nothing for it.
   */
  run(inputs: Record<string, FloatTensor>, into?: Record<string, FloatTensor>): Promise<Record<string, FloatTensor>>;
  release(): Promise<void>;
}

export interface OrtSessionOptions {
  /** Threads for one operator; 0 lets ONNX Runtime use one per physical core. */
  threads?: number;
}

/**
 * glibc settings for a process that runs big ONNX graphs (the tail's training step), read by glibc at
 * process start, so whoever spawns the process sets them. Each run allocates and frees a buffer the size of
 * each graph output, even one bound to a caller's buffer (`into`); glibc serves blocks that large with mmap and
 * gives them back with munmap, so every run page-faults them in again: ~0.45 s of CPU per run for one 100 MB
 * output (the 25.7 M-weight Dense kernel's gradient), 0.05 s with these (malloc never mmaps, freed memory stays
 * mapped for the next run). The cost: the process keeps its peak heap.
 */
export const ORT_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_MAX_: "0", MALLOC_TRIM_THRESHOLD_: String(16 * 1024 ** 3) };

let runtime: Promise<typeof ort> | undefined;

export function loadOnnxRuntime(): Promise<typeof ort> {
  runtime ??= import("onnxruntime-node");
  return runtime;
}

export async function createOrtSession(model: Uint8Array, options: OrtSessionOptions = {}): Promise<OrtSession> {
  const { InferenceSession, Tensor } = await loadOnnxRuntime();
  const session = await InferenceSession.create(model, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: options.threads ?? 0,
  });
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(inputs, into = {}) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(inputs)) feeds[name] = new Tensor("float32", t.data, t.dims);
      // Fetches name every output: ONNX Runtime returns only the outputs a fetches map names.
      const fetches: Record<string, ort.Tensor | null> = {};
      for (const name of session.outputNames) fetches[name] = name in into ? new Tensor("float32", into[name].data, into[name].dims) : null;
      const results = await session.run(feeds, fetches);
      const out: Record<string, FloatTensor> = {};
      for (const [name, t] of Object.entries(results)) out[name] = { data: t.data as Float32Array, dims: [...t.dims] };
      return out;
    },
    release: () => session.release(),
  };
}
