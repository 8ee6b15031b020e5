// Loading weights files into models: format detection, the ResNet-50 check with its report, and the
// entry points the worker and the API use (base weights, ImageNet weights, our own checkpoints).
import fs from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { ArchiveLimits } from "../datasets/archive-guard.js";
import { AppError } from "../errors.js";
import { buildResNet50 } from "../network/resnet50.js";
import { isHdf5, openH5ForRead, unreadable, unsafe } from "./h5-file.js";
import { IMAGENET_WEIGHTS_FILE, IMAGENET_WEIGHTS_MD5, IMAGENET_WEIGHTS_URL } from "./imagenet.js";
import { readKeras3, keras3Keys } from "./keras3.js";
import { readKerasH5 } from "./keras-h5.js";
import { matchWeights, type ExpectedLayer, type ShapeMismatch, type WeightsMatch } from "./match-weights.js";
import { readTfjs } from "./tfjs-format.js";
import type { WeightsFormat, WeightsSource } from "./weights-source.js";

/** Reports and errors list at most this many layers of each kind (with the total count beside). */
export const MAX_LISTED = 20;

export interface WeightsReport {
  format: WeightsFormat;
  /** The file can be loaded into the model (for inspect: as ResNet-50 base weights). */
  usable: boolean;
  /** Model layers with weights whose weights the file holds with the right shapes (ResNet-50: 106 of 106). */
  matchedLayers: number;
  /** File layers after the base that loading skips (an ImageNet top, a previous fine-tune's head). */
  ignoredLayers: string[];
  missing: string[];
  unexpected: string[];
  shapeMismatches: ShapeMismatch[];
  /** Totals of the lists above, which hold at most MAX_LISTED entries each. */
  counts: { ignoredLayers: number; missing: number; unexpected: number; shapeMismatches: number };
  /** The file's layers that hold weights, in file order (Keras 3: by key). */
  fileLayers: string[];
}

/** Anything with a flat layer list; a TransferModel's base is its baseLayers. */
type ModelOrTransfer = tf.LayersModel | { model: tf.LayersModel; baseLayers: tf.layers.Layer[] };

function baseLayersOf(target: ModelOrTransfer): tf.layers.Layer[] {
  return "baseLayers" in target ? target.baseLayers : target.layers;
}

/**
 * Detects the format (Keras 2 h5, Keras 3 weights.h5, TF.js directory/model.json/zip) and opens the file.
 * A zip is held to `zipLimits` (the dataset archives' limits; their default settings when not given).
 */
export async function openWeightsFile(filePath: string, zipLimits?: ArchiveLimits): Promise<WeightsSource> {
  const stat = await fs.stat(filePath).catch(() => undefined);
  if (!stat) throw unreadable(filePath, "no such file");
  if (stat.isFile() && (await isHdf5(filePath))) {
    const file = await openH5ForRead(filePath);
    try {
      const source = readKerasH5(filePath, file) ?? readKeras3(filePath, file);
      if (source) return source;
      throw unreadable(filePath, "an HDF5 file without Keras weights (no layer_names attribute, no layers group)");
    } catch (error) {
      file.close();
      throw error;
    }
  }
  return readTfjs(filePath, zipLimits).catch((error: unknown) => {
    if (error instanceof AppError) throw error;
    throw unreadable(filePath, "neither a Keras HDF5 file nor a TensorFlow.js model (directory, model.json or zip)");
  });
}

export function expectedLayers(layers: readonly tf.layers.Layer[]): ExpectedLayer[] {
  const keys = keras3Keys(layers);
  return layers.flatMap((layer, i) =>
    layer.weights.length === 0
      ? []
      : [{ name: layer.name, keras3Key: keys[i], weights: layer.weights.map((w) => ({ name: w.originalName, shape: w.read().shape })) }],
  );
}

function toReport(source: WeightsSource, match: WeightsMatch, exact: boolean): WeightsReport {
  const usable =
    match.missing.length === 0 &&
    match.unexpected.length === 0 &&
    match.shapeMismatches.length === 0 &&
    (!exact || match.ignoredLayers.length === 0);
  return {
    format: source.format,
    usable,
    matchedLayers: match.matchedLayers,
    ignoredLayers: match.ignoredLayers.slice(0, MAX_LISTED),
    missing: match.missing.slice(0, MAX_LISTED),
    unexpected: match.unexpected.slice(0, MAX_LISTED),
    shapeMismatches: match.shapeMismatches.slice(0, MAX_LISTED),
    counts: {
      ignoredLayers: match.ignoredLayers.length,
      missing: match.missing.length,
      unexpected: match.unexpected.length,
      shapeMismatches: match.shapeMismatches.length,
    },
    fileLayers: source.layers.map((l) => l.name),
  };
}

