// ResNet-50 without its ImageNet top, layer for layer as keras.applications.ResNet50(include_top=False):
// the builder functions, names and hyper-parameters of keras/applications/resnet.py (stack1/block1).
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../errors.js";
import { createBatchNormalization } from "./keras-batch-normalization.js";

export interface ResNet50Options {
  /** Height and width of the square RGB input, 32..512 px (Keras' minimum is 32). */
  imageSize: number;
  /** Seeds every kernel initializer so two builds with the same seed are identical; unseeded when absent. */
  seed?: number;
}

export const MIN_IMAGE_SIZE = 32;
export const MAX_IMAGE_SIZE = 512;
/** Layers of the base, the input layer included: what `unfrozenLayers` counts. */
export const RESNET50_LAYER_COUNT = 175;

const BN_EPSILON = 1.001e-5;
const CHANNELS_AXIS = 3;

export function validateResNet50Options(options: ResNet50Options): void {
  const { imageSize, seed } = options;
  if (!Number.isInteger(imageSize) || imageSize < MIN_IMAGE_SIZE || imageSize > MAX_IMAGE_SIZE) {
    throw new AppError(
      "INVALID_MODEL_OPTIONS",
      `imageSize must be an integer from ${MIN_IMAGE_SIZE} to ${MAX_IMAGE_SIZE}, got ${JSON.stringify(imageSize)}`,
      { field: "imageSize", value: imageSize },
    );
  }
  if (seed !== undefined && !Number.isSafeInteger(seed)) {
    throw new AppError("INVALID_MODEL_OPTIONS", `seed must be an integer, got ${JSON.stringify(seed)}`, {
      field: "seed",
      value: seed,
    });
  }
}

/** Hands out one seed per initializer, in build order, so each kernel gets its own stream. */
export function seedSequence(seed: number | undefined): () => number | undefined {
  let next = 0;
  return () => (seed === undefined ? undefined : seed + next++);
}

interface Builder {
  conv(
    x: tf.SymbolicTensor,
    filters: number,
    kernelSize: number,
    name: string,
    strides?: number,
    padding?: "valid" | "same",
  ): tf.SymbolicTensor;
  bn(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor;
  relu(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor;
}

function createBuilder(seed: number | undefined): Builder {
  const nextSeed = seedSequence(seed);
  return {
    conv: (x, filters, kernelSize, name, strides = 1, padding = "valid") =>
      tf.layers
        .conv2d({
          filters,
          kernelSize,
          strides,
          padding,
          useBias: true,
          kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed() }),
          biasInitializer: "zeros",
          name,
        })
        .apply(x) as tf.SymbolicTensor,
    bn: (x, name) => createBatchNormalization({ axis: CHANNELS_AXIS, epsilon: BN_EPSILON, name }).apply(x) as tf.SymbolicTensor,
    relu: (x, name) => tf.layers.activation({ activation: "relu", name }).apply(x) as tf.SymbolicTensor,
  };
}

/** keras block1: a residual block, with a projection shortcut in the first block of a stack. */
function block1(b: Builder, x: tf.SymbolicTensor, filters: number, stride: number, convShortcut: boolean, name: string): tf.SymbolicTensor {
  let shortcut = x;
  if (convShortcut) {
    shortcut = b.conv(x, 4 * filters, 1, `${name}_0_conv`, stride);
    shortcut = b.bn(shortcut, `${name}_0_bn`);
  }
  let y = b.conv(x, filters, 1, `${name}_1_conv`, stride);
  y = b.relu(b.bn(y, `${name}_1_bn`), `${name}_1_relu`);
  y = b.conv(y, filters, 3, `${name}_2_conv`, 1, "same");
  y = b.relu(b.bn(y, `${name}_2_bn`), `${name}_2_relu`);
  y = b.conv(y, 4 * filters, 1, `${name}_3_conv`);
  y = b.bn(y, `${name}_3_bn`);
  // [shortcut, y] as in Keras: the input order decides the layer order within a depth.
  const sum = tf.layers.add({ name: `${name}_add` }).apply([shortcut, y]) as tf.SymbolicTensor;
  return b.relu(sum, `${name}_out`);
}

/** keras stack1: `blocks` residual blocks, the first one strided. */
function stack1(b: Builder, x: tf.SymbolicTensor, filters: number, blocks: number, stride1: number, name: string): tf.SymbolicTensor {
  let y = block1(b, x, filters, stride1, true, `${name}_block1`);
  for (let i = 2; i <= blocks; i++) y = block1(b, y, filters, 1, false, `${name}_block${i}`);
  return y;
}

/** The base as a graph (input and output tensors), for models that continue it with a head. */
export function resnet50Graph(options: ResNet50Options): { input: tf.SymbolicTensor; output: tf.SymbolicTensor } {
  validateResNet50Options(options);
  const b = createBuilder(options.seed);
  const input = tf.input({ shape: [options.imageSize, options.imageSize, 3], name: "input_1" });
  let x = tf.layers.zeroPadding2d({ padding: 3, name: "conv1_pad" }).apply(input) as tf.SymbolicTensor;
  x = b.conv(x, 64, 7, "conv1_conv", 2);
  x = b.relu(b.bn(x, "conv1_bn"), "conv1_relu");
  x = tf.layers.zeroPadding2d({ padding: 1, name: "pool1_pad" }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name: "pool1_pool" }).apply(x) as tf.SymbolicTensor;
  x = stack1(b, x, 64, 3, 1, "conv2");
  x = stack1(b, x, 128, 4, 2, "conv3");
  x = stack1(b, x, 256, 6, 2, "conv4");
  x = stack1(b, x, 512, 3, 2, "conv5");
  return { input, output: x };
}

export function buildResNet50(options: ResNet50Options): tf.LayersModel {
  const { input, output } = resnet50Graph(options);
  return tf.model({ inputs: input, outputs: output, name: "resnet50" });
}
