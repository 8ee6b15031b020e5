import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectTrainingWasm } from "../helpers/backends.js";
import { buildTransferModel, setUnfrozenLayers, type TransferModel, type TransferModelOptions } from "../../src/network/transfer-model.js";
import { AppError } from "../../src/errors.js";
import { train } from "../../src/training/train.js";
import { arrayBatchSource } from "../helpers/array-batch-source.js";
import { KERAS_RESNET50_LAYER_NAMES } from "./keras-resnet50-layer-names.js";

before(async () => {
  await selectTrainingWasm();
});

const HEAD = { pooling: "flatten", denseUnits: 16, dropout: 0.5 } as const;
const OPTIONS: TransferModelOptions = { imageSize: 32, numClasses: 3, head: HEAD, unfrozenLayers: 0, seed: 5 };

type Snapshot = Map<string, Float32Array>;

/** Every weight of the given layers, keyed "layer/weight", copied out of the backend. */
function snapshot(layers: tf.layers.Layer[]): Snapshot {
  const out: Snapshot = new Map();
  for (const layer of layers) {
    for (const w of layer.weights) out.set(`${layer.name}/${w.originalName.split("/").pop()}`, w.read().dataSync().slice() as Float32Array);
  }
  return out;
}

function changedKeys(before: Snapshot, after: Snapshot): string[] {
  return [...before.keys()].filter((k) => !Buffer.from(before.get(k)!.buffer).equals(Buffer.from(after.get(k)!.buffer)));
}

/** One training step through train(): one epoch of one batch of 3 images. */
async function trainOneStep(tm: TransferModel, numClasses: number): Promise<void> {
  const xs = tf.randomUniform([3, 32, 32, 3], -120, 130, "float32", 11) as tf.Tensor4D;
  const ys = tf.oneHot(
    tf.tensor1d(
      [0, 1, 2].map((c) => c % numClasses),
      "int32",
    ),
    numClasses,
  ) as tf.Tensor2D;
  const result = await train({ model: tm.model, learningRate: 0.01, epochs: 1, train: arrayBatchSource(xs, ys, 3, 1), seed: 1 });
  assert.equal(result.epochsRun, 1);
  await result.stepper.dispose();
  tf.dispose([xs, ys]);
}

test("the transfer model is the 175 base layers then the tutorial's head", () => {
  const tm = buildTransferModel(OPTIONS);
  assert.deepEqual(
    tm.model.layers.map((l) => l.name),
    [...KERAS_RESNET50_LAYER_NAMES, "flatten", "dense", "dropout", "predictions"],
  );
  assert.deepEqual(
    tm.baseLayers.map((l) => l.name),
    KERAS_RESNET50_LAYER_NAMES,
  );
  assert.deepEqual(
    tm.headLayers.map((l) => l.name),
    ["flatten", "dense", "dropout", "predictions"],
  );
  assert.deepEqual(
    tm.headLayers.map((l) => l.getClassName()),
    ["Flatten", "Dense", "Dropout", "Dense"],
  );
  assert.equal(tm.headLayers[1].getConfig().activation, "relu");
  assert.equal(tm.headLayers[2].getConfig().rate, 0.5);
  assert.equal(tm.headLayers[3].getConfig().activation, "softmax");
  assert.deepEqual(tm.model.outputs[0].shape, [null, 3]);
  // 1x1x2048 flattened -> 16 units -> 3 classes
  assert.equal(tm.model.countParams(), 23_587_712 + (2048 * 16 + 16) + (16 * 3 + 3));
  const probabilities = tf.tidy(() => (tm.model.predict(tf.ones([2, 32, 32, 3])) as tf.Tensor).sum(1).dataSync());
  for (const p of probabilities) assert.ok(Math.abs(p - 1) < 1e-5);
  tm.model.dispose();
});

test("head.pooling avg puts Keras' avg_pool (global average pooling) in front of the dense layer", () => {
  const tm = buildTransferModel({ ...OPTIONS, imageSize: 64, head: { ...HEAD, pooling: "avg" } });
  assert.equal(tm.headLayers[0].name, "avg_pool");
  assert.equal(tm.headLayers[0].getClassName(), "GlobalAveragePooling2D");
  assert.deepEqual(tm.headLayers[0].outputShape, [null, 2048]);
  tm.model.dispose();
});

test("the same seed builds the same head, base included", () => {
  const weights = () => {
    const tm = buildTransferModel(OPTIONS);
    const picked = ["dense", "predictions", "conv1_conv"].map((n) => Array.from(tm.model.getLayer(n).getWeights()[0].dataSync()));
    tm.model.dispose();
    return picked;
  };
  assert.deepEqual(weights(), weights());
});

