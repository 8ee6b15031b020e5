// One attempt of a training job, inside the sandboxed child: data, model,
// base weights or the last checkpoint, train with live progress and a
// checkpoint per epoch, then the final model and its report. Stops at a batch
// boundary when the worker process asks (cancel or shutdown).
import * as tf from "@tensorflow/tfjs";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { startGradientThread } from "../backend/gradient-thread.js";
import { selectBackend } from "../backend/select-backend.js";
import { prepareTrainingData } from "../datasets/training-data.js";
import { buildTransferModel, type TransferModel, type TransferModelOptions } from "../model/transfer-model.js";
import { readDecodedRange } from "../datasets/decoded-cache.js";
import { rowBatchSource } from "../datasets/row-batch-source.js";
import type { Examples } from "../datasets/training-data.js";
import { prepareCachedTrunk, type CachedTrunk } from "../training/cached-trunk.js";
import { prepareStreamedTrunk, type StreamedTrunk } from "../training/streamed-trunk.js";
import { resolveEngine } from "../engine/engine.js";
import { loadBaseWeights, loadImagenetWeights, loadModelWeights } from "../model/weights/index.js";
import { train, type EpochMetrics as TrainEpochMetrics } from "../training/train.js";
import { earlyStopping } from "../training/early-stopping.js";
import { exportOptimizerState } from "../training/optimizer-state.js";
import { evaluate } from "../training/evaluate.js";
import { classificationReport, misclassifiedImages } from "../training/report.js";
import { readDatasetIndex } from "../datasets/dataset-store.js";
import type { JobProgress, TrainingJobPayload } from "../queue/training-queue.js";
import { isBuiltinWeights, type JobSpec } from "../queue/job-spec.js";
import { appendEpochMetrics, setJobInfo, type EpochMetrics, type JobRedis } from "../queue/job-records.js";
import { isCancelRequested } from "../queue/cancel.js";
import { weightsFilePath } from "../weights/weights-store.js";
import { augmentBatches, isIdentityAugmentation } from "./augment-batches.js";
import {
  checkpointModelPath,
  pruneCheckpoints,
  readCheckpointOptimizerState,
  resumableCheckpoint,
  writeCheckpoint,
  type CheckpointManifest,
} from "./checkpoints.js";
import { modelIdForJob, saveTrainedModel, CAFFE_PREPROCESSING } from "../models/model-store.js";
import { STOP_REASON, stopReasonOf, type StopReason } from "./stop-reasons.js";

/** Batch-level progress is sent at most this often (epoch ends always are). */
export const PROGRESS_INTERVAL_MS = 500;

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

export type TrainingOutcome = { status: "completed"; modelId: string } | { status: "stopped"; reason: StopReason; epochsDone: number };

/** 0-based train() metrics -> the 1-based ones jobs record and show. */
export function toJobMetrics(m: TrainEpochMetrics): EpochMetrics {
  return {
    epoch: m.epoch + 1,
    loss: m.loss,
    accuracy: m.accuracy,
    valLoss: m.valLoss ?? null,
    valAccuracy: m.valAccuracy ?? null,
    seconds: m.seconds,
    imagesPerSecond: m.imagesPerSecond,
  };
}

function toTrainMetrics(m: EpochMetrics): TrainEpochMetrics {
  return {
    epoch: m.epoch - 1,
    loss: m.loss,
    accuracy: m.accuracy,
    ...(m.valLoss === null ? {} : { valLoss: m.valLoss }),
    ...(m.valAccuracy === null ? {} : { valAccuracy: m.valAccuracy }),
    seconds: m.seconds,
    imagesPerSecond: m.imagesPerSecond,
  };
}

async function loadStartingWeights(deps: TrainingDeps, tm: TransferModel, tenant: string, spec: JobSpec): Promise<void> {
  if (spec.baseWeights === "none") return;
  if (spec.baseWeights === "imagenet") {
    await loadImagenetWeights(tm, deps.config.imagenetWeights);
    return;
  }
  const file = await weightsFilePath(deps.storage, tenant, spec.baseWeights);
  if (!file) {
    throw new AppError("WEIGHTS_NOT_FOUND", `weights "${spec.baseWeights}" were deleted after the job was created: upload them again and post a new job`, {
      weightsId: spec.baseWeights,
    });
  }
  await loadBaseWeights(tm, file);
}

