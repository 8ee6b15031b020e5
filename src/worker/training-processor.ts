// The sandboxed processor: BullMQ forks a child process that imports this
// file and calls the default export per job. It turns runTraining's outcome
// into what BullMQ and the jobs API expect: a stop for shutdown puts the job
// back in the queue, a cancel ends it `cancelled`, an error whose catalogue
// entry says a retry cannot help fails it for good, anything else fails the
// attempt (retried).
import { UnrecoverableError, WaitingError, type SandboxedJob } from "bullmq";
import { loadConfig } from "../config.js";
import { createLogger } from "../log.js";
import { isAppError } from "../errors.js";
import { createLocalStorage } from "../storage/local-storage.js";
import { isStorageFull, storageFull } from "../storage/storage-full.js";
import { createRedis } from "../jobs/redis.js";
import { jobRedis, markCancelled, setJobInfo } from "../jobs/job-records.js";
import type { JobProgress, TrainingJobPayload } from "../jobs/training-queue.js";
import { runTraining, type TrainingDeps } from "./run-training.js";
import { STOP_REASON } from "./stop-reasons.js";

/** The message of the error that ends a cancelled job (its state comes from the job record, not from this). */
export const CANCELLED_MESSAGE = "cancelled by request";

let deps: TrainingDeps | undefined;

/** One set of connections per child process: BullMQ reuses a child for the next job. */
function childDeps(): TrainingDeps {
  if (!deps) {
    // A child whose worker died (kill -9, OOM) must not train on: the job goes
    // back to the queue once its lock expires, and the next attempt would
    // write the same checkpoints as this orphan.
    process.once("disconnect", () => process.exit(1));
    const config = loadConfig();
    deps = {
      config,
      storage: createLocalStorage(config.dataDir),
      db: jobRedis(createRedis(config.redisUrl, "consumer"), config),
      log: createLogger(config.logLevel, "training"),
    };
  }
  return deps;
}

export async function processTrainingJob(
  deps: TrainingDeps,
  job: Pick<SandboxedJob<TrainingJobPayload>, "id" | "data" | "attemptsMade" | "moveToWait"> & {
    updateProgress(p: JobProgress): Promise<void>;
  },
  token: string | undefined,
  signal: AbortSignal | undefined,
): Promise<{ modelId: string }> {
  const { jobId } = job.data;
  try {
    const outcome = await runTraining(deps, job, signal);
    if (outcome.status === "completed") return { modelId: outcome.modelId };
    if (outcome.reason === STOP_REASON.shutdown) {
      // Back to the queue without spending an attempt; the next worker resumes from the last checkpoint.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    await markCancelled(deps.db, jobId);
    throw new UnrecoverableError(CANCELLED_MESSAGE);
  } catch (caught) {
    if (caught instanceof WaitingError || caught instanceof UnrecoverableError) throw caught;
    // A full disk (writing a checkpoint, a cache, the model) is named as such on the job, and retried.
    const error = isStorageFull(caught) ? storageFull() : caught;
    const info = isAppError(error)
      ? { code: error.code, message: error.message }
      : { code: "TRAINING_FAILED", message: `training failed: ${(error as Error)?.message ?? String(error)}` };
    await setJobInfo(deps.db, jobId, { error: info });
    const failure = attemptFailure(error);
    if (!(failure instanceof UnrecoverableError)) deps.log.error({ jobId, err: error }, "training attempt failed");
    throw failure;
  }
}

/** What BullMQ gets for a failed attempt: the error itself (retried) or, when the catalogue says a retry cannot help, an UnrecoverableError carrying its code. */
export function attemptFailure(error: unknown): unknown {
  if (!isAppError(error) || error.retryable) return error;
  const unrecoverable = new UnrecoverableError(error.message);
  Object.assign(unrecoverable, { code: error.code, details: error.details });
  return unrecoverable;
}

export default async function trainingProcessor(
  job: SandboxedJob<TrainingJobPayload>,
  token?: string,
  signal?: AbortSignal,
): Promise<{ modelId: string }> {
  return processTrainingJob(childDeps(), job, token, signal);
}
