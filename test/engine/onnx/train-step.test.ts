import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { createOnnxTrainStep } from "../../../src/engine/onnx/onnx-train-step.js";
import { trainStepGraph, type StateTensor } from "../../../src/engine/onnx/train-step-graph.js";
import { buildTransferModel } from "../../../src/network/transfer-model.js";
import { splitAtFrozenBoundary } from "../../../src/network/trunk-split.js";
import { FusedAdamOptimizer } from "../../../src/backend/wasm-speedups/index.js";
import { exampleLosses } from "../../../src/training/loss-metrics.js";
import { relativeError, seededValues, selectTrainingWasm } from "../../helpers/backends.js";

before(async () => {
  await selectTrainingWasm();
});

/**
 * Adam's epsilon is 1e-3 here, not the jobs' 1e-7. Adam moves every weight whose gradient is far above
 * epsilon by about the learning rate, whatever the gradient's size: with 1e-7, a gradient that is zero
 * but for float32 rounding (a conv bias before a training-mode BatchNormalization, which subtracts it
 * again) moves its weight by +-lr at random, in TF.js as in any other implementation. 1e-3 damps those
 * updates and leaves the others Adam's, so the weights can be compared; the gradients themselves are
 * compared through the first moments.
 */
const ADAM = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-3 };
const STEPS = 3;

/** Every conv of the tails tested feeds a trainable BatchNormalization. */
function zeroGradient(s: StateTensor): boolean {
  return s.variable.originalName.endsWith("_conv/bias");
}
const BATCH = 6;
const CLASSES = 3;

/** Non-default BN statistics and affine weights, so the moving-average update and the normalisation are really compared. */
function randomiseBatchNorms(model: tf.LayersModel, seed: number): void {
  let next = seed;
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    const sizes = layer.getWeights().map((w) => w.shape[0]);
    const ranges = [
      [0.5, 1.5],
      [-0.5, 0.5],
      [-0.5, 0.5],
      [0.5, 2],
    ];
    layer.setWeights(
      sizes.map((n, i) => tf.tensor1d(seededValues(n, next++).map((v) => ranges[i][0] + ((v + 1) / 2) * (ranges[i][1] - ranges[i][0])))),
    );
  }
}

// 64 px: the cut is 2x2 (4x4 for 32, the whole conv5 with its strided convs), so a 3x3 conv's padding and
// windows are really exercised; 32 px made it 1x1, where only the kernel's centre tap matters.
for (const unfrozenLayers of [0, 10, 8, 32]) {
  test(`three ONNX training steps equal three TF.js steps within 1e-4: weights, BN moving statistics, Adam moments (unfrozenLayers ${unfrozenLayers})`, {
    timeout: 300_000,
  }, async () => {
    const tm = buildTransferModel({
      imageSize: 64,
      numClasses: CLASSES,
      head: { pooling: "flatten", denseUnits: 16, dropout: 0 },
      unfrozenLayers,
      seed: 31,
    });
    randomiseBatchNorms(tm.model, 500);
    const split = splitAtFrozenBoundary(tm, unfrozenLayers)!;
    const cuts = split.cut.map((c, i) => seededValues(BATCH * c.shape.reduce((a, b) => a * b, 1), 60 + i).map((v) => v * 2));
    const labels = new Float32Array(BATCH * CLASSES);
    for (let i = 0; i < BATCH; i++) labels[i * CLASSES + (i % CLASSES)] = 1;

    // ONNX first: it copies the starting state, then TF.js trains the same variables.
    const onnx = await createOnnxTrainStep(split.tail, ADAM);
    const masks = onnx.graph.dropoutMasks.map((m) => new Float32Array(BATCH * m.units).fill(1));
    const losses: number[] = [];
    for (let s = 0; s < STEPS; s++) losses.push((await onnx.step({ cuts, labels, masks, count: BATCH })).loss);

    // TF.js: what train() does per batch (training-mode forward, Keras' loss, the project's Adam).
    const optimizer = new FusedAdamOptimizer(ADAM.learningRate, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
    const xs = split.cut.map((c, i) => tf.tensor(cuts[i], [BATCH, ...c.shape]));
    const ys = tf.tensor2d(labels, [BATCH, CLASSES]);
    const variables = split.tail.trainableWeights.map((w) => w.read() as tf.Variable);
    const expectedLosses: number[] = [];
    for (let s = 0; s < STEPS; s++) {
      const cost = optimizer.minimize(
        () => tf.mean(exampleLosses(ys, split.tail.apply(xs, { training: true }) as tf.Tensor)) as tf.Scalar,
        true,
        variables,
      )!;
      expectedLosses.push(cost.dataSync()[0]);
      cost.dispose();
    }
    tf.dispose([...xs, ys]);
    const moments = new Map((await optimizer.getWeights()).map((w) => [w.name, w.tensor.dataSync() as Float32Array]));
    try {
      for (const [i, loss] of losses.entries()) {
        assert.ok(
          Math.abs(loss - expectedLosses[i]) <= 1e-4 * expectedLosses[i],
          `step ${i + 1} loss: onnx ${loss}, tfjs ${expectedLosses[i]}`,
        );
      }
      assert.equal(onnx.graph.state.filter((s) => s.kind === "weight").length, split.tail.trainableWeights.length);
      const expectedOf = (s: StateTensor) =>
        s.kind === "m" || s.kind === "v" ? moments.get(`${s.variable.name}/${s.kind}`) : (s.variable.read().dataSync() as Float32Array);
      // A tensor that is (nearly) zero is compared to the scale of its kind: biases start at 0 and move by
      // about lr per step. A conv bias before a training-mode BN has a true gradient of 0 (the BN subtracts
      // it again): its gradient is float32 rounding noise in both engines, and only that is checked.
      const scale = new Map<string, number>();
      for (const s of onnx.graph.state) {
        const values = expectedOf(s);
        assert.ok(values, `TF.js has ${s.input}`);
        scale.set(
          s.kind,
          values.reduce((max, v) => Math.max(max, Math.abs(v)), scale.get(s.kind) ?? 0),
        );
      }
      const floor = (kind: StateTensor["kind"]) =>
        kind === "weight" ? ADAM.learningRate : kind === "moving" ? 0 : 1e-3 * scale.get(kind)!;
      for (const s of onnx.graph.state) {
        if (zeroGradient(s)) {
          // Its weight follows rounding noise in both engines: check that the noise is all there is.
          if (s.kind === "m")
            for (const values of [onnx.value(s.input), expectedOf(s)!])
              assert.ok(
                values.every((v) => Math.abs(v) <= 1e-4 * scale.get("m")!),
                `${s.input} is not noise`,
              );
          continue;
        }
        const error = relativeError(onnx.value(s.input), expectedOf(s)!, floor(s.kind));
        assert.ok(error <= 1e-4, `${s.input} (${s.kind}): relative error ${error}`);
      }
      assert.ok(onnx.graph.state.some((s) => s.kind === "moving") === unfrozenLayers > 0);
    } finally {
      optimizer.dispose();
      await onnx.close();
      tm.model.dispose();
    }
  });
}

test("a convolution with its own activation is refused, not trained as linear", () => {
  const input = tf.input({ shape: [6, 6, 2] });
  const conv = tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: "relu", name: "conv_relu" }).apply(input) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(conv) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, activation: "softmax" }).apply(flat) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  assert.throws(() => trainStepGraph(model), /conv_relu.*activation relu/);
  model.dispose();
});