function mismatchError(filePath: string, report: WeightsReport, what: string): AppError {
  const { format, matchedLayers, missing, unexpected, shapeMismatches, ignoredLayers, counts } = report;
  return new AppError(
    "WEIGHTS_MISMATCH",
    `${path.basename(filePath)} does not hold ${what}: ${counts.missing} layers missing, ${counts.unexpected} unexpected, ${counts.shapeMismatches} weights of the wrong shape`,
    { format, matchedLayers, missing, unexpected, shapeMismatches, ...(ignoredLayers.length ? { ignoredLayers } : {}), counts },
  );
}

/**
 * Reads every matched layer's values first, then sets them, so a failed read leaves the model untouched.
 * A read that returns more (or fewer) values than the layer's weight holds is refused: whatever a file
 * claims about a dataset's shape, a weight is filled only with exactly its own number of values.
 */
async function applyWeights(
  filePath: string,
  layers: readonly tf.layers.Layer[],
  expected: ExpectedLayer[],
  match: WeightsMatch,
): Promise<void> {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const values: { layer: tf.layers.Layer; data: Float32Array[] }[] = [];
  for (const [index, source] of match.pairs) {
    const layer = byName.get(expected[index].name)!;
    const data = await Promise.all(source.weights.map((w) => w.read()));
    data.forEach((d, i) => {
      const size = layer.weights[i].read().size;
      if (d.length !== size) throw unsafe(filePath, source.weights[i].name, `holds ${d.length} values for a weight of ${size}`);
    });
    values.push({ layer, data });
  }
  for (const { layer, data } of values) {
    const tensors = data.map((d, i) => tf.tensor(d, layer.weights[i].read().shape));
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
}

async function loadInto(
  layers: readonly tf.layers.Layer[],
  filePath: string,
  options: { exact: boolean; what: string },
): Promise<WeightsReport> {
  const source = await openWeightsFile(filePath);
  try {
    const expected = expectedLayers(layers);
    const match = matchWeights(expected, source);
    const report = toReport(source, match, options.exact);
    if (!report.usable) throw mismatchError(filePath, report, options.what);
    await applyWeights(filePath, layers, expected, match);
    return report;
  } finally {
    source.close();
  }
}

let resnet50Reference: ExpectedLayer[] | undefined;

/** ResNet-50's weighted layers; weight shapes do not depend on the image size. Built once per process. */
function resnet50Layers(): ExpectedLayer[] {
  if (!resnet50Reference) {
    const model = buildResNet50({ imageSize: 32 });
    resnet50Reference = expectedLayers(model.layers);
    model.dispose();
  }
  return resnet50Reference;
}

/** What a file holds and whether it can serve as ResNet-50 base weights; throws only WEIGHTS_UNREADABLE. */
export async function inspectWeightsFile(filePath: string, zipLimits?: ArchiveLimits): Promise<WeightsReport> {
  const source = await openWeightsFile(filePath, zipLimits);
  try {
    return toReport(source, matchWeights(resnet50Layers(), source), false);
  } finally {
    source.close();
  }
}

/**
 * Loads ResNet-50 base weights into the model's base layers. Layers after the base in the file are
 * ignored and reported; a file that is not ResNet-50 throws WEIGHTS_MISMATCH and leaves the model as it was.
 */
export async function loadBaseWeights(target: ModelOrTransfer, filePath: string): Promise<WeightsReport> {
  return loadInto(baseLayersOf(target), filePath, { exact: false, what: "ResNet-50 base weights" });
}

/** Loads every layer, head included, from a file saved from the same model (our .h5, a tfjs directory). */
export async function loadModelWeights(model: tf.LayersModel, filePath: string): Promise<WeightsReport> {
  return loadInto(model.layers, filePath, { exact: true, what: "the weights of this model" });
}

/** Keras' ImageNet weights from `filePath` (config.imagenetWeights); never downloaded here. */
export async function loadImagenetWeights(target: ModelOrTransfer, filePath: string): Promise<WeightsReport> {
  const exists = await fs
    .stat(filePath)
    .then((s) => s.isFile())
    .catch(() => false);
  if (!exists) {
    throw new AppError(
      "IMAGENET_WEIGHTS_MISSING",
      // This error reaches clients (a job's error): it names the setting, never the server's path.
      `ImageNet weights not found where IMAGENET_WEIGHTS points: put Keras' ${IMAGENET_WEIGHTS_FILE} there (from ${IMAGENET_WEIGHTS_URL}, md5 ${IMAGENET_WEIGHTS_MD5}; ` +
        "`npm run fetch:imagenet` downloads it) or set IMAGENET_WEIGHTS to its path",
      { setting: "IMAGENET_WEIGHTS", file: IMAGENET_WEIGHTS_FILE, url: IMAGENET_WEIGHTS_URL, md5: IMAGENET_WEIGHTS_MD5 },
    );
  }
  return loadBaseWeights(target, filePath);
}