test("setUnfrozenLayers(n) makes exactly base.layers[-n:] and the head trainable", () => {
  const tm = buildTransferModel(OPTIONS);
  const trainableNames = () => tm.model.layers.filter((l) => l.trainable).map((l) => l.name);
  assert.deepEqual(trainableNames(), ["flatten", "dense", "dropout", "predictions"]);
  assert.equal(tm.model.trainableWeights.length, 4);

  setUnfrozenLayers(tm, 10);
  assert.deepEqual(trainableNames(), [...KERAS_RESNET50_LAYER_NAMES.slice(-10), "flatten", "dense", "dropout", "predictions"]);
  assert.ok(trainableNames().every((n) => n.startsWith("conv5_block3_") || tm.headLayers.some((l) => l.name === n)));
  // conv5_block3: 3 convs (kernel, bias) + 3 BN (gamma, beta), then the two dense layers
  assert.equal(tm.model.trainableWeights.length, 6 + 6 + 4);

  setUnfrozenLayers(tm, 175);
  assert.equal(trainableNames().length, 175 + 4);
  assert.equal(tm.model.trainableWeights.length, 53 * 2 + 53 * 2 + 4);

  setUnfrozenLayers(tm, 0);
  assert.deepEqual(trainableNames(), ["flatten", "dense", "dropout", "predictions"]);
  tm.model.dispose();
});

test("unfrozenLayers 0: one training step changes the head and not one bit of the base, moving statistics included", async () => {
  const tm = buildTransferModel(OPTIONS);
  const base = snapshot(tm.baseLayers);
  const head = snapshot(tm.headLayers);
  await trainOneStep(tm, 3);
  assert.deepEqual(changedKeys(base, snapshot(tm.baseLayers)), []);
  assert.deepEqual(changedKeys(head, snapshot(tm.headLayers)).sort(), [
    "dense/bias",
    "dense/kernel",
    "predictions/bias",
    "predictions/kernel",
  ]);
  tm.model.dispose();
});

test("unfrozenLayers 10: exactly the conv5_block3_* weights change in the base, BN moving statistics included", async () => {
  const tm = buildTransferModel({ ...OPTIONS, unfrozenLayers: 10 });
  const base = snapshot(tm.baseLayers);
  await trainOneStep(tm, 3);
  const expected = ["1", "2", "3"].flatMap((i) => [
    `conv5_block3_${i}_conv/kernel`,
    `conv5_block3_${i}_conv/bias`,
    `conv5_block3_${i}_bn/gamma`,
    `conv5_block3_${i}_bn/beta`,
    `conv5_block3_${i}_bn/moving_mean`,
    `conv5_block3_${i}_bn/moving_variance`,
  ]);
  assert.deepEqual(changedKeys(base, snapshot(tm.baseLayers)).sort(), expected.sort());
  tm.model.dispose();
});

for (const [patch, field] of [
  [{ imageSize: 16 }, "imageSize"],
  [{ numClasses: 1 }, "numClasses"],
  [{ numClasses: 2.5 }, "numClasses"],
  [{ unfrozenLayers: 176 }, "unfrozenLayers"],
  [{ unfrozenLayers: -1 }, "unfrozenLayers"],
  [{ head: null }, "head"],
  [{ head: { ...HEAD, pooling: "max" } }, "head.pooling"],
  [{ head: { ...HEAD, denseUnits: 0 } }, "head.denseUnits"],
  [{ head: { ...HEAD, dropout: 1 } }, "head.dropout"],
  [{ head: { ...HEAD, dropout: "0.5" } }, "head.dropout"],
] as const) {
  test(`buildTransferModel refuses ${JSON.stringify(patch)} with INVALID_MODEL_OPTIONS on ${field}`, () => {
    assert.throws(
      () => buildTransferModel({ ...OPTIONS, ...patch } as unknown as TransferModelOptions),
      (err: unknown) =>
        err instanceof AppError && err.code === "INVALID_MODEL_OPTIONS" && (err.details as { field: string }).field === field,
    );
  });
}

test("setUnfrozenLayers refuses a count outside 0..175 and leaves the model as it was", () => {
  const tm = buildTransferModel({ ...OPTIONS, unfrozenLayers: 3 });
  assert.throws(
    () => setUnfrozenLayers(tm, 200),
    (err: unknown) => err instanceof AppError && err.code === "INVALID_MODEL_OPTIONS" && err.message.includes("200"),
  );
  assert.deepEqual(
    tm.baseLayers.filter((l) => l.trainable).map((l) => l.name),
    ["conv5_block3_3_bn", "conv5_block3_add", "conv5_block3_out"],
  );
  tm.model.dispose();
});
