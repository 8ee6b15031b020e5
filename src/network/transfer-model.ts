// The tutorial's transfer model: the ResNet-50 base, then Flatten (or average pooling) -> Dense(relu)
// -> Dropout -> Dense(softmax), as one flat model; and the freezing of the base's last N layers.
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../errors.js";
import { RESNET50_LAYER_COUNT, resnet50Graph, seedSequence, validateResNet50Options } from "./resnet50.js";

/** The classifier head: pooling -> Dense(denseUnits, relu) -> Dropout(dropout) -> Dense(classes, softmax). */
export interface HeadSpec {
  pooling: "flatten" | "avg";
  denseUnits: number;
  dropout: number;
}

export interface TransferModelOptions {
  imageSize: number;
  numClasses: number;
  head: HeadSpec;
  /** How many of the base's last layers train, counted like Keras' `base_model.layers[-N:]`. */
  unfrozenLayers: number;
  seed?: number;
}

export interface TransferModel {
  /** Flat: the 175 base layers (Keras order), then the head. */
  model: tf.LayersModel;
  baseLayers: tf.layers.Layer[];
  headLayers: tf.layers.Layer[];
}

export const MAX_CLASSES = 10_000;
/** openapi.yaml's JobSpec.head.denseUnits maximum (a test keeps the two equal). */
export const MAX_DENSE_UNITS = 8192;
// Head seeds start far from the base's (seed + 0..52) so no two initializers share a stream.
const HEAD_SEED_OFFSET = 1_000;

function invalid(field: string, value: unknown, rule: string): AppError {
  return new AppError("INVALID_MODEL_OPTIONS", `${field} must be ${rule}, got ${JSON.stringify(value)}`, { field, value });
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
}

export function validateUnfrozenLayers(unfrozenLayers: unknown): void {
  if (!isIntegerIn(unfrozenLayers, 0, RESNET50_LAYER_COUNT)) {
    throw invalid("unfrozenLayers", unfrozenLayers, `an integer from 0 to ${RESNET50_LAYER_COUNT}`);
  }
}

export function validateTransferModelOptions(options: TransferModelOptions): void {
  validateResNet50Options(options);
  const { numClasses, head, unfrozenLayers } = options;
  if (!isIntegerIn(numClasses, 2, MAX_CLASSES)) throw invalid("numClasses", numClasses, `an integer from 2 to ${MAX_CLASSES}`);
  if (typeof head !== "object" || head === null) throw invalid("head", head, "an object");
  if (head.pooling !== "flatten" && head.pooling !== "avg") throw invalid("head.pooling", head.pooling, `"flatten" or "avg"`);
  if (!isIntegerIn(head.denseUnits, 1, MAX_DENSE_UNITS)) {
    throw invalid("head.denseUnits", head.denseUnits, `an integer from 1 to ${MAX_DENSE_UNITS}`);
  }
  if (typeof head.dropout !== "number" || !(head.dropout >= 0 && head.dropout < 1)) {
    throw invalid("head.dropout", head.dropout, "a number from 0 (included) to 1 (excluded)");
  }
  validateUnfrozenLayers(unfrozenLayers);
}

export function buildTransferModel(options: TransferModelOptions): TransferModel {
  validateTransferModelOptions(options);
  const { imageSize, numClasses, head, unfrozenLayers, seed } = options;
  const nextSeed = seedSequence(seed === undefined ? undefined : seed + HEAD_SEED_OFFSET);
  const headLayers: tf.layers.Layer[] = [
    head.pooling === "flatten" ? tf.layers.flatten({ name: "flatten" }) : tf.layers.globalAveragePooling2d({ name: "avg_pool" }),
    tf.layers.dense({
      units: head.denseUnits,
      activation: "relu",
      kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }),
      biasInitializer: "zeros",
      name: "dense",
    }),
    // Unseeded on purpose: tfjs reuses a Dropout's seed for every mask (the same units dropped at every
    // step); train() (src/training/dropout-seeds.ts) seeds each step's mask from the job seed instead.
    tf.layers.dropout({ rate: head.dropout, name: "dropout" }),
    tf.layers.dense({
      units: numClasses,
      activation: "softmax",
      kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }),
      biasInitializer: "zeros",
      name: "predictions",
    }),
  ];
  const { input, output } = resnet50Graph({ imageSize, seed });
  const top = headLayers.reduce((x, layer) => layer.apply(x) as tf.SymbolicTensor, output);
  const model = tf.model({ inputs: input, outputs: top, name: "resnet50_transfer" });
  const tm = { model, baseLayers: model.layers.slice(0, RESNET50_LAYER_COUNT), headLayers };
  setUnfrozenLayers(tm, unfrozenLayers);
  return tm;
}

/**
 * Makes exactly the last `unfrozenLayers` base layers trainable (Keras' `base_model.layers[-N:]`,
 * layers without weights included) and the head trainable. Frozen BatchNormalization layers then run
 * in inference mode. As in Keras, a model compiled before this call must be compiled again: tfjs
 * collects the trainable weights at compile time.
 */
export function setUnfrozenLayers(tm: TransferModel, unfrozenLayers: number): void {
  validateUnfrozenLayers(unfrozenLayers);
  const firstTrainable = tm.baseLayers.length - unfrozenLayers;
  tm.baseLayers.forEach((layer, i) => {
    layer.trainable = i >= firstTrainable;
  });
  for (const layer of tm.headLayers) layer.trainable = true;
}
