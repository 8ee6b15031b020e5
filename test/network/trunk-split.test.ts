import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { buildTransferModel } from "../../src/network/transfer-model.js";
import { splitAtFrozenBoundary } from "../../src/network/trunk-split.js";

before(async () => {
  await selectBackend("wasm");
});

const HEAD = { pooling: "flatten", denseUnits: 8, dropout: 0 } as const;

function build(unfrozenLayers: number) {
  return buildTransferModel({ imageSize: 32, numClasses: 3, head: HEAD, unfrozenLayers, seed: 3 });
}

test("unfrozenLayers 0 cuts at the base's output: the tail is the head alone", () => {
  const tm = build(0);
  const split = splitAtFrozenBoundary(tm, 0)!;
  assert.deepEqual(split.cut, [{ layer: "conv5_block3_out", shape: [1, 1, 2048] }]);
  assert.deepEqual(
    split.tail.layers.slice(1).map((l) => l.name),
    ["flatten", "dense", "dropout", "predictions"],
  );
});

test("a cut inside a block carries the shortcut too", () => {
  const tm = build(8);
  const split = splitAtFrozenBoundary(tm, 8)!;
  assert.deepEqual(split.cut.map((c) => c.layer).sort(), ["conv5_block2_out", "conv5_block3_1_bn"].sort());
  // The tail trains exactly the weights the full model trains.
  const names = (ws: tf.LayerVariable[]) => ws.map((w) => w.name).sort();
  assert.deepEqual(names(split.tail.trainableWeights), names(tm.model.trainableWeights));
});

test("a cut across a stage boundary carries tensors of different sizes", () => {
  const tm = build(30); // the last 30 layers start at conv5_block1_1_relu
  const split = splitAtFrozenBoundary(tm, 30)!;
  assert.deepEqual(
    [...split.cut].sort((a, b) => a.layer.localeCompare(b.layer)),
    [
      { layer: "conv4_block6_out", shape: [2, 2, 1024] },
      { layer: "conv5_block1_1_bn", shape: [1, 1, 512] },
    ],
  );
});

test("unfrozenLayers 174 and 175 leave nothing frozen to precompute", () => {
  assert.equal(splitAtFrozenBoundary(build(175), 175), null);
  assert.equal(splitAtFrozenBoundary(build(174), 174), null); // only the input layer is frozen
});

for (const n of [0, 8, 30]) {
  test(`trunk then tail computes what the full model computes (unfrozenLayers ${n})`, () => {
    const tm = build(n);
    const split = splitAtFrozenBoundary(tm, n)!;
    const images = tf.randomUniform([2, 32, 32, 3], -120, 130, "float32", 7);
    const full = tm.model.predict(images) as tf.Tensor;
    const cut = split.trunk.predict(images);
    const viaTail = split.tail.predict(cut as tf.Tensor | tf.Tensor[]) as tf.Tensor;
    const diff = tf.max(tf.abs(tf.sub(full, viaTail))).dataSync()[0];
    assert.ok(diff <= 1e-6, `max difference ${diff}`);
    tf.dispose([images, full, cut as tf.Tensor[], viaTail]);
  });
}
