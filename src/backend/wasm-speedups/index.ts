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

/** Installed once per process: the kernel registry it writes to is the process's, shared by every caller. */
let installed: Promise<TrainingSpeedups> | undefined;

/**
 * Registers the training kernels for `backend` (the one selectBackend chose,
 * already active) and starts the helper thread if asked and it can help. The
 * helper is only a speed-up: if it cannot start, this logs why and training
 * runs on one thread. Later calls return the first installation.
 */
export function installTrainingSpeedups(backend: BackendName, opts: TrainingSpeedupsOptions): Promise<TrainingSpeedups> {
  installed ??= install(backend, opts).catch((error: unknown) => {
    installed = undefined; // nothing was registered: a later call may try again
    throw error;
  });
  return installed;
}

async function install(backend: BackendName, { gradientThread: wanted, log }: TrainingSpeedupsOptions): Promise<TrainingSpeedups> {
  if (tf.getBackend() !== backend) {
    const active = tf.getBackend();
    throw new AppError("INTERNAL", `training speed-ups for "${backend}" asked for while "${active}" is active`, { backend, active });
  }
  const gradientThread = createGradientThread();
  if (backend === "wasm") registerWasmKernels(gradientThread);
  registerAdamUpdateKernel(backend);
  if (wanted) {
    await gradientThread.start().catch((error: unknown) => {
      log?.warn({ err: error }, "filter-gradient helper thread did not start; training on one thread");
    });
  }
  return { backend, gradientThread };
}
