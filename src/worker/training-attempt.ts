// The first steps of a training attempt: the backend and engine it runs on,
// its data, the model, and where its weights start (the last checkpoint, or
// the base weights of the spec).
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { selectBackend, type BackendName } from "../backend/select-backend.js";
import { installTrainingSpeedups } from "../backend/wasm-speedups/index.js";
import { resolveEngine, type EngineName } from "../engine/engine.js";
import { prepareTrainingData, type TrainingData } from "../datasets/training-data.js";
import type { TransferModel, TransferModelOptions } from "../network/transfer-model.js";
import { loadBaseWeights, loadImagenetWeights, loadModelWeights } from "../weight-files/index.js";
import type { EpochMetrics } from "../training/epoch-metrics.js";
import type { OptimizerState } from "../training/optimizer-state.js";
import type { JobProgress, TrainingJobPayload } from "../jobs/training-queue.js";
import type { JobSpec } from "../jobs/job-spec.js";
import { appendEpochMetrics, setJobInfo, type JobRedis } from "../jobs/job-records.js";
import { weightsFilePath } from "../base-weights/weights-store.js";
import { checkpointModelPath, readCheckpointOptimizerState, resumableCheckpoint } from "../training/checkpoints.js";

export interface TrainingDeps {
  config: Config;
  storage: Storage;
  db: JobRedis;
  log: Logger;
}

/** What the processor needs of a BullMQ job (sandboxed or not). */
export interface TrainingJob {
  id?: string;
  data: TrainingJobPayload;
  attemptsMade: number;
  updateProgress(progress: JobProgress): Promise<void>;
}

/** Everything the later steps of one attempt share. */
export interface Attempt extends TrainingDeps {
  job: TrainingJob;
  jobId: string;
  tenant: string;
  spec: JobSpec;
  backend: BackendName;
  engine: EngineName;
  /** Whether the filter-gradient helper thread runs (logged only). */
  gradientThread: boolean;
  data: TrainingData;
  modelOptions: TransferModelOptions;
}

/** Backend, engine and data; recorded on the job before the first epoch. */
export async function prepareAttempt(deps: TrainingDeps, job: TrainingJob): Promise<Attempt> {
  const { config, db, log } = deps;
  const { jobId, tenant, spec } = job.data;
  const backend = await selectBackend(config.tfjsBackend, log);
  // Installed once per process (this one trains) and kept for its later jobs.
  const speedups = await installTrainingSpeedups(backend.name, { gradientThread: config.gradientThread, log });
  const gradientThread = speedups.gradientThread.running;
  const engine = await resolveEngine(config.trainingEngine, backend.name, log);
  await setJobInfo(db, jobId, { backend: backend.name, engine });
  await job.updateProgress({ epoch: 1, epochs: spec.epochs, batch: 0, batches: 0, fraction: 0, backend: backend.name });

  const data = await prepareTrainingData({
    storage: deps.storage,
    tenant,
    datasetId: spec.datasetId,
    imageSize: spec.imageSize,
    classes: spec.classes ?? undefined,
    validationSplit: spec.validationSplit,
    seed: spec.seed,
    batchSize: spec.batchSize,
    log,
  });
  const modelOptions: TransferModelOptions = {
    imageSize: spec.imageSize,
    numClasses: data.classes.length,
    head: spec.head,
    unfrozenLayers: spec.unfrozenLayers,
    seed: spec.seed,
  };
  return { ...deps, job, jobId, tenant, spec, backend: backend.name, engine, gradientThread, data, modelOptions };
}

/** Where training starts: the epochs already done and Adam's state (both empty on a first attempt). */
export interface StartingPoint {
  history: EpochMetrics[];
  optimizerState?: OptimizerState;
}

/** Loads the last sound checkpoint into the model, else the spec's base weights. */
export async function loadStartingPoint(attempt: Attempt, tm: TransferModel): Promise<StartingPoint> {
  const { storage, tenant, jobId, db, log } = attempt;
  const resumeFrom = await resumableCheckpoint(storage, tenant, jobId, (epoch, problem) =>
    log.warn({ epoch, problem }, "checkpoint failed its check: deleted, resuming from an earlier one"),
  );
  if (!resumeFrom) {
    await loadBaseWeightsOf(attempt, tm);
    return { history: [] };
  }
  await loadModelWeights(tm.model, await checkpointModelPath(storage, tenant, jobId, resumeFrom.epoch));
  const optimizerState = await readCheckpointOptimizerState(storage, tenant, jobId, resumeFrom.epoch);
  // The record may lack the checkpoint's last epoch (killed between the two writes) or hold later ones.
  for (const m of resumeFrom.metrics) await appendEpochMetrics(db, jobId, m);
  log.info({ epoch: resumeFrom.epoch }, "resuming from checkpoint");
  return { history: [...resumeFrom.metrics], optimizerState };
}

async function loadBaseWeightsOf(attempt: Attempt, tm: TransferModel): Promise<void> {
  const { spec } = attempt;
  if (spec.baseWeights === "none") return;
  if (spec.baseWeights === "imagenet") {
    await loadImagenetWeights(tm, attempt.config.imagenetWeights);
    return;
  }
  const file = await weightsFilePath(attempt.storage, attempt.tenant, spec.baseWeights);
  if (!file) {
    throw new AppError(
      "WEIGHTS_NOT_FOUND",
      `weights "${spec.baseWeights}" were deleted after the job was created: upload them again and post a new job`,
      {
        weightsId: spec.baseWeights,
      },
    );
  }
  await loadBaseWeights(tm, file);
}
