import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { createDropoutSeeder } from "../../src/training/dropout-seeds.js";
import { selectTrainingWasm } from "../helpers/backends.js";

before(async () => {
  await selectTrainingWasm();
});

function modelWithDropout(): tf.LayersModel {
  return tf.sequential({ layers: [tf.layers.dropout({ inputShape: [64], rate: 0.5, name: "dropout" })] });
}

/** The zero pattern of one training-mode call on a vector of ones. */
function mask(model: tf.LayersModel): string {
  return tf.tidy(() =>
    Array.from((model.apply(tf.ones([1, 64]), { training: true }) as tf.Tensor).dataSync(), (v) => (v === 0 ? "0" : "1")).join(""),
  );
}

test("the mask follows (seed, epoch, batch): new each step, the same again in a fresh model (a resumed run)", () => {
  const model = modelWithDropout();
  const seeder = createDropoutSeeder(model, 42);
  seeder.seedStep(0, 0);
  const first = mask(model);
  assert.equal(mask(model), first);
  seeder.seedStep(0, 1);
  const second = mask(model);
  seeder.seedStep(1, 0);
  const nextEpoch = mask(model);
  assert.equal(new Set([first, second, nextEpoch]).size, 3);

  const resumed = modelWithDropout();
  const resumedSeeder = createDropoutSeeder(resumed, 42);
  resumedSeeder.seedStep(1, 0);
  assert.equal(mask(resumed), nextEpoch);
  resumedSeeder.seedStep(0, 0);
  assert.equal(mask(resumed), first);
  createDropoutSeeder(resumed, 43).seedStep(0, 0);
  assert.notEqual(mask(resumed), first);
  model.dispose();
  resumed.dispose();
});

test("restore() gives the layers back their own seed, so a saved config is unchanged", () => {
  const model = tf.sequential({ layers: [tf.layers.dropout({ inputShape: [4], rate: 0.5, seed: 7, name: "dropout" })] });
  const seeder = createDropoutSeeder(model, 1);
  seeder.seedStep(3, 4);
  assert.notEqual(model.getLayer("dropout").getConfig().seed, 7);
  seeder.restore();
  assert.equal(model.getLayer("dropout").getConfig().seed, 7);
  model.dispose();
});
