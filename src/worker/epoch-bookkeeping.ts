// What happens around each step and epoch of train() for a job: live progress,
// the NaN guard, a checkpoint and the job's metrics per epoch, early stopping,
// and afterwards the best epoch's weights put back.
import type { TrainCallbacks } from "../training/train.js";
import type { EpochMetrics } from "../training/epoch-metrics.js";
import { earlyStopping } from "../training/early-stopping.js";
import { loadModelWeights } from "../weight-files/index.js";
import { AppError } from "../errors.js";
import { appendEpochMetrics, setJobInfo } from "../jobs/job-records.js";
import { checkpointModelPath, pruneCheckpoints, writeCheckpoint } from "../training/checkpoints.js";
import type { Attempt } from "./training-attempt.js";
import type { TrainingInputs } from "./training-inputs.js";
import type * as tf from "@tensorflow/tfjs";

/** Batch-level progress is sent at most this often (epoch ends always are). */
export const PROGRESS_INTERVAL_MS = 500;

export interface EpochBookkeeping {
  callbacks: TrainCallbacks;
  /** Every finished epoch of the job, those before a resume included. */
  history: EpochMetrics[];
  /** After train(): the best epoch's weights back into `model` when early stopping asks for them. */
  restoreBest(): Promise<void>;
}

/** `model` is the whole model (checkpointed), `done` the epochs run before this attempt. */
export function epochBookkeeping(
  attempt: Attempt,
  model: tf.LayersModel,
  inputs: TrainingInputs,
  done: readonly EpochMetrics[],
): EpochBookkeeping {
  const { storage, db, tenant, jobId, spec, job, log } = attempt;
  const history = [...done];
  const epochs = spec.epochs;
  // The epochs before a resume are replayed so the best value and the patience count carry on.
  const stopping = spec.earlyStopping ? earlyStopping(model, spec.earlyStopping, history) : null;
  /** The epoch whose weights restoreBest may need: its checkpoint must survive pruning. */
  const bestToKeep = () => (spec.earlyStopping?.restoreBest && stopping?.bestEpoch != null ? stopping.bestEpoch : null);
  let lastProgress = 0;

  const callbacks: TrainCallbacks = {
    async onStart({ engine }) {
      await setJobInfo(db, jobId, { stepEngine: engine });
      log.info({ stepEngine: engine, strategy: inputs.strategy }, `training steps run on ${engine}`);
    },
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
    async onEpochEnd(metrics, optimizer) {
      history.push(metrics);
      await writeCheckpoint(storage, {
        tenant,
        jobId,
        model,
        optimizerState: await optimizer.exportOptimizerState(),
        metrics: [...history],
        seed: spec.seed,
      });
      await appendEpochMetrics(db, jobId, metrics);
      await pruneCheckpoints(storage, tenant, jobId, spec.keepCheckpoints, bestToKeep());
      const batches = inputs.train.batchCount;
      const progress = { epoch: metrics.epoch, epochs, batch: batches, batches, fraction: metrics.epoch / epochs };
      lastProgress = Date.now();
      // Two updates: the jobs API turns one carrying metrics into an `epoch` event, one carrying a checkpoint into a `checkpoint` event.
      await job.updateProgress({ ...progress, metrics, backend: attempt.backend, featureCache: inputs.strategy === "cached" });
      await job.updateProgress({ ...progress, checkpoint: { epoch: metrics.epoch } });
      log.info({ ...metrics }, "epoch done");
      return stopping?.onEpochEnd(metrics);
    },
  };

  async function restoreBest(): Promise<void> {
    const restored = stopping?.restoreBestWeights() ?? null;
    const best = bestToKeep();
    if (restored === null && stopping?.stoppedEpoch != null && best !== null) {
      // The best epoch ran before a resume: its weights are in its checkpoint, not in memory.
      await loadModelWeights(model, await checkpointModelPath(storage, tenant, jobId, best));
      log.info({ epoch: best }, "restored the best epoch's weights from its checkpoint");
    }
  }

  return { callbacks, history, restoreBest };
}
