// One attempt of a training job, inside the sandboxed child, in named steps:
// prepare (backend, engine, data), build the model and load where it starts
// (checkpoint or base weights), open the inputs of the chosen strategy, train
// with per-epoch bookkeeping, then finish (report, saved model). Stops at a
// batch boundary when the worker process asks (cancel or shutdown).
import * as tf from "@tensorflow/tfjs";
import { buildTransferModel } from "../network/transfer-model.js";
import { train } from "../training/train.js";
import { isCancelRequested } from "../jobs/cancel.js";
import { setJobInfo } from "../jobs/job-records.js";
import { epochBookkeeping } from "./epoch-bookkeeping.js";
import { finishTraining } from "./finish-training.js";
import { loadStartingPoint, prepareAttempt, type Attempt, type TrainingDeps, type TrainingJob } from "./training-attempt.js";
import { openTrainingInputs, type TrainingInputs } from "./training-inputs.js";
import { STOP_REASON, stopReasonOf, type StopReason } from "./stop-reasons.js";

export type { TrainingDeps, TrainingJob } from "./training-attempt.js";
export { PROGRESS_INTERVAL_MS } from "./epoch-bookkeeping.js";

export type TrainingOutcome = { status: "completed"; modelId: string } | { status: "stopped"; reason: StopReason; epochsDone: number };

export async function runTraining(deps: TrainingDeps, job: TrainingJob, signal?: AbortSignal): Promise<TrainingOutcome> {
  const stopped = (epochsDone: number): TrainingOutcome => ({
    status: "stopped",
    reason: stopReasonOf(signal) ?? STOP_REASON.cancel,
    epochsDone,
  });
  if (await isCancelRequested(deps.db, job.data.jobId)) return { status: "stopped", reason: STOP_REASON.cancel, epochsDone: 0 };
  const attempt = await prepareAttempt({ ...deps, log: deps.log.child({ jobId: job.data.jobId, attemptsMade: job.attemptsMade }) }, job);
  if (signal?.aborted) return stopped(0);
  const tm = buildTransferModel(attempt.modelOptions);
  let inputs: TrainingInputs | null = null;
  try {
    const start = await loadStartingPoint(attempt, tm);
    inputs = await openTrainingInputs(attempt, tm);
    await recordInputs(attempt, inputs);
    const epochs = epochBookkeeping(attempt, tm.model, inputs, start.history);
    const { learningRate, seed } = attempt.spec;
    const result = await train({
      model: inputs.model,
      train: inputs.train,
      validation: inputs.validation,
      learningRate,
      seed,
      epochs: attempt.spec.epochs,
      initialEpoch: start.history.length,
      optimizerState: start.optimizerState,
      callbacks: epochs.callbacks,
      signal,
      // ONNX Runtime trains a tail (its training-step graph starts at the cut); the whole model trains on TF.js.
      engine: inputs.strategy === "whole" ? "tfjs" : attempt.engine,
      log: attempt.log,
    });
    await result.stepper.dispose();
    if (result.aborted) return stopped(epochs.history.length);
    await epochs.restoreBest();
    return { status: "completed", modelId: await finishTraining(attempt, tm.model, inputs, epochs.history) };
  } finally {
    await inputs?.close();
    tm.model.dispose();
    tf.disposeVariables();
  }
}

/** The strategy goes on the job record (featureCache) and in the log. */
async function recordInputs(attempt: Attempt, inputs: TrainingInputs): Promise<void> {
  const featureCache = inputs.strategy === "cached";
  await setJobInfo(attempt.db, attempt.jobId, { featureCache });
  attempt.log.info(
    { featureCache, engine: attempt.engine, gradientThread: attempt.gradientThread, ...inputs.details },
    "training data ready",
  );
}
