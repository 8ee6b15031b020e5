// How much memory training a job spec takes on the worker, from the real
// model: the transfer model is built once (at 32 px, on whatever backend is
// loaded), then every spec's layer shapes come from each layer's own
// computeOutputShape, without allocating its weights. docs/security.md
// documents the formula and the measurements its factors come from.
import type * as tf from "@tensorflow/tfjs";
import { MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, RESNET50_LAYER_COUNT } from "./resnet50.js";
import { buildTransferModel, type HeadSpec } from "./transfer-model.js";

export interface MemorySpec {
  imageSize: number;
  batchSize: number;
  unfrozenLayers: number;
  numClasses: number;
  head: Pick<HeadSpec, "pooling" | "denseUnits">;
}

export interface MemoryEstimate {
  totalBytes: number;
  /** Every weight of the model (the whole model is held for checkpoints). */
  weightsBytes: number;
  /** Gradient and Adam's two moments of every trainable weight. */
  trainingStateBytes: number;
  /** What the gradient tape keeps for one batch of the trainable part (cut tensors included). */
  tailActivationBytes: number;
  /** The frozen trunk's forward pass over one chunk of images, outside the tape. */
  trunkForwardBytes: number;
  /** One batch of pixels, uint8 and preprocessed float32. */
  inputBytes: number;
  /** The backend's runtime and kernels' scratch. */
  fixedBytes: number;
}

const FLOAT_BYTES = 4;
/** Bytes kept per trainable activation element under the tape: its value, its gradient and the kernels' intermediates (BatchNormalization's centred and scaled copies, ReLU masks). Measured: docs/security.md. */
export const TAPE_FACTOR = 6;
/** Bytes alive per element of the frozen trunk's largest activation in inference: its input, its output and a residual shortcut. */
export const FORWARD_FACTOR = 3;
/** Images per frozen-trunk pass (the feature cache runs chunks of 16; without the cache, trunk-batches.ts runs 8). */
export const TRUNK_CHUNK = 16;
export const FIXED_BYTES = 256 * 1024 ** 2;

interface LayerInfo {
  name: string;
  className: string;
  layer: tf.layers.Layer;
  inbound: string[];
  params: number;
}

let base: LayerInfo[] | undefined;

/** The 175 base layers in Keras order, with their parameter counts (which do not depend on the image size). */
function baseLayers(): LayerInfo[] {
  if (base) return base;
  const tm = buildTransferModel({
    imageSize: MIN_IMAGE_SIZE,
    numClasses: 2,
    head: { pooling: "avg", denseUnits: 1, dropout: 0 },
    unfrozenLayers: 0,
  });
  base = tm.baseLayers.map((layer) => ({
    name: layer.name,
    className: layer.getClassName(),
    layer,
    inbound: layer.inboundNodes[0].inboundLayers.map((l) => l.name),
    params: layer.countParams(),
  }));
  // Only the shapes are needed from now on.
  tm.model.dispose();
  return base;
}

/** Builds the model description now rather than on the first estimate. */
export function warmMemoryEstimate(): void {
  baseLayers();
}

type Shape = (number | null)[];

function elements(shape: Shape): number {
  return shape.slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
}

/** Each base layer's output shape at `imageSize`. */
function baseShapes(imageSize: number): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  for (const info of baseLayers()) {
    if (info.className === "InputLayer") {
      shapes.set(info.name, [null, imageSize, imageSize, 3]);
      continue;
    }
    const inputs = info.inbound.map((name) => shapes.get(name)!);
    const out = info.layer.computeOutputShape(inputs.length === 1 ? (inputs[0] as tf.Shape) : (inputs as tf.Shape[]));
    shapes.set(info.name, out as Shape);
  }
  return shapes;
}

export function estimateTrainingMemory(spec: MemorySpec): MemoryEstimate {
  const layers = baseLayers();
  const shapes = baseShapes(spec.imageSize);
  const baseOut = shapes.get(layers[RESNET50_LAYER_COUNT - 1].name)!;
  const pooled = spec.head.pooling === "flatten" ? elements(baseOut) : (baseOut[3] as number);
  const headParams = pooled * spec.head.denseUnits + spec.head.denseUnits + spec.head.denseUnits * spec.numClasses + spec.numClasses;
  // pooled, dense, dropout, predictions
  const headElements = pooled + 2 * spec.head.denseUnits + spec.numClasses;

  const firstTrainable = RESNET50_LAYER_COUNT - spec.unfrozenLayers;
  // With only the input layer frozen there is no trunk: the whole model trains under the tape (trunk-split.ts).
  const split = firstTrainable > 1;
  const trainable = layers.slice(split ? firstTrainable : 0);
  const frozen = split ? layers.slice(0, firstTrainable) : [];
  const frozenNames = new Set(frozen.map((l) => l.name));
  const cut = new Set(trainable.flatMap((l) => l.inbound.filter((name) => frozenNames.has(name))));

  const trainableParams = trainable.reduce((sum, l) => sum + l.params, 0) + headParams;
  const allParams = layers.reduce((sum, l) => sum + l.params, 0) + headParams;
  const tapeElements =
    trainable.reduce((sum, l) => sum + elements(shapes.get(l.name)!), 0) +
    [...cut].reduce((sum, name) => sum + elements(shapes.get(name)!), 0) +
    headElements;
  const largestFrozen = frozen.reduce((max, l) => Math.max(max, elements(shapes.get(l.name)!)), 0);

  const b = spec.batchSize;
  const estimate = {
    weightsBytes: FLOAT_BYTES * allParams,
    trainingStateBytes: 3 * FLOAT_BYTES * trainableParams,
    tailActivationBytes: TAPE_FACTOR * FLOAT_BYTES * b * tapeElements,
    trunkForwardBytes: FORWARD_FACTOR * FLOAT_BYTES * Math.min(b, TRUNK_CHUNK) * largestFrozen,
    inputBytes: b * spec.imageSize * spec.imageSize * 3 * (1 + FLOAT_BYTES),
    fixedBytes: FIXED_BYTES,
  };
  return { totalBytes: Object.values(estimate).reduce((a, v) => a + v, 0), ...estimate };
}

export interface FitLimits {
  /** Largest batchSize (up to `maxBatchSize`) at the spec's imageSize that fits; 0 when none does. */
  largestBatchSize: number;
  /** Largest imageSize at the spec's batchSize that fits; 0 when none does. */
  largestImageSize: number;
}

/** Largest n in [lo, hi] with fits(n), for fits monotone decreasing; lo - 1 when none. */
function largest(lo: number, hi: number, fits: (n: number) => boolean): number {
  if (!fits(lo)) return lo - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function largestThatFit(spec: MemorySpec, budgetBytes: number, maxBatchSize: number): FitLimits {
  const fits = (s: MemorySpec) => estimateTrainingMemory(s).totalBytes <= budgetBytes;
  const batch = largest(1, maxBatchSize, (batchSize) => fits({ ...spec, batchSize }));
  const image = largest(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE, (imageSize) => fits({ ...spec, imageSize }));
  return { largestBatchSize: Math.max(0, batch), largestImageSize: image < MIN_IMAGE_SIZE ? 0 : image };
}