export async function runTraining(deps: TrainingDeps, job: TrainingJob, signal?: AbortSignal): Promise<TrainingOutcome> {
  const { storage, db, config } = deps;
  const { jobId, tenant, spec } = job.data;
  const log = deps.log.child({ jobId, attemptsMade: job.attemptsMade });
  const stopped = (epochsDone: number): TrainingOutcome => ({ status: "stopped", reason: stopReasonOf(signal) ?? STOP_REASON.cancel, epochsDone });

  if (await isCancelRequested(db, jobId)) return { status: "stopped", reason: STOP_REASON.cancel, epochsDone: 0 };

  const backend = await selectBackend(config.tfjsBackend, log);
  // Kept for the process's later jobs; false where it cannot help (not wasm, one core). Only a speed-up:
  // if it cannot start, the job trains on one thread.
  const gradientThread =
    config.gradientThread &&
    (await startGradientThread().catch((error: unknown) => {
      log.warn({ err: error }, "filter-gradient helper thread did not start; training on one thread");
      return false;
    }));
  const engine = await resolveEngine(config.trainingEngine, backend.name, log);
  await setJobInfo(db, jobId, { backend: backend.name, engine });
  await job.updateProgress({ epoch: 1, epochs: spec.epochs, batch: 0, batches: 0, fraction: 0, backend: backend.name });

  const data = await prepareTrainingData({
    storage,
    tenant,
    datasetId: spec.datasetId,
    imageSize: spec.imageSize,
    classes: spec.classes ?? undefined,
    validationSplit: spec.validationSplit,
    seed: spec.seed,
    batchSize: spec.batchSize,
    log,
  });
  if (signal?.aborted) return stopped(0);

  const modelOptions: TransferModelOptions = {
    imageSize: spec.imageSize,
    numClasses: data.classes.length,
    head: spec.head,
    unfrozenLayers: spec.unfrozenLayers,
    seed: spec.seed,
  };
  const tm = buildTransferModel(modelOptions);
  const { model } = tm;
  let cached: CachedTrunk | null = null;
  let streamed: StreamedTrunk | null = null;
  try {
    const resumeFrom: CheckpointManifest | undefined = await resumableCheckpoint(storage, tenant, jobId, (epoch, problem) =>
      log.warn({ epoch, problem }, "checkpoint failed its check: deleted, resuming from an earlier one"),
    );
    let optimizerState;
    if (resumeFrom) {
      await loadModelWeights(model, await checkpointModelPath(storage, tenant, jobId, resumeFrom.epoch));
      optimizerState = await readCheckpointOptimizerState(storage, tenant, jobId, resumeFrom.epoch);
      // The record may lack the checkpoint's last epoch (killed between the two writes) or hold later ones.
      for (const m of resumeFrom.metrics) await appendEpochMetrics(db, jobId, m);
      log.info({ epoch: resumeFrom.epoch }, "resuming from checkpoint");
    } else {
      await loadStartingWeights(deps, tm, tenant, spec);
    }
    const history: EpochMetrics[] = resumeFrom ? [...resumeFrom.metrics] : [];

    // The epochs before a resume are replayed so the best value and the patience count carry on.
    const stopping = spec.earlyStopping ? earlyStopping(model, spec.earlyStopping, history.map(toTrainMetrics)) : null;
    /** The job epoch (1-based) whose weights restoreBest may need: its checkpoint must survive pruning. */
    const bestToKeep = () => (spec.earlyStopping?.restoreBest && stopping?.bestEpoch != null ? stopping.bestEpoch + 1 : null);

    const augmenting = spec.augmentation !== null && !isIdentityAugmentation(spec.augmentation);
    // Without augmentation the frozen trunk is a fixed function of each image: compute it once (feature cache).
    cached = config.featureCache && !augmenting ? await prepareCachedTrunk({
      tm,
      modelOptions,
      storage,
      tenant,
      datasetId: spec.datasetId,
      rows: data.decoded.count,
      readPixels: (first, count) => readDecodedRange(data.decoded, first, count),
      dtype: config.featureCacheDtype,
      budgetBytes: config.featureCacheBytes,
      backend: backend.name,
      engine,
      threads: config.trunkThreads,
      log,
    }) : null;
    const featureCache = cached !== null;
    await setJobInfo(db, jobId, { featureCache });
    log.info({ featureCache, engine, gradientThread, cut: cached?.cut.map((c) => c.layer), featuresComputed: cached?.cache.built }, "training data ready");
    const featureSource = (examples: Examples, shuffle: boolean) =>
      rowBatchSource({ ...examples, numClasses: data.classes.length, batchSize: spec.batchSize, seed: spec.seed, shuffle, read: (rows) => cached!.reader.read(rows) });
    // Not cached: the frozen trunk still runs outside the gradient tape, batch by batch, in front of the tail.
    streamed = cached ? null : await prepareStreamedTrunk(tm, spec.unfrozenLayers, spec.imageSize, engine);
    const images = augmenting ? augmentBatches(data.train, spec.augmentation!, spec.seed) : data.train;
    const trainSource = cached ? featureSource(data.trainExamples, true) : streamed ? streamed.batches(images) : images;
    const validationSource = cached
      ? data.validation && featureSource(data.validationExamples, false)
      : streamed && data.validation
        ? streamed.batches(data.validation)
        : data.validation;
    // The tail shares the full model's layers: training it trains the model that is checkpointed and saved.
    const trainedModel = cached?.tail ?? streamed?.tail ?? model;
    const epochs = spec.epochs;
    const keep = spec.keepCheckpoints;
    let lastProgress = 0;
    const result = await train({
      model: trainedModel,
      learningRate: spec.learningRate,
      epochs,
      initialEpoch: history.length,
      train: trainSource,
      validation: validationSource,
      seed: spec.seed,
      signal,
      optimizerState,
      callbacks: {
        async onBatchEnd({ epoch, batch, batches, loss }) {
          // Keras' TerminateOnNaN, but the job fails with a reason instead of saving a model that outputs NaN.
          if (!Number.isFinite(loss)) {
            throw new AppError(
              "TRAINING_DIVERGED",
              `training diverged: the loss became ${loss} in epoch ${epoch + 1}, batch ${batch + 1}; lower the learningRate (it is ${spec.learningRate}), or check the base weights for NaN or infinite values`,
              { epoch: epoch + 1, batch: batch + 1, learningRate: spec.learningRate },
            );
          }
          const now = Date.now();
          if (now - lastProgress < PROGRESS_INTERVAL_MS || batch + 1 === batches) return;
          lastProgress = now;
          await job.updateProgress({ epoch: epoch + 1, epochs, batch: batch + 1, batches, fraction: (epoch + (batch + 1) / batches) / epochs });
        },
        async onEpochEnd(info, optimizer) {
          const metrics = toJobMetrics(info);
          history.push(metrics);
          await writeCheckpoint(storage, { tenant, jobId, model, optimizerState: await exportOptimizerState(optimizer, model), metrics: [...history], seed: spec.seed });
          await appendEpochMetrics(db, jobId, metrics);
          await pruneCheckpoints(storage, tenant, jobId, keep, bestToKeep());
          const done = { epoch: metrics.epoch, epochs, batch: trainSource.batchCount, batches: trainSource.batchCount, fraction: metrics.epoch / epochs };
          lastProgress = Date.now();
          // Two updates: the jobs API turns one carrying metrics into an `epoch` event, one carrying a checkpoint into a `checkpoint` event.
          await job.updateProgress({ ...done, metrics, backend: backend.name, featureCache });
          await job.updateProgress({ ...done, checkpoint: { epoch: metrics.epoch } });
          log.info({ ...metrics }, "epoch done");
          return stopping?.onEpochEnd(info);
        },
      },
    });
    result.optimizer.dispose();
    if (result.aborted) return stopped(history.length);
    const restored = stopping?.restoreBestWeights() ?? null;
    const best = bestToKeep();
    if (restored === null && stopping?.stoppedEpoch != null && best !== null) {
      // The best epoch ran before a resume: its weights are in its checkpoint, not in memory.
      await loadModelWeights(model, await checkpointModelPath(storage, tenant, jobId, best));
      log.info({ epoch: best }, "restored the best epoch's weights from its checkpoint");
    }

    const report = data.validation
      ? await (async () => {
          const evaluation = await evaluate(trainedModel, validationSource!);
          // The validation source keeps validationExamples' row order, so example i is row rows[i] of the index.
          const index = await readDatasetIndex(storage, tenant, spec.datasetId);
          const examples = data.validationExamples.rows.map((row) => ({ index: row, path: index?.images[row]?.path ?? "" }));
          return {
            ...classificationReport(evaluation.labels, evaluation.predictions, data.classes),
            misclassified: misclassifiedImages(evaluation.labels, evaluation.predictions, examples, data.classes),
          };
        })()
      : null;
    const modelId = modelIdForJob(jobId);
    await saveTrainedModel(storage, {
      tenant,
      modelId,
      model,
      jobId,
      datasetId: spec.datasetId,
      classes: data.classes,
      imageSize: spec.imageSize,
      preprocessing: CAFFE_PREPROCESSING,
      spec,
      metrics: history[history.length - 1],
      history,
      report,
      backend: backend.name,
    });
    await setJobInfo(db, jobId, { modelId });
    log.info({ modelId, epochs: history.length }, "model saved");
    return { status: "completed", modelId };
  } finally {
    await cached?.close();
    await streamed?.close();
    model.dispose();
    tf.disposeVariables();
  }
}
