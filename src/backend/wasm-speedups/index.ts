// The one entry to what makes TF.js fast for training here: the extra and
// replaced wasm kernels, the fused Adam update and the filter-gradient helper
// thread. A training process calls installTrainingSpeedups once after
// selectBackend; nothing else (the API, the CLI, trunk threads) registers them.
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { BackendName } from "../select-backend.js";
import { registerAdamUpdateKernel } from "./fused-adam.js";
import { createGradientThread, type GradientThread } from "./gradient-thread.js";
import { registerWasmKernels } from "./wasm-kernels.js";

export { FusedAdamOptimizer } from "./fused-adam.js";
export { gradientThreadCanHelp, type GradientThread } from "./gradient-thread.js";

export interface TrainingSpeedups {
  backend: BackendName;
  /** This process's filter-gradient helper (running only on wasm with more than one core, when asked for). */
  gradientThread: GradientThread;
}

export interface TrainingSpeedupsOptions {
  /** Start the filter-gradient helper thread where it can help (GRADIENT_THREAD). */
  gradientThread: boolean;
  log?: Logger;
}

/** Registered once per process: the kernel registry it writes to is the process's, shared by every caller. */
let installed: TrainingSpeedups | undefined;

/**
 * Registers the training kernels for `backend` (the one selectBackend chose,
 * already active) once per process, and starts the helper thread if asked, it
 * can help and it does not run yet (a helper that died is started again for the
 * next job). The helper is only a speed-up: if it cannot start, this logs why
 * and training runs on one thread.
 */
export async function installTrainingSpeedups(backend: BackendName, opts: TrainingSpeedupsOptions): Promise<TrainingSpeedups> {
  installed ??= register(backend);
  if (opts.gradientThread && !installed.gradientThread.running) {
    await installed.gradientThread.start().catch((error: unknown) => {
      opts.log?.warn({ err: error }, "filter-gradient helper thread did not start; training on one thread");
    });
  }
  return installed;
}

function register(backend: BackendName): TrainingSpeedups {
  const active = tf.getBackend();
  if (active !== backend) {
    throw new AppError("INTERNAL", `training speed-ups for "${backend}" asked for while "${active}" is active`, { backend, active });
  }
  const gradientThread = createGradientThread();
  if (backend === "wasm") registerWasmKernels(gradientThread);
  registerAdamUpdateKernel(backend);
  return { backend, gradientThread };
}
