import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { earlyStopping, type EarlyStoppingOptions } from "../../src/training/early-stopping.js";
import type { EpochMetrics } from "../../src/training/epoch-metrics.js";
import { selectTrainingWasm } from "../helpers/backends.js";

before(async () => {
  await selectTrainingWasm();
});

/** The metrics of the epoch at 0-based position `index` (EpochMetrics numbers epochs from 1). */
function epoch(index: number, values: Partial<EpochMetrics>): EpochMetrics {
  return { epoch: index + 1, loss: 1, accuracy: 0.5, valLoss: null, valAccuracy: null, seconds: 1, imagesPerSecond: 1, ...values };
}

/** Feeds the monitored values epoch by epoch; returns the 0-based position at which "stop" came, or null. */
function stopsAt(options: Partial<EarlyStoppingOptions>, field: keyof EpochMetrics, values: number[]): number | null {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
  const stopper = earlyStopping(model, { monitor: "val_loss", patience: 0, minDelta: 0, restoreBest: false, ...options });
  try {
    for (const [i, value] of values.entries()) {
      if (stopper.onEpochEnd(epoch(i, { [field]: value })) === "stop") return i;
    }
    return null;
  } finally {
    model.dispose();
  }
}

test("val_loss is minimised: stops after `patience` epochs without improvement", () => {
  assert.equal(stopsAt({ patience: 2 }, "valLoss", [1.0, 0.8, 0.9, 0.85, 0.7]), 3);
  assert.equal(stopsAt({ patience: 2 }, "valLoss", [1.0, 0.8, 0.9, 0.7, 0.75, 0.6]), null);
  // patience 0: the first epoch without improvement stops, but never the first epoch.
  assert.equal(stopsAt({ patience: 0 }, "valLoss", [1.0, 1.2]), 1);
});

test("accuracies are maximised", () => {
  assert.equal(stopsAt({ monitor: "val_accuracy", patience: 1 }, "valAccuracy", [0.5, 0.7, 0.6, 0.8]), 2);
  assert.equal(stopsAt({ monitor: "accuracy", patience: 1 }, "accuracy", [0.5, 0.6, 0.7, 0.8]), null);
  assert.equal(stopsAt({ monitor: "loss", patience: 1 }, "loss", [0.5, 0.6, 0.7]), 1);
});

test("minDelta: a smaller change is no improvement, whatever its sign", () => {
  assert.equal(stopsAt({ patience: 1, minDelta: 0.05 }, "valLoss", [1.0, 0.97, 0.96]), 1);
  assert.equal(stopsAt({ patience: 1, minDelta: -0.05 }, "valLoss", [1.0, 0.97]), 1);
  assert.equal(stopsAt({ patience: 1, minDelta: 0.05 }, "valLoss", [1.0, 0.9, 0.8]), null);
});

test("a missing metric (no validation data) never stops", () => {
  assert.equal(stopsAt({ patience: 0 }, "loss", [1, 2, 3, 4]), null);
});

test("restoreBest puts back the best epoch's weights only when training stopped early, and frees them", async () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1], name: "d" })] });
  const setKernel = (value: number) => {
    const values = [tf.tensor2d([[value]]), tf.tensor1d([0])];
    model.getLayer("d").setWeights(values);
    tf.dispose(values);
  };
  const kernel = async () => (await model.getLayer("d").getWeights()[0].data())[0];
  const run = (patience: number, losses: number[]) => {
    const stopper = earlyStopping(model, { monitor: "val_loss", patience, minDelta: 0, restoreBest: true });
    for (const [i, valLoss] of losses.entries()) {
      setKernel(i + 1);
      if (stopper.onEpochEnd(epoch(i, { valLoss })) === "stop") break;
    }
    return stopper;
  };

  const before = tf.memory().numTensors;
  const stopped = run(1, [1.0, 0.5, 0.7, 0.9]);
  assert.equal(stopped.stoppedEpoch, 3);
  assert.equal(stopped.restoreBestWeights(), 2);
  assert.equal(await kernel(), 2);

  const finished = run(2, [1.0, 0.5, 0.7]);
  assert.equal(finished.stoppedEpoch, null);
  assert.equal(finished.restoreBestWeights(), null);
  assert.equal(await kernel(), 3);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test("a resumed job replays the epochs it already ran: the patience count carries on", async () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
  const options = { monitor: "val_loss", patience: 2, minDelta: 0, restoreBest: true } as const;
  const before = [epoch(0, { valLoss: 1.0 }), epoch(1, { valLoss: 0.8 }), epoch(2, { valLoss: 0.9 })];
  const resumed = earlyStopping(model, options, before);
  assert.equal(resumed.bestEpoch, 2);
  assert.equal(resumed.onEpochEnd(epoch(3, { valLoss: 0.85 })), "stop");
  // The best epoch ran before the resume: its weights are in its checkpoint, not in memory.
  assert.equal(resumed.restoreBestWeights(), null);

  const improvedAfter = earlyStopping(model, options, before);
  assert.equal(improvedAfter.onEpochEnd(epoch(3, { valLoss: 0.5 })), undefined);
  assert.equal(improvedAfter.onEpochEnd(epoch(4, { valLoss: 0.6 })), undefined);
  assert.equal(improvedAfter.onEpochEnd(epoch(5, { valLoss: 0.7 })), "stop");
  assert.equal(improvedAfter.restoreBestWeights(), 4);
  model.dispose();
});

test("bad options are a coded error", () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
  const base = { monitor: "val_loss", patience: 1, minDelta: 0, restoreBest: false } as const;
  assert.throws(() => earlyStopping(model, { ...base, monitor: "val_acc" as never }), { code: "INVALID_TRAINING_OPTIONS" });
  assert.throws(() => earlyStopping(model, { ...base, patience: -1 }), { code: "INVALID_TRAINING_OPTIONS" });
  model.dispose();
});
