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
