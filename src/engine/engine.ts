// Which engine trains and predicts: TF.js on its native backends (GPU, or
// libtensorflow), ONNX Runtime elsewhere, where TF.js would run on wasm or
// plain JS. TF.js stays the model definition and the weights I/O either way.
import type { Logger } from "../log.js";
import type { BackendName } from "../backend/select-backend.js";
import { AppError } from "../errors.js";
import { loadOnnxRuntime } from "./onnx/ort-session.js";

export const ENGINE_NAMES = ["tfjs", "onnxruntime"] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];
export type EngineSetting = "auto" | EngineName;

const NATIVE_BACKENDS: readonly BackendName[] = ["tensorflow-gpu", "tensorflow"];

/**
 * `auto`: tfjs when TF.js runs on a native backend, else onnxruntime if it loads (else tfjs).
 * An engine asked for by name that cannot load is BACKEND_UNAVAILABLE.
 */
export async function resolveEngine(setting: EngineSetting, backend: BackendName, log?: Pick<Logger, "warn">): Promise<EngineName> {
  if (setting === "tfjs" || (setting === "auto" && NATIVE_BACKENDS.includes(backend))) return "tfjs";
  try {
    await loadOnnxRuntime();
    return "onnxruntime";
  } catch (error) {
    if (setting === "onnxruntime") {
      throw new AppError(
        "BACKEND_UNAVAILABLE",
        `TRAINING_ENGINE=onnxruntime but onnxruntime-node does not load: ${(error as Error).message}`,
      );
    }
    log?.warn({ err: error }, "onnxruntime-node does not load; the tfjs engine is used");
    return "tfjs";
  }
}
