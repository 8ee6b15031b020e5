import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { train, type BatchEndInfo } from "../../src/training/train.js";
import type { EpochMetrics } from "../../src/training/epoch-metrics.js";
import { evaluate } from "../../src/training/evaluate.js";
import { decodeOptimizerState, encodeOptimizerState } from "../../src/training/optimizer-state.js";
import { smallData, smallModel, weightValues } from "../helpers/small-model.js";
import { selectTrainingWasm } from "../helpers/backends.js";

before(async () => {
  await selectTrainingWasm();
});

test("trains on separable images: metrics per batch and per epoch, validation in inference mode", async () => {
  const trainData = smallData(1);
  const validationData = smallData(2, 8);
  const model = smallModel(3);
  const batches: BatchEndInfo[] = [];
  const epochs: EpochMetrics[] = [];
  let now = 0;
  const result = await train({
    model,
    learningRate: 0.01,
    epochs: 6,
    train: trainData.source,
    validation: validationData.source,
    seed: 7,
    clock: () => (now += 250),
    callbacks: {
      onBatchEnd: (info) => void batches.push(info),
      onEpochEnd: (info) => void epochs.push(info),
    },
  });
  assert.equal(result.epochsRun, 6);
  assert.equal(result.aborted, false);
  assert.equal(result.stoppedEarly, false);
  assert.deepEqual(result.history, epochs);
  assert.deepEqual(
    epochs.map((e) => e.epoch),
    [1, 2, 3, 4, 5, 6],
  );
  // 24 images in batches of 5: 5 batches per epoch.
  assert.equal(batches.length, 30);
  assert.deepEqual(
    batches.slice(0, 5).map((b) => [b.epoch, b.batch, b.batches]),
    [
      [0, 0, 5],
      [0, 1, 5],
      [0, 2, 5],
      [0, 3, 5],
      [0, 4, 5],
    ],
  );
  const lastOfEpoch0 = batches[4];
  assert.equal(lastOfEpoch0.loss, epochs[0].loss);
  assert.equal(lastOfEpoch0.accuracy, epochs[0].accuracy);
  // The clock advances 250 ms per reading: start, after training, after validation.
  assert.equal(epochs[0].seconds, 0.5);
  assert.equal(epochs[0].imagesPerSecond, 24 / 0.25);

  const last = epochs[5];
  assert.ok(last.valAccuracy! >= 0.9, `valAccuracy ${last.valAccuracy}`);
  assert.ok(last.loss < epochs[0].loss, `loss ${epochs[0].loss} -> ${last.loss}`);
  // Validation metrics are the inference-mode evaluation of the final model.
  const evaluation = await evaluate(model, validationData.source);
  assert.ok(Math.abs(evaluation.loss - last.valLoss!) < 1e-6);
  assert.equal(evaluation.accuracy, last.valAccuracy);
  assert.equal(evaluation.predictions.length, 16);
  assert.deepEqual([...evaluation.labels].sort(), [...validationData.labels].sort());

  await result.stepper.dispose();
  model.dispose();
  trainData.dispose();
  validationData.dispose();
});

test("an abort stops at the next batch boundary, reports the epochs completed and leaks no tensor", async () => {
  const trainData = smallData(1);
  const validationData = smallData(2, 4);
  const model = smallModel(3);
  const before = tf.memory().numTensors;
  const controller = new AbortController();
  const seen: Array<[number, number]> = [];
  const result = await train({
    model,
    learningRate: 0.01,
    epochs: 5,
    train: trainData.source,
    validation: validationData.source,
    seed: 7,
    signal: controller.signal,
    callbacks: {
      onBatchEnd: ({ epoch, batch }) => {
        seen.push([epoch, batch]);
        if (epoch === 1 && batch === 2) controller.abort();
      },
    },
  });
  assert.equal(result.aborted, true);
  assert.equal(result.epochsRun, 1);
  assert.deepEqual(
    result.history.map((e) => e.epoch),
    [1],
  );
  assert.deepEqual(seen.at(-1), [1, 2]);
  assert.equal(seen.length, 5 + 3);
  await result.stepper.dispose();
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
  trainData.dispose();
  validationData.dispose();
});

test("a full run leaks no tensor, and an abort before the start runs nothing", async () => {
  const trainData = smallData(1);
  const model = smallModel(3);
  const before = tf.memory().numTensors;
  const done = await train({ model, learningRate: 0.01, epochs: 2, train: trainData.source, validation: trainData.source, seed: 1 });
  await done.stepper.dispose();
  assert.equal(tf.memory().numTensors, before);

  const weights = await weightValues(model);
  const controller = new AbortController();
  controller.abort();
  const none = await train({ model, learningRate: 0.01, epochs: 2, train: trainData.source, seed: 1, signal: controller.signal });
  assert.deepEqual({ epochsRun: none.epochsRun, aborted: none.aborted }, { epochsRun: 0, aborted: true });
  assert.deepEqual(await weightValues(model), weights);
  await none.stepper.dispose();
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
  trainData.dispose();
});

