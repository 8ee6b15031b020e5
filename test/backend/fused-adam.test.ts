import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ADAM_UPDATE_KERNEL, registerAdamUpdateKernel } from "../../src/backend/wasm-speedups/fused-adam.js";
import { FusedAdamOptimizer } from "../../src/backend/wasm-speedups/index.js";
import { onBackend, seededValues, selectTrainingWasm } from "../helpers/backends.js";

before(async () => {
  await selectTrainingWasm();
  registerAdamUpdateKernel("cpu"); // as installTrainingSpeedups does in a process training on cpu
});

const SHAPES = [[3, 4, 5, 6], [300, 17], [7], [1]];

/** Gradients of every scale Adam sees, zeros and a huge one included, different at each step. */
function gradientValues(count: number, step: number, weight: number): Float32Array {
  const values = seededValues(count, 1000 * step + weight);
  for (let i = 0; i < count; i++) values[i] *= 10 ** ((i % 9) - 6);
  values[0] = 0;
  if (count > 1) values[1] = 3e4;
  return values;
}

/** Five steps of `optimizer` on fresh variables; the variables' values, then getWeights()' values (iterations, moments). */
async function fiveSteps(optimizer: tf.Optimizer, tag: string): Promise<Float32Array[]> {
  const variables = SHAPES.map((shape, w) =>
    tf.variable(
      tf.tensor(
        seededValues(
          shape.reduce((a, b) => a * b, 1),
          77 + w,
        ),
        shape,
      ),
      true,
      `${tag}_w${w}`,
    ),
  );
  for (let step = 0; step < 5; step++) {
    const gradients = variables.map((v, w) => ({ name: v.name, tensor: tf.tensor(gradientValues(v.size, step, w), v.shape) }));
    optimizer.applyGradients(gradients);
    tf.dispose(gradients.map((g) => g.tensor));
  }
  const slots = await optimizer.getWeights();
  const out = [...variables, ...slots.map((s) => s.tensor)].map((t) => t.dataSync() as Float32Array);
  tf.dispose(variables);
  optimizer.dispose();
  return out;
}

for (const backend of ["wasm", "cpu"] as const) {
  test(`on ${backend}, the one-pass Adam gives tfjs' Adam's weights, moments and step count bit for bit`, async () => {
    await onBackend(backend, async () => {
      const stock = await fiveSteps(tf.train.adam(1e-3, 0.9, 0.999, 1e-7), `stock_${backend}`);
      let fused: Float32Array[] = [];
      const profile = await tf.profile(async () => {
        fused = await fiveSteps(new FusedAdamOptimizer(1e-3, 0.9, 0.999, 1e-7), `fused_${backend}`);
      });
      // The one-pass kernel did the updates: 5 steps of 4 weights (not tfjs' ops, which would also pass).
      assert.equal(profile.kernels.filter((k) => k.name === ADAM_UPDATE_KERNEL).length, 20);
      assert.equal(fused.length, stock.length);
      assert.equal(fused.length, SHAPES.length + 1 + 2 * SHAPES.length);
      for (const [i, expected] of stock.entries()) {
        assert.deepEqual(fused[i], expected, `tensor ${i}`);
      }
      // The update did move the weights (the comparison above is not between two unchanged sets).
      assert.notDeepEqual(stock[0], seededValues(stock[0].length, 77));
    });
  });
}

test("the one-pass Adam keeps tfjs' Adam's identity: class name and config, for saved models and checkpoints", () => {
  const optimizer = new FusedAdamOptimizer(1e-4, 0.9, 0.999, 1e-7);
  assert.equal(optimizer.getClassName(), "Adam");
  assert.ok(optimizer instanceof tf.AdamOptimizer);
  assert.deepEqual(optimizer.getConfig(), { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
  optimizer.dispose();
});
