import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { FusedAdamOptimizer, type GradientThread } from "../../src/backend/wasm-speedups/index.js";
import { seededValues, selectTrainingWasm } from "../helpers/backends.js";

let helper: GradientThread;

before(async () => {
  helper = (await selectTrainingWasm()).gradientThread;
});

after(async () => {
  await helper.stop();
});

/**
 * Three Adam steps of a small convolutional model: a trainable 3x3 conv on the
 * input, a frozen 1x1 conv, a trainable strided 3x3 conv with valid padding,
 * then a Dense head.
 * Returns every weight's values after the steps.
 */
function threeSteps(): Float32Array[] {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [12, 12, 8],
        filters: 16,
        kernelSize: 3,
        padding: "same",
        kernelInitializer: "glorotUniform",
        name: "c1",
      }),
      tf.layers.conv2d({ filters: 16, kernelSize: 1, trainable: false, name: "c2" }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: "valid", activation: "relu", name: "c3" }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, activation: "softmax", name: "out" }),
    ],
  });
  // Same starting weights for every run, whatever the initializers drew.
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(seededValues(w.size, 100 + i), w.shape)));
  const xs = tf.tensor4d(seededValues(4 * 12 * 12 * 8, 7), [4, 12, 12, 8]);
  const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 1], "int32"), 3);
  const optimizer = new FusedAdamOptimizer(1e-2, 0.9, 0.999, 1e-7);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let step = 0; step < 3; step++) {
    tf.dispose(
      optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
        variables,
      )!,
    );
  }
  const values = model.getWeights().map((w) => w.dataSync() as Float32Array);
  tf.dispose([xs, ys]);
  optimizer.dispose();
  model.dispose();
  return values;
}

test("with the helper thread computing filter gradients, training gives the same weights bit for bit as without it", async () => {
  const alone = threeSteps();
  assert.equal(await helper.start({ minMultiplyAdds: 0 }), true);
  const before = helper.offloaded();
  const helped = threeSteps();
  // Every conv's dW, at every step, came from the helper: tfjs' fused conv gradient computes dx and dW
  // for each conv, even where one is not needed (c1's dx, frozen c2's dW).
  assert.equal(helper.offloaded() - before, 9);
  assert.equal(helped.length, alone.length);
  for (const [i, values] of alone.entries()) assert.deepEqual(helped[i], values, `weight ${i}`);
  // Training did change the trainable weights, so the comparison is between trained models.
  assert.notDeepEqual(alone[0], seededValues(alone[0].length, 100));
});

test("filter gradients smaller than the threshold stay on the training thread; stopping the helper stops offloading", async () => {
  await helper.stop();
  assert.equal(await helper.start(), true); // default threshold: far above this model's convolutions
  const before = helper.offloaded();
  threeSteps();
  assert.equal(helper.offloaded(), before);
  await helper.stop();
  await helper.start({ minMultiplyAdds: 0 });
  await helper.stop();
  threeSteps();
  assert.equal(helper.offloaded(), before);
});