test("onEpochEnd returning stop ends training early; initialEpoch numbers the epochs", async () => {
  const trainData = smallData(1);
  const model = smallModel(3);
  const result = await train({
    model,
    learningRate: 0.01,
    epochs: 10,
    initialEpoch: 4,
    train: trainData.source,
    seed: 1,
    callbacks: { onEpochEnd: ({ epoch }) => (epoch === 6 ? "stop" : undefined) },
  });
  assert.deepEqual(
    result.history.map((e) => e.epoch),
    [5, 6],
  );
  assert.equal(result.stoppedEarly, true);
  assert.equal(result.history[0].valLoss, null);
  await result.stepper.dispose();
  model.dispose();
  trainData.dispose();
});

test("bad options are a coded error", async () => {
  const trainData = smallData(1, 2);
  const model = smallModel(3);
  await assert.rejects(train({ model, learningRate: 0, epochs: 1, train: trainData.source, seed: 1 }), {
    code: "INVALID_TRAINING_OPTIONS",
  });
  await assert.rejects(train({ model, learningRate: 1e-3, epochs: 2, initialEpoch: 3, train: trainData.source, seed: 1 }), {
    code: "INVALID_TRAINING_OPTIONS",
  });
  model.dispose();
  trainData.dispose();
});

async function trainedWeights(seed: number, epochs: number): Promise<Float32Array[]> {
  const trainData = smallData(1);
  const model = smallModel(3);
  const result = await train({ model, learningRate: 0.01, epochs, train: trainData.source, seed });
  const weights = await weightValues(model);
  await result.stepper.dispose();
  model.dispose();
  trainData.dispose();
  return weights;
}

test("the same seed gives bit-identical weights, dropout included; another seed does not", async () => {
  const first = await trainedWeights(11, 3);
  const second = await trainedWeights(11, 3);
  assert.deepEqual(second, first);
  const other = await trainedWeights(12, 3);
  assert.notDeepEqual(other, first);
});

test("dropout masks change from step to step, and the layers' own seeds are put back", async () => {
  const trainData = smallData(1);
  const model = smallModel(3);
  const dropout = model.getLayer("dropout") as tf.layers.Layer & { seed?: number };
  const masks = new Set<string>();
  const result = await train({
    model,
    learningRate: 0.01,
    epochs: 1,
    train: trainData.source,
    seed: 5,
    callbacks: {
      onBatchEnd: () => {
        assert.equal(typeof dropout.seed, "number");
        masks.add(String(dropout.seed));
      },
    },
  });
  assert.equal(masks.size, 5);
  assert.equal(dropout.seed, undefined);
  await result.stepper.dispose();
  model.dispose();
  trainData.dispose();
});

test("1 epoch, checkpoint, fresh model and optimizer, 1 more epoch = 2 epochs straight, bit for bit", async () => {
  const straight = await trainedWeights(21, 2);

  const trainData = smallData(1);
  const firstModel = smallModel(3);
  const first = await train({ model: firstModel, learningRate: 0.01, epochs: 1, train: trainData.source, seed: 21 });
  const checkpoint = {
    weights: firstModel.getWeights().map((w) => w.clone()),
    optimizer: decodeOptimizerState(encodeOptimizerState(await first.stepper.exportOptimizerState())),
  };
  await first.stepper.dispose();
  firstModel.dispose();

  const resumedModel = smallModel(99);
  resumedModel.setWeights(checkpoint.weights);
  tf.dispose(checkpoint.weights);
  const resumed = await train({
    model: resumedModel,
    learningRate: 0.01,
    epochs: 2,
    initialEpoch: 1,
    train: trainData.source,
    seed: 21,
    optimizerState: checkpoint.optimizer,
  });
  assert.deepEqual(
    resumed.history.map((e) => e.epoch),
    [2],
  );
  assert.equal((await resumed.stepper.exportOptimizerState()).iterations, 10);
  assert.deepEqual(await weightValues(resumedModel), straight);
  await resumed.stepper.dispose();
  resumedModel.dispose();
  trainData.dispose();
});

test("a failing callback rejects train() and frees the optimizer", async () => {
  const trainData = smallData(1);
  const model = smallModel(3);
  const before = tf.memory().numTensors;
  await assert.rejects(
    train({
      model,
      learningRate: 0.01,
      epochs: 2,
      train: trainData.source,
      seed: 1,
      callbacks: { onEpochEnd: () => Promise.reject(new Error("disk full")) },
    }),
    /disk full/,
  );
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
  trainData.dispose();
});

test("an abort fired by another event (a cancel message) gets through while an epoch runs", async () => {
  const trainData = smallData(1);
  const model = smallModel(3);
  const controller = new AbortController();
  let batches = 0;
  setTimeout(() => controller.abort(), 0);
  const result = await train({
    model,
    learningRate: 0.01,
    epochs: 5,
    train: trainData.source,
    seed: 1,
    signal: controller.signal,
    callbacks: {
      onBatchEnd: () => {
        batches += 1;
      },
    },
  });
  assert.equal(result.aborted, true);
  assert.equal(result.epochsRun, 0);
  assert.ok(batches < 5, `${batches} batches ran`);
  await result.stepper.dispose();
  model.dispose();
  trainData.dispose();
});
