import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { KerasBatchNormalization, createBatchNormalization } from "../../src/network/keras-batch-normalization.js";

before(async () => {
  await selectBackend("wasm");
});

const INPUT = () => tf.tensor4d([1, 5, -3, 8, 2, 0, 4, -6], [2, 2, 1, 2]);

/** Applies the layer once with training = true; returns output and moving statistics after the call. */
function trainingCall(layer: tf.layers.Layer) {
  const output = Array.from((layer.apply(INPUT(), { training: true }) as tf.Tensor).dataSync());
  const [, , movingMean, movingVariance] = layer.getWeights().map((w) => Array.from(w.dataSync()));
  return { output, movingMean, movingVariance };
}

test("why the subclass exists: a frozen tfjs BatchNormalization still updates its moving statistics", () => {
  const layer = tf.layers.batchNormalization({ axis: 3 });
  layer.build([null, 2, 1, 2]);
  layer.trainable = false;
  assert.notDeepEqual(trainingCall(layer).movingMean, [0, 0]);
});

test("a frozen KerasBatchNormalization runs in inference mode when training: moving statistics used and kept", () => {
  const layer = createBatchNormalization({ axis: 3, epsilon: 1.001e-5 });
  layer.build([null, 2, 1, 2]);
  layer.setWeights([tf.tensor1d([2, 3]), tf.tensor1d([0.5, -1]), tf.tensor1d([1, 2]), tf.tensor1d([4, 9])]);
  layer.trainable = false;
  const { output, movingMean, movingVariance } = trainingCall(layer);
  assert.deepEqual(movingMean, [1, 2]);
  assert.deepEqual(movingVariance, [4, 9]);
  // gamma * (x - movingMean) / sqrt(movingVariance + eps) + beta, per channel
  const x = [1, 5, -3, 8, 2, 0, 4, -6];
  const expected = x.map((v, i) =>
    i % 2 === 0 ? (2 * (v - 1)) / Math.sqrt(4 + 1.001e-5) + 0.5 : (3 * (v - 2)) / Math.sqrt(9 + 1.001e-5) - 1,
  );
  for (const [i, v] of output.entries()) assert.ok(Math.abs(v - expected[i]) < 1e-5, `${v} vs ${expected[i]}`);
});

test("a trainable KerasBatchNormalization normalises with batch statistics and updates its moving averages", () => {
  const layer = createBatchNormalization({ axis: 3, momentum: 0.99 });
  layer.build([null, 2, 1, 2]);
  const { output, movingMean } = trainingCall(layer);
  // channel 0 holds 1, -3, 2, 4 (mean 1); channel 1 holds 5, 8, 0, -6 (mean 1.75)
  assert.ok(Math.abs(movingMean[0] - 0.01 * 1) < 1e-6);
  assert.ok(Math.abs(movingMean[1] - 0.01 * 1.75) < 1e-6);
  const channel0 = output.filter((_, i) => i % 2 === 0);
  assert.ok(Math.abs(channel0.reduce((a, b) => a + b, 0)) < 1e-4, "batch-normalised output has zero mean");
});

test("it serialises as BatchNormalization and a model read back from JSON gets the Keras semantics", async () => {
  const input = tf.input({ shape: [2, 1, 2] });
  const model = tf.model({ inputs: input, outputs: createBatchNormalization({ axis: 3, name: "bn" }).apply(input) as tf.SymbolicTensor });
  const json = model.toJSON(null, false) as unknown as { config: { layers: { class_name: string }[] } };
  assert.deepEqual(
    json.config.layers.map((l) => l.class_name),
    ["InputLayer", "BatchNormalization"],
  );
  const restored = await tf.models.modelFromJSON({ modelTopology: json as unknown as tf.io.ModelJSON["modelTopology"] });
  assert.ok(restored.getLayer("bn") instanceof KerasBatchNormalization);
});
