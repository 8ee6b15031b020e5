import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  decodeOptimizerState,
  encodeOptimizerState,
  exportOptimizerState,
  importOptimizerState,
  type OptimizerState,
} from "../../src/training/optimizer-state.js";
import { train } from "../../src/training/train.js";
import { smallData, smallModel } from "../helpers/small-model.js";
import { selectTrainingWasm } from "../helpers/backends.js";

before(async () => {
  await selectTrainingWasm();
});

async function trainedState(epochs: number, freezeConv = false): Promise<OptimizerState> {
  const data = smallData(1);
  const model = smallModel(3);
  model.getLayer("conv").trainable = !freezeConv;
  const result = await train({ model, learningRate: 0.01, epochs, train: data.source, seed: 1 });
  const state = await result.stepper.exportOptimizerState();
  await result.stepper.dispose();
  model.dispose();
  data.dispose();
  return state;
}

test("a fresh optimizer exports step 0 and no moments (tfjs creates them on the first step)", async () => {
  const model = smallModel(3);
  const optimizer = tf.train.adam(0.01);
  const state = await exportOptimizerState(optimizer, model);
  assert.equal(state.iterations, 0);
  assert.deepEqual(state.moments, []);
  assert.equal(Math.fround(state.accBeta1), Math.fround(0.9));
  optimizer.dispose();
  model.dispose();
});

test("after training: the step count and one m and v per trainable weight, named by weight", async () => {
  const state = await trainedState(2);
  assert.equal(state.iterations, 10);
  assert.equal(state.accBeta1, Math.fround(state.accBeta1));
  assert.ok(Math.abs(state.accBeta1 - 0.9 ** 11) < 1e-6);
  assert.deepEqual(
    state.moments.map((m) => [m.name, m.shape]),
    [
      ["conv/kernel", [3, 3, 3, 4]],
      ["conv/bias", [4]],
      ["dense/kernel", [144, 8]],
      ["dense/bias", [8]],
      ["predictions/kernel", [8, 2]],
      ["predictions/bias", [2]],
    ],
  );
  for (const { m, v, shape } of state.moments) {
    assert.equal(
      m.length,
      shape.reduce((a, b) => a * b, 1),
    );
    assert.ok(v.every((x) => x >= 0));
    assert.ok(m.some((x) => x !== 0));
  }
});

test("frozen layers have no moments", async () => {
  const state = await trainedState(1, true);
  assert.deepEqual(
    state.moments.map((m) => m.name),
    ["dense/kernel", "dense/bias", "predictions/kernel", "predictions/bias"],
  );
});

test("bytes round trip exactly, also from an unaligned view", async () => {
  const state = await trainedState(1);
  const bytes = encodeOptimizerState(state);
  assert.deepEqual(decodeOptimizerState(bytes), state);
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(decodeOptimizerState(shifted.subarray(1)), state);
  assert.throws(() => decodeOptimizerState(bytes.subarray(0, bytes.length - 4)), { code: "OPTIMIZER_STATE_INVALID" });
  assert.throws(() => decodeOptimizerState(new TextEncoder().encode("not a state")), { code: "OPTIMIZER_STATE_INVALID" });
});

test("bytes read back from a file (a Node Buffer, whose slice() is a view) decode to the state that was written", async () => {
  const state = await trainedState(1);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rf-optimizer-"));
  try {
    await fs.writeFile(path.join(dir, "optimizer.bin"), encodeOptimizerState(state));
    const fromFile = await fs.readFile(path.join(dir, "optimizer.bin"));
    assert.deepEqual(decodeOptimizerState(fromFile), state);
    // A Buffer from Node's shared pool: a view into a larger ArrayBuffer.
    assert.deepEqual(decodeOptimizerState(Buffer.concat([Buffer.from("x"), fromFile]).subarray(1)), state);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("import restores what was exported, into a fresh optimizer, and leaks nothing", async () => {
  const state = await trainedState(2);
  const model = smallModel(3);
  const before = tf.memory().numTensors;
  const optimizer = tf.train.adam(0.01);
  await importOptimizerState(optimizer, model, state);
  assert.equal(optimizer.iterations, 10);
  assert.deepEqual(await exportOptimizerState(optimizer, model), state);
  optimizer.dispose();
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test("import refuses a state that does not fit the model or a used optimizer", async () => {
  const state = await trainedState(1);
  const model = smallModel(3);
  const fresh = () => tf.train.adam(0.01);

  model.getLayer("conv").trainable = false;
  await assert.rejects(importOptimizerState(fresh(), model, state), {
    code: "OPTIMIZER_STATE_INVALID",
    message: /not trainable here: conv\/kernel, conv\/bias/,
  });
  model.getLayer("conv").trainable = true;

  const missing = { ...state, moments: state.moments.filter((m) => m.name !== "dense/bias") };
  await assert.rejects(importOptimizerState(fresh(), model, missing), {
    code: "OPTIMIZER_STATE_INVALID",
    message: /no moments for trainable weight "dense\/bias"/,
  });

  const reshaped = { ...state, moments: state.moments.map((m) => (m.name === "dense/bias" ? { ...m, shape: [2, 4] } : m)) };
  await assert.rejects(importOptimizerState(fresh(), model, reshaped), { code: "OPTIMIZER_STATE_INVALID", message: /shape \[2,4\]/ });

  const used = fresh();
  await importOptimizerState(used, model, state);
  await assert.rejects(importOptimizerState(used, model, state), { code: "OPTIMIZER_STATE_INVALID" });
  await assert.rejects(importOptimizerState(tf.train.sgd(0.1), model, state), { code: "OPTIMIZER_STATE_INVALID" });
  model.dispose();
});
