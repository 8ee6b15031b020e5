// train() with engine onnxruntime on a ResNet-50 tail (trainable convolutions,
// BatchNormalization, Dropout): the steps run on ONNX Runtime, the TF.js model
// ends up holding the trained weights, Adam's state round-trips through the
// checkpoint format (on ONNX, and from TF.js to ONNX), and a tail the step
// graph cannot write falls back to TF.js with the reason logged.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { EngineName } from "../../../src/engine/engine.js";
import { buildTransferModel } from "../../../src/network/transfer-model.js";
import { splitAtFrozenBoundary } from "../../../src/network/trunk-split.js";
import { evaluate } from "../../../src/training/evaluate.js";
import { decodeOptimizerState, encodeOptimizerState, type OptimizerState } from "../../../src/training/optimizer-state.js";
import { train, type TrainResult } from "../../../src/training/train.js";
import { arrayBatchSource } from "../../helpers/array-batch-source.js";
import { seededValues, selectTrainingWasm } from "../../helpers/backends.js";

before(async () => {
  await selectTrainingWasm();
});

const CLASSES = 3;
const UNFROZEN = 10;
const LEARNING_RATE = 1e-3;

/** The tail of a 32 px transfer model; the same seed gives the same starting weights. */
function tailModel(dropout: number) {
  const tm = buildTransferModel({
    imageSize: 32,
    numClasses: CLASSES,
    head: { pooling: "flatten", denseUnits: 16, dropout },
    unfrozenLayers: UNFROZEN,
    seed: 31,
  });
  const split = splitAtFrozenBoundary(tm, UNFROZEN)!;
  return { tm, tail: split.tail, shape: split.cut[0].shape };
}

/** Cut tensors whose class shows in a block of channels: learnable by the tail. */
function cutData(count: number, shape: number[], seed: number) {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = seededValues(count * size, seed);
  const labels = new Float32Array(count * CLASSES);
  for (let i = 0; i < count; i++) {
    const c = i % CLASSES;
    labels[i * CLASSES + c] = 1;
    for (let k = 0; k < 200; k++) values[i * size + c * 200 + k] += 2;
  }
  const xs = tf.tensor4d(values, [count, ...(shape as [number, number, number])]);
  const ys = tf.tensor2d(labels, [count, CLASSES]);
  return { xs, ys, dispose: () => tf.dispose([xs, ys]) };
}

function learned(result: TrainResult) {
  return result.history.map(({ epoch, loss, accuracy, valLoss, valAccuracy }) => ({ epoch, loss, accuracy, valLoss, valAccuracy }));
}

interface Run {
  engine: EngineName;
  dropout?: number;
  epochs: number;
  initialEpoch?: number;
  weights?: tf.Tensor[];
  optimizerState?: OptimizerState;
}

/** Trains a fresh tail (or one given `weights`) on the same data; returns its result, weights and Adam state. */
async function run(opts: Run) {
  const { tm, tail, shape } = tailModel(opts.dropout ?? 0.5);
  if (opts.weights) tm.model.setWeights(opts.weights);
  const trainData = cutData(24, shape, 5);
  const validationData = cutData(9, shape, 6);
  const started: EngineName[] = [];
  try {
    const result = await train({
      model: tail,
      engine: opts.engine,
      learningRate: LEARNING_RATE,
      epochs: opts.epochs,
      initialEpoch: opts.initialEpoch,
      optimizerState: opts.optimizerState,
      train: arrayBatchSource(trainData.xs, trainData.ys, 4, 9),
      validation: arrayBatchSource(validationData.xs, validationData.ys, 4, 9),
      seed: 11,
      callbacks: { onStart: ({ engine }) => void started.push(engine) },
    });
    const state = decodeOptimizerState(encodeOptimizerState(await result.stepper.exportOptimizerState()));
    await result.stepper.dispose();
    // What the TF.js model holds now: evaluated by TF.js, and copied for a resume.
    const tfjsValidation = await evaluate(tail, arrayBatchSource(validationData.xs, validationData.ys, 4, 9));
    return { result, started, state, weights: tm.model.getWeights().map((w) => w.clone()), tfjsValidation };
  } finally {
    trainData.dispose();
    validationData.dispose();
    tm.model.dispose();
  }
}

