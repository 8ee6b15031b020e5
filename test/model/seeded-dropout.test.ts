import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { SeededDropout } from "../../src/model/seeded-dropout.js";

before(async () => {
  await selectBackend("wasm");
})

/** The zero pattern of `steps` training calls on a vector of ones. */
function masks(layer: tf.layers.Layer, steps: number): string[] {
  return Array.from({ length: steps }, () =>
    Array.from((layer.apply(tf.ones([64]), { training: true }) as tf.Tensor).dataSync(), (v) => (v === 0 ? "0" : "1")).join(""),
  );
}

test("a seeded dropout draws a new mask each step, and the same sequence for the same seed", () => {
  const first = masks(new SeededDropout({ rate: 0.5, seed: 9 }), 3);
  assert.equal(new Set(first).size, 3);
  assert.deepEqual(masks(new SeededDropout({ rate: 0.5, seed: 9 }), 3), first);
  assert.notDeepEqual(masks(new SeededDropout({ rate: 0.5, seed: 10 }), 3), first);
});

test("kept units are scaled by 1 / (1 - rate) and inference is the identity", () => {
  const layer = new SeededDropout({ rate: 0.75, seed: 1 });
  const kept = Array.from((layer.apply(tf.ones([64]), { training: true }) as tf.Tensor).dataSync()).filter((v) => v !== 0);
  assert.ok(kept.length > 0 && kept.every((v) => Math.abs(v - 4) < 1e-6));
  assert.deepEqual(Array.from((layer.apply(tf.ones([4])) as tf.Tensor).dataSync()), [1, 1, 1, 1]);
});

test("it serialises as a Keras Dropout with its rate and seed", () => {
  const config = new SeededDropout({ rate: 0.5, seed: 3, name: "dropout" }).getConfig();
  assert.equal(config.rate, 0.5);
  assert.equal(config.seed, 3);
  assert.equal(SeededDropout.className, "Dropout");
});
