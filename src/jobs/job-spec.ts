// The training job spec (design §5): what a client posts to /v1/jobs, with the
// tutorial's defaults applied. openapi.yaml validates it and carries the same
// defaults (a test keeps the two equal); the worker trains from it as is.
import type { HeadSpec } from "../network/transfer-model.js";
import type { WebhookSpec } from "../webhooks/webhook-events.js";

/** Keras RandomFlip("horizontal") / RandomRotation(rotate) / RandomZoom(zoom) on training batches only. */
export interface AugmentationSpec {
  /** Random left-right flips. */
  flip: boolean;
  /** Largest rotation as a fraction of a full turn (Keras RandomRotation factor), 0..0.5. */
  rotate: number;
  /** Largest zoom in or out as a fraction of the image size (Keras RandomZoom factor), 0..0.9. */
  zoom: number;
}

/** Keras EarlyStopping: stop when `monitor` has not improved by `minDelta` for `patience` epochs. */
export interface EarlyStoppingSpec {
  monitor: "val_loss" | "val_accuracy" | "loss" | "accuracy";
  patience: number;
  minDelta: number;
  /** Keep the weights of the best epoch at the end (Keras restore_best_weights). */
  restoreBest: boolean;
}

export interface JobSpec {
  datasetId: string;
  /** "imagenet", "none" (random init) or the id of an uploaded weights file (`wts_...`). */
  baseWeights: string;
  /** The last N layers of the 175-layer base are trained (Keras base_model.layers[-N:]). */
  unfrozenLayers: number;
  /** Subset and order of the dataset's classes; null = all of them, sorted. */
  classes: string[] | null;
  learningRate: number;
  epochs: number;
  batchSize: number;
  imageSize: number;
  /** Fraction of each class held out for validation; ignored when the dataset has a predefined split. */
  validationSplit: number;
  head: HeadSpec;
  augmentation: AugmentationSpec | null;
  earlyStopping: EarlyStoppingSpec | null;
  seed: number;
  /** Checkpoints kept: the last `keepCheckpoints` epochs, plus the best by val_loss. */
  keepCheckpoints: number;
  /** Where the job's state changes are POSTed (signed); null = nowhere. */
  webhook: WebhookSpec | null;
}

/** The largest batchSize a spec may ask for (openapi.yaml's JobSpec says the same; a test keeps them equal). */
export const MAX_BATCH_SIZE = 1024;

export const JOB_SPEC_DEFAULTS = {
  baseWeights: "imagenet",
  unfrozenLayers: 10,
  classes: null,
  learningRate: 0.0001,
  epochs: 10,
  batchSize: 32,
  imageSize: 224,
  validationSplit: 0.2,
  head: { pooling: "flatten", denseUnits: 256, dropout: 0.5 },
  augmentation: null,
  earlyStopping: null,
  seed: 42,
  keepCheckpoints: 3,
  webhook: null,
} as const satisfies Omit<JobSpec, "datasetId">;

/** Base weights that name no uploaded file. */
export function isBuiltinWeights(baseWeights: string): baseWeights is "imagenet" | "none" {
  return baseWeights === "imagenet" || baseWeights === "none";
}
