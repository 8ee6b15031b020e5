// The ONNX tail step's outputs and state handling beyond the step itself: the training-mode probabilities,
// evaluate() against TF.js' predict, and a resume through value/setValue/adamCounters.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../../src/backend/select-backend.js";
import { createOnnxTrainStep } from "../../../src/engine/onnx/onnx-train-step.js";
import { buildTransferModel } from "../../../src/network/transfer-model.js";
import { splitAtFrozenBoundary } from "../../../src/network/trunk-split.js";
import { relativeError, seededValues } from "../../helpers/backends.js";

before(async () => {
  await selectBackend("wasm");
});

const ADAM = { learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-3 };
const BATCH = 5;
const CLASSES = 3;

function setup(unfrozenLayers: number, dropout: number, seed: number) {
  const tm = buildTransferModel({
    imageSize: 32,
    numClasses: CLASSES,
    head: { pooling: "flatten", denseUnits: 16, dropout },
    unfrozenLayers,
    seed,
  });
  const split = splitAtFrozenBoundary(tm, unfrozenLayers)!;
  const cuts = split.cut.map((c, i) => seededValues(BATCH * c.shape.reduce((a, b) => a * b, 1), seed * 10 + i).map((v) => v * 2));
  const labels = new Float32Array(BATCH * CLASSES);
  for (let i = 0; i < BATCH; i++) labels[i * CLASSES + (i % CLASSES)] = 1;
  return { tm, split, cuts, labels };
}

for (const unfrozenLayers of [0, 10, 8]) {
  test(`step's probabilities equal TF.js' training-mode forward of the same batch (unfrozenLayers ${unfrozenLayers})`, {
    timeout: 120_000,
  }, async () => {
    const { tm, split, cuts, labels } = setup(unfrozenLayers, 0, 41);
    const onnx = await createOnnxTrainStep(split.tail, ADAM);
    try {
      const masks = onnx.graph.dropoutMasks.map((m) => new Float32Array(BATCH * m.units).fill(1));
      const { probabilities } = await onnx.step({ cuts, labels, masks, count: BATCH });
      // The ONNX step copied the weights at creation and has not written back: TF.js sees the same starting point.
      const xs = split.cut.map((c, i) => tf.tensor(cuts[i], [BATCH, ...c.shape]));
      const expected = tf.tidy(() => (split.tail.apply(xs, { training: true }) as tf.Tensor).dataSync() as Float32Array);
      tf.dispose(xs);
      assert.equal(probabilities.length, BATCH * CLASSES);
      const error = relativeError(probabilities, expected);
      assert.ok(error <= 1e-4, `relative error ${error}`);
    } finally {
      await onnx.close();
      tm.model.dispose();
    }
  });

  test(`evaluate equals TF.js predict after steps and writeBack (unfrozenLayers ${unfrozenLayers}, dropout 0.5)`, {
    timeout: 120_000,
  }, async () => {
    const { tm, split, cuts, labels } = setup(unfrozenLayers, 0.5, 43);
    const onnx = await createOnnxTrainStep(split.tail, ADAM);
    try {
      const masks = onnx.graph.dropoutMasks.map((m, k) => seededValues(BATCH * m.units, 90 + k).map((v) => (v > 0 ? 2 : 0)));
      for (let s = 0; s < 3; s++) await onnx.step({ cuts, labels, masks, count: BATCH });
      // Fewer rows than the batch trained on: the graph's batch is dynamic.
      const count = BATCH - 2;
      const evalCuts = cuts.map((c) => c.slice(0, (c.length / BATCH) * count));
      const before = tf.tidy(() =>
        (split.tail.predict(split.cut.map((c, i) => tf.tensor(evalCuts[i], [count, ...c.shape]))) as tf.Tensor).dataSync(),
      );
      const probabilities = await onnx.evaluate({ cuts: evalCuts, count });
      // The steps changed the weights: evaluate must not see the TF.js variables before writeBack.
      assert.ok(relativeError(probabilities, before) > 1e-3, "evaluate reads the trained state");
      onnx.writeBack();
      const xs = split.cut.map((c, i) => tf.tensor(evalCuts[i], [count, ...c.shape]));
      const expected = tf.tidy(() => (split.tail.predict(xs) as tf.Tensor).dataSync() as Float32Array);
      tf.dispose(xs);
      assert.equal(probabilities.length, count * CLASSES);
      const error = relativeError(probabilities, expected);
      assert.ok(error <= 1e-4, `relative error ${error}`);
    } finally {
      await onnx.close();
      tm.model.dispose();
    }
  });
}

test("a step resumed through value/setValue and the Adam counters equals the uninterrupted one", { timeout: 120_000 }, async () => {
  const a = setup(10, 0, 47);
  const b = setup(10, 0, 53); // other starting weights: everything must come from setValue
  const first = await createOnnxTrainStep(a.split.tail, ADAM);
  const second = await createOnnxTrainStep(b.split.tail, ADAM);
  try {
    const masks = first.graph.dropoutMasks.map((m) => new Float32Array(BATCH * m.units).fill(1));
    const batch = { cuts: a.cuts, labels: a.labels, masks, count: BATCH };
    for (let s = 0; s < 2; s++) await first.step(batch);
    const counters = first.adamCounters();
    assert.equal(counters.iterations, 2);
    assert.equal(counters.accBeta1, Math.fround(Math.fround(Math.fround(0.9) * Math.fround(0.9)) * Math.fround(0.9)));
    // Inputs are named by the engine's variable names, unique per model: the two graphs pair by position.
    const pairs = first.graph.state.map((s, i) => [s.input, second.graph.state[i].input] as const);
    for (const [from, to] of pairs) second.setValue(to, first.value(from));
    second.setAdamCounters(counters);
    assert.deepEqual(second.adamCounters(), counters);
    const expected = await first.step(batch);
    const resumed = await second.step(batch);
    assert.equal(resumed.loss, expected.loss);
    for (const [from, to] of pairs) assert.deepEqual(second.value(to), first.value(from), to);
    const kernel = second.graph.state.find((s) => s.kind === "weight")!;
    assert.throws(() => second.setValue(kernel.input, new Float32Array(3)), { code: "WEIGHTS_MISMATCH" });
    const moment = second.graph.state.find((s) => s.kind === "m")!;
    assert.throws(() => second.setValue(moment.input, new Float32Array(3)), { code: "OPTIMIZER_STATE_INVALID" });
  } finally {
    await first.close();
    await second.close();
    a.tm.model.dispose();
    b.tm.model.dispose();
  }
});