test("train() on onnxruntime steps on ONNX Runtime, learns, leaves the trained weights in the TF.js model and leaks no tensor", {
  timeout: 300_000,
}, async () => {
  // Splitting the model leaves tensors of its own (model/trunk-split.ts): the baseline, without training.
  const baseline = tf.memory().numTensors;
  tailModel(0.5).tm.model.dispose();
  const splitLeft = tf.memory().numTensors - baseline;
  const tensors = tf.memory().numTensors;
  const { result, started, state, weights, tfjsValidation } = await run({ engine: "onnxruntime", epochs: 3 });
  tf.dispose(weights);
  // Weights written back at every epoch's end must not leave a tensor behind (a ResNet head's Dense kernel is 100 MB).
  assert.equal(tf.memory().numTensors - tensors, splitLeft);
  assert.equal(result.stepper.engine, "onnxruntime");
  assert.deepEqual(started, ["onnxruntime"]);
  const metrics = learned(result);
  assert.deepEqual(
    metrics.map((m) => m.epoch),
    [1, 2, 3],
  );
  for (const m of metrics) for (const v of Object.values(m)) assert.ok(Number.isFinite(v), JSON.stringify(m));
  assert.ok(metrics[2].loss < metrics[0].loss, `loss ${metrics.map((m) => m.loss)}`);
  // ONNX Runtime's validation of its own state = TF.js's validation of the written-back weights.
  const last = metrics[2];
  assert.ok(Math.abs(tfjsValidation.loss - last.valLoss!) <= 1e-4 * last.valLoss!, `TF.js ${tfjsValidation.loss}, ONNX ${last.valLoss}`);
  assert.equal(tfjsValidation.accuracy, last.valAccuracy);
  // Adam's state in the checkpoint format: 3 epochs of 6 steps, one m and v per trainable weight.
  const { tm, tail } = tailModel(0.5);
  assert.equal(state.iterations, 18);
  assert.deepEqual(
    state.moments.map((m) => m.name),
    tail.trainableWeights.map((w) => w.originalName),
  );
  tm.model.dispose();
  assert.ok(state.moments.every((m) => m.m.length === m.shape.reduce((a, b) => a * b, 1) && m.v.every((x) => x >= 0)));
  assert.ok(Math.abs(state.accBeta1 - 0.9 ** 19) < 1e-6);
});

test("on onnxruntime, 1 epoch, its weights and Adam state into a fresh model, 2 more epochs = 3 epochs straight", {
  timeout: 300_000,
}, async () => {
  const straight = await run({ engine: "onnxruntime", epochs: 3 });
  const first = await run({ engine: "onnxruntime", epochs: 1 });
  const resumed = await run({ engine: "onnxruntime", epochs: 3, initialEpoch: 1, weights: first.weights, optimizerState: first.state });
  assert.deepEqual([...learned(first.result), ...learned(resumed.result)], learned(straight.result));
  for (const r of [straight, first, resumed]) tf.dispose(r.weights);
});

test("Adam's state crosses engines: TF.js epoch 1 then ONNX epochs 2-3 follow 3 TF.js epochs within 1e-3 (no dropout)", {
  timeout: 300_000,
}, async () => {
  const tfjs = await run({ engine: "tfjs", dropout: 0, epochs: 3 });
  const first = await run({ engine: "tfjs", dropout: 0, epochs: 1 });
  const onnx = await run({
    engine: "onnxruntime",
    dropout: 0,
    epochs: 3,
    initialEpoch: 1,
    weights: first.weights,
    optimizerState: first.state,
  });
  assert.equal(onnx.result.stepper.engine, "onnxruntime");
  const expected = learned(tfjs.result).slice(1);
  learned(onnx.result).forEach((m, i) => {
    for (const key of ["loss", "valLoss"] as const) {
      assert.ok(
        Math.abs(m[key]! - expected[i][key]!) <= 1e-3 * expected[i][key]!,
        `epoch ${m.epoch} ${key}: onnx ${m[key]}, tfjs ${expected[i][key]}`,
      );
    }
  });
  for (const r of [tfjs, first, onnx]) tf.dispose(r.weights);
});

test("a tail the ONNX step graph cannot write (MaxPooling2D) trains on TF.js, and the reason is logged", { timeout: 60_000 }, async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.maxPooling2d({ inputShape: [4, 4, 2], poolSize: 2, name: "pool" }),
      tf.layers.flatten({ name: "flatten" }),
      tf.layers.dense({ units: 2, activation: "softmax", name: "predictions" }),
    ],
  });
  const xs = tf.tensor4d(seededValues(8 * 32, 1), [8, 4, 4, 2]);
  const ys = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1], "int32"), 2).toFloat() as tf.Tensor2D;
  const warnings: string[] = [];
  const log = { warn: (_: unknown, message: string) => void warnings.push(message) } as never;
  const result = await train({
    model,
    engine: "onnxruntime",
    log,
    learningRate: 0.01,
    epochs: 1,
    train: arrayBatchSource(xs, ys, 4, 1),
    seed: 1,
  });
  assert.equal(result.stepper.engine, "tfjs");
  assert.equal(result.history.length, 1);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /training steps run on TF\.js.*pool \(MaxPooling2D\)/);
  await result.stepper.dispose();
  tf.dispose([xs, ys]);
  model.dispose();
});
