// What a training job reads: a dataset decoded once at the job's image size,
// split (predefined, or stratified and seeded), served as shuffled batches of
// caffe-preprocessed tensors with one-hot labels in the job's class order.
// Only one batch of pixels is in memory at a time.
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../errors.js";
import { preprocessInput } from "../network/preprocess.js";
import type { Storage } from "../storage/storage.js";
import type { BatchSource } from "./batch-source.js";
import { rowBatchSource } from "./row-batch-source.js";
import type { Logger } from "../log.js";
import { openDecodedCache, type DecodedCache } from "./decoded-cache.js";
import { getDataset, readDatasetIndex } from "./dataset-store.js";
import { decodeResizeRgb, rgbToTensor } from "./image-decode.js";
import { splitIndex } from "./split.js";

export interface TrainingDataOptions {
  storage: Storage;
  tenant: string;
  datasetId: string;
  imageSize: number;
  /** Subset and order of the dataset's classes (label i = classes[i]); default: all, sorted. */
  classes?: string[];
  /** Fraction per class held out for validation; ignored when the dataset has a predefined split. */
  validationSplit: number;
  seed: number;
  batchSize: number;
  /** Told when a stored cache fails its check and is rebuilt. */
  log?: Logger;
}

export interface TrainingData {
  classes: string[];
  train: BatchSource;
  validation: BatchSource | null;
  trainCount: number;
  validationCount: number;
  /** The decoded-image table the sources read, and which of its rows each side uses: for sources over other tables with the same rows (cached trunk features). */
  decoded: DecodedCache;
  trainExamples: Examples;
  validationExamples: Examples;
}

/** Rows of the dataset index (= rows of its decoded and feature tables) and their labels in the job's class order. */
export interface Examples {
  rows: number[];
  labels: number[];
}

/**
 * Caffe-preprocessed pixels of one image, [imageSize, imageSize, 3]: what
 * predict feeds the model. Rejects (sharp's error) an image it cannot decode
 * or one over `maxPixels` (pass MAX_IMAGE_PIXELS).
 */
export async function decodeImageForModel(input: Buffer, imageSize: number, maxPixels?: number): Promise<tf.Tensor3D> {
  const pixels = await decodeResizeRgb(input, imageSize, maxPixels);
  return tf.tidy(() => preprocessInput(rgbToTensor(pixels, 1, imageSize)).squeeze([0]) as tf.Tensor3D);
}

/** Batches of decoded images from the cache rows, caffe-preprocessed; read ahead while the previous batch trains. */
function imageBatchSource(
  cache: DecodedCache,
  examples: Examples,
  numClasses: number,
  batchSize: number,
  seed: number,
  shuffle: boolean,
): BatchSource {
  return rowBatchSource({
    ...examples,
    numClasses,
    batchSize,
    seed,
    shuffle,
    async read(rows) {
      const reader = await cache.open();
      try {
        const pixels = await reader.read(rows);
        return tf.tidy(() => preprocessInput(rgbToTensor(pixels, rows.length, cache.imageSize)));
      } finally {
        await reader.close();
      }
    },
  });
}

export async function prepareTrainingData(opts: TrainingDataOptions): Promise<TrainingData> {
  const { storage, tenant, datasetId, imageSize, validationSplit, seed, batchSize } = opts;
  const record = await getDataset(storage, tenant, datasetId);
  const index = await readDatasetIndex(storage, tenant, datasetId);
  if (!record || !index) throw new AppError("DATASET_NOT_FOUND", `no dataset "${datasetId}"`, { id: datasetId });
  const classes = opts.classes ?? record.classes;
  const unknown = classes.filter((c) => !record.classes.includes(c));
  if (unknown.length > 0) {
    throw new AppError("VALIDATION_FAILED", `classes not in dataset "${datasetId}": ${unknown.join(", ")}`, {
      unknown,
      classes: record.classes,
    });
  }

  const predefined = record.split === "predefined";
  const split = splitIndex(index, predefined, classes, validationSplit, seed);
  const labelOf = new Map(classes.map((c, i) => [c, i]));
  const labels = (rows: number[]) => rows.map((row) => labelOf.get(index.images[row].class)!);
  const cache = await openDecodedCache(storage, tenant, datasetId, index, imageSize, opts.log);
  const trainExamples = { rows: split.train, labels: labels(split.train) };
  const validationExamples = { rows: split.validation, labels: labels(split.validation) };
  return {
    classes,
    train: imageBatchSource(cache, trainExamples, classes.length, batchSize, seed, true),
    // No held-out image (validationSplit 0, or no val/ folder): no validation source at all.
    validation: split.validation.length > 0 ? imageBatchSource(cache, validationExamples, classes.length, batchSize, seed, false) : null,
    trainCount: split.train.length,
    validationCount: split.validation.length,
    decoded: cache,
    trainExamples,
    validationExamples,
  };
}
