// Keras' EarlyStopping callback (tf.keras 2 semantics, the tutorial's) as an
// onEpochEnd function for train(), with the best weights kept on the side.
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../errors.js";
import type { EpochMetrics } from "./epoch-metrics.js";

/** The metric names train() reports, in Keras' spelling. */
export type MonitoredMetric = "val_loss" | "val_accuracy" | "loss" | "accuracy";

export interface EarlyStoppingOptions {
  /** Keras' `monitor`; accuracies are maximised, losses minimised (Keras' mode "auto"). */
  monitor: MonitoredMetric;
  /** Epochs without improvement before stopping. */
  patience: number;
  /** An improvement must beat the best value by more than |minDelta|. */
  minDelta: number;
  /** Keras' `restore_best_weights`. */
  restoreBest: boolean;
}

export interface EarlyStopping {
  /** Pass as (or call from) train()'s onEpochEnd: returns "stop" when patience has run out. */
  onEpochEnd(info: EpochMetrics): "stop" | undefined;
  /**
   * After train(): when restoreBest is set and training stopped early, puts
   * the best epoch's weights back into the model and returns that epoch;
   * otherwise leaves the last weights, as tf.keras 2 does, and returns null.
   * Also null when the best epoch is one replayed from before a resume: its
   * weights are not in memory, the caller loads that epoch's checkpoint
   * (`bestEpoch`). Frees the kept weights either way.
   */
  restoreBestWeights(): number | null;
  readonly bestEpoch: number | null;
  readonly best: number;
  /** The epoch at whose end training was stopped, null while it runs on. */
  readonly stoppedEpoch: number | null;
}

const FIELD: Record<MonitoredMetric, keyof EpochMetrics> = {
  val_loss: "valLoss",
  val_accuracy: "valAccuracy",
  loss: "loss",
  accuracy: "accuracy",
};

/**
 * `previous`: the metrics of the epochs a resumed job already ran, replayed
 * (without weights) so that the best value and the patience count carry on
 * as if the job had never been interrupted.
 */
export function earlyStopping(model: tf.LayersModel, options: EarlyStoppingOptions, previous: readonly EpochMetrics[] = []): EarlyStopping {
  const { monitor, patience, minDelta, restoreBest } = options;
  if (!(monitor in FIELD)) {
    throw new AppError(
      "INVALID_TRAINING_OPTIONS",
      `early stopping monitor must be one of ${Object.keys(FIELD).join(", ")}, got "${String(monitor)}"`,
    );
  }
  if (!Number.isInteger(patience) || patience < 0) {
    throw new AppError("INVALID_TRAINING_OPTIONS", `early stopping patience must be an integer >= 0, got ${patience}`);
  }
  if (!Number.isFinite(minDelta)) {
    throw new AppError("INVALID_TRAINING_OPTIONS", `early stopping minDelta must be a number, got ${minDelta}`);
  }
  const maximise = monitor.endsWith("accuracy");
  const delta = Math.abs(minDelta);
  const improves = (current: number, reference: number) => (maximise ? current - delta > reference : current + delta < reference);

  let best = maximise ? -Infinity : Infinity;
  let bestEpoch: number | null = null;
  let stoppedEpoch: number | null = null;
  let wait = 0;
  let kept: { epoch: number | null; weights: tf.Tensor[] } | null = null;

  const keepWeights = (epoch: number | null) => {
    tf.dispose(kept?.weights ?? []);
    kept = { epoch, weights: model.getWeights().map((w) => tf.clone(w)) };
  };

  /** Keras' on_epoch_end; `live` is false while replaying epochs from before a resume. */
  const epochEnd = (info: EpochMetrics, live: boolean): "stop" | undefined => {
    const current = info[FIELD[monitor]];
    // Keras warns and carries on when the metric is missing (no validation data).
    if (typeof current !== "number") return undefined;
    wait += 1;
    const improved = improves(current, best);
    if (improved) {
      best = current;
      bestEpoch = info.epoch;
      wait = 0;
    }
    // Keras keeps the first epoch's weights even when they are no improvement (a NaN value).
    if (live && restoreBest && (improved || (kept === null && bestEpoch === null))) keepWeights(bestEpoch);
    if (improved) return undefined;
    // Keras never stops at the first epoch.
    if (wait >= patience && info.epoch > 1) {
      stoppedEpoch = info.epoch;
      return "stop";
    }
    return undefined;
  };
  for (const info of previous) epochEnd(info, false);
  stoppedEpoch = null;

  return {
    onEpochEnd: (info) => epochEnd(info, true),
    restoreBestWeights() {
      const snapshot: { epoch: number | null; weights: tf.Tensor[] } | null = kept;
      kept = null;
      if (snapshot === null) return null;
      const restore = stoppedEpoch !== null && snapshot.epoch === bestEpoch;
      if (restore) model.setWeights(snapshot.weights);
      tf.dispose(snapshot.weights);
      return restore ? bestEpoch : null;
    },
    get bestEpoch() {
      return bestEpoch;
    },
    get best() {
      return best;
    },
    get stoppedEpoch() {
      return stoppedEpoch;
    },
  };
}
