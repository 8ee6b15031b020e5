// What train() runs on, by strategy: the frozen trunk's cached features, the
// trunk computed batch by batch in front of the tail (streamed), or the whole
// model on its images. The job's engine computes the trunk in the first two.
// The tail shares the full model's layers: training it trains the model that
// is checkpointed and saved.
import type * as tf from "@tensorflow/tfjs";
import type { BatchSource, ModelInputs } from "../datasets/batch-source.js";
import { readDecodedRange } from "../datasets/decoded-cache.js";
import { rowBatchSource } from "../datasets/row-batch-source.js";
import type { Examples } from "../datasets/training-data.js";
import type { TransferModel } from "../network/transfer-model.js";
import { prepareCachedTrunk } from "../training/cached-trunk.js";
import { prepareStreamedTrunk } from "../training/streamed-trunk.js";
import { augmentBatches, isIdentityAugmentation } from "./augment-batches.js";
import type { Attempt } from "./training-attempt.js";

export interface TrainingInputs {
  strategy: "cached" | "streamed" | "whole";
  train: BatchSource<ModelInputs>;
  validation: BatchSource<ModelInputs> | null;
  /** The model train() updates: the tail, or the whole model. */
  model: tf.LayersModel;
  /** For the "training data ready" log line. */
  details: Record<string, unknown>;
  close(): Promise<void>;
}

interface InputsStrategy {
  /** null when the strategy does not apply to this attempt; the next one is tried. */
  open(attempt: Attempt, tm: TransferModel): Promise<TrainingInputs | null>;
}

/** The spec's augmentation, or null when it leaves every image as it is. */
const augmentationOf = ({ spec }: Attempt) => (isIdentityAugmentation(spec.augmentation) ? null : spec.augmentation);

/** The training images, augmented when the spec asks for it. */
function trainImages(attempt: Attempt): BatchSource {
  const augmentation = augmentationOf(attempt);
  return augmentation ? augmentBatches(attempt.data.train, augmentation, attempt.spec.seed) : attempt.data.train;
}

/** Without augmentation the frozen trunk is a fixed function of each image: compute it once (feature cache). */
const cachedInputs: InputsStrategy = {
  async open(attempt, tm) {
    const { config, spec, data } = attempt;
    if (!config.featureCache || augmentationOf(attempt)) return null;
    const cached = await prepareCachedTrunk({
      tm,
      modelOptions: attempt.modelOptions,
      storage: attempt.storage,
      tenant: attempt.tenant,
      datasetId: spec.datasetId,
      rows: data.decoded.count,
      readPixels: (first, count) => readDecodedRange(data.decoded, first, count),
      dtype: config.featureCacheDtype,
      budgetBytes: config.featureCacheBytes,
      backend: attempt.backend,
      engine: attempt.engine,
      threads: config.trunkThreads,
      log: attempt.log,
    });
    if (!cached) return null;
    const features = (examples: Examples, shuffle: boolean) =>
      rowBatchSource({
        ...examples,
        numClasses: data.classes.length,
        batchSize: spec.batchSize,
        seed: spec.seed,
        shuffle,
        read: (rows) => cached.reader.read(rows),
      });
    return {
      strategy: "cached",
      train: features(data.trainExamples, true),
      validation: data.validation && features(data.validationExamples, false),
      model: cached.tail,
      details: { cut: cached.cut.map((c) => c.layer), featuresComputed: cached.cache.built },
      close: () => cached.close(),
    };
  },
};

/** Not cached: the frozen trunk still runs outside the gradient tape, batch by batch, in front of the tail. */
const streamedInputs: InputsStrategy = {
  async open(attempt, tm) {
    const { spec, data } = attempt;
    const streamed = await prepareStreamedTrunk(tm, spec.unfrozenLayers, spec.imageSize, attempt.engine);
    if (!streamed) return null;
    return {
      strategy: "streamed",
      train: streamed.batches(trainImages(attempt)),
      validation: data.validation && streamed.batches(data.validation),
      model: streamed.tail,
      details: {},
      close: () => streamed.close(),
    };
  },
};

/** Nothing before the head is frozen: the whole model trains on its images. */
function wholeInputs(attempt: Attempt, tm: TransferModel): TrainingInputs {
  return {
    strategy: "whole",
    train: trainImages(attempt),
    validation: attempt.data.validation,
    model: tm.model,
    details: {},
    close: async () => {},
  };
}

/** The first strategy that applies, in order of speed; the whole model always does. */
export async function openTrainingInputs(attempt: Attempt, tm: TransferModel): Promise<TrainingInputs> {
  for (const strategy of [cachedInputs, streamedInputs]) {
    const inputs = await strategy.open(attempt, tm);
    if (inputs) return inputs;
  }
  return wholeInputs(attempt, tm);
}
