// Every kernel a ResNet-50 training step runs exists on wasm and computes what cpu computes.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { onBackend, relativeError, seededValues, selectTrainingWasm } from "../helpers/backends.js";

await selectTrainingWasm();

const SIZE = 16;
const BATCH = 3;
const CLASSES = 4;

/** ResNet's building blocks in miniature: stem, pool1, one residual block with a projection, both head poolings. */
function smallResNet(): tf.LayersModel {
  let seed = 100;
  const conv = (x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number, padding: "same" | "valid") =>
    tf.layers
      .conv2d({
        filters,
        kernelSize,
        strides,
        padding,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
        biasInitializer: tf.initializers.randomNormal({ seed: seed++, stddev: 0.1 }),
      })
      .apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor) =>
    tf.layers
      .batchNormalization({
        epsilon: 1.001e-5,
        gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed++ }),
      })
      .apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor) => tf.layers.activation({ activation: "relu" }).apply(x) as tf.SymbolicTensor;
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: [SIZE, SIZE, 3] });
  let x = relu(bn(conv(input, 8, 3, 2, "same")));
  x = apply(tf.layers.zeroPadding2d({ padding: 1 }), x);
  x = apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2 }), x);
  const shortcut = bn(conv(x, 12, 1, 2, "valid"));
  let y = relu(bn(conv(x, 6, 1, 1, "valid")));
  y = bn(conv(y, 12, 3, 2, "same"));
  x = relu(apply(tf.layers.add(), [y, shortcut]));
  const pooled = apply(tf.layers.concatenate(), [apply(tf.layers.flatten(), x), apply(tf.layers.globalAveragePooling2d({}), x)]);
  const output = apply(
    tf.layers.dense({ units: CLASSES, activation: "softmax", kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }),
    pooled,
  );
  return tf.model({ inputs: input, outputs: output });
}

const images = seededValues(BATCH * SIZE * SIZE * 3, 1);
const labels = Array.from({ length: BATCH }, (_, i) => i % CLASSES);

interface StepResult {
  loss: number;
  /** Gradient of the loss for every trainable weight, in model.trainableWeights order. */
  gradients: Float32Array[];
  /** Every weight after one SGD step, moving statistics included, in model.weights order. */
  weightsAfter: Float32Array[];
}

function trainingStep(initial: tf.Tensor[]): Promise<StepResult> {
  return (async () => {
    const model = smallResNet();
    model.setWeights(initial);
    const x = tf.tensor4d(images, [BATCH, SIZE, SIZE, 3]);
    const y = tf.oneHot(labels, CLASSES).toFloat();
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.metrics.categoricalCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar,
      model.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const gradients = model.trainableWeights.map((w) => grads[(w.read() as tf.Variable).name].dataSync() as Float32Array);
    const loss = value.dataSync()[0];
    model.setWeights(initial); // the gradient pass above updated the BN moving statistics
    model.compile({ optimizer: tf.train.sgd(0.1), loss: "categoricalCrossentropy" });
    await model.trainOnBatch(x, y);
    const weightsAfter = model.weights.map((w) => w.read().dataSync() as Float32Array);
    tf.dispose([x, y, value, ...Object.values(grads)]);
    model.dispose();
    return { loss, gradients, weightsAfter };
  })();
}

test("a training step of a small ResNet (conv stride 2 same, BN, relu, zero-pad + max-pool 3/2, add, flatten, avg-pool, dense softmax) gives the same gradients and weights on wasm as on cpu", async () => {
  const initialValues = await onBackend("cpu", () =>
    smallResNet()
      .getWeights()
      .map((w) => ({ values: w.dataSync().slice(), shape: w.shape })),
  );
  const initial = () => initialValues.map((w) => tf.tensor(w.values, w.shape));
  const expected = await onBackend("cpu", () => trainingStep(initial()));
  const actual = await trainingStep(initial());
  assert.equal(tf.getBackend(), "wasm");

  assert.ok(Math.abs(actual.loss - expected.loss) / expected.loss < 1e-4, `loss ${actual.loss} vs ${expected.loss}`);
  assert.equal(actual.gradients.length, expected.gradients.length);
  // Relative error per tensor: max|wasm - cpu| / max|cpu|. A conv bias right before a BN
  // layer in training mode has a zero gradient in exact arithmetic, so both backends give
  // float noise there (max|cpu| < 1e-3 of the model's largest gradient): such tensors are
  // measured against the largest gradient instead of their own noise.
  const largest = Math.max(...expected.gradients.map((g) => Math.max(...g.map(Math.abs))));
  const errors: string[] = [];
  expected.gradients.forEach((g, i) => {
    const zeroInExactArithmetic = Math.max(...g.map(Math.abs)) < 1e-3 * largest;
    const error = relativeError(actual.gradients[i], g, zeroInExactArithmetic ? largest : 0);
    if (!(error < 1e-4)) errors.push(`gradient ${i}: ${error}`);
  });
  expected.weightsAfter.forEach((w, i) => {
    const error = relativeError(actual.weightsAfter[i], w);
    if (!(error < 1e-4)) errors.push(`weight ${i} after the step: ${error}`);
  });
  assert.deepEqual(errors, []);
});

test("one Adam step of ResNet-50 at 32 px runs on wasm and changes the weights", async () => {
  const base = buildResNet50({ imageSize: 32, seed: 3 });
  const pooled = tf.layers.globalAveragePooling2d({}).apply(base.outputs[0]) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 2, activation: "softmax" }).apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: base.inputs, outputs: output });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
  const before = model.getLayer("conv1_conv").getWeights()[0].dataSync().slice();
  const x = tf.tensor4d(seededValues(2 * 32 * 32 * 3, 5), [2, 32, 32, 3]);
  const y = tf.oneHot([0, 1], 2).toFloat();
  const loss = (await model.trainOnBatch(x, y)) as number;
  assert.ok(Number.isFinite(loss));
  const after = model.getLayer("conv1_conv").getWeights()[0].dataSync();
  assert.ok(relativeError(after, before) > 0, "conv1_conv kernel changed");
  tf.dispose([x, y]);
  model.dispose();
});
