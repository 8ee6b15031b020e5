import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { buildResNet50, RESNET50_LAYER_COUNT } from "../../src/network/resnet50.js";
import { AppError } from "../../src/errors.js";
import { KERAS_RESNET50_LAYER_NAMES } from "./keras-resnet50-layer-names.js";

before(async () => {
  await selectBackend("wasm");
});

function weightCount(weights: tf.LayerVariable[]): number {
  return weights.reduce((sum, w) => sum + w.shape.reduce<number>((n, d) => n * (d as number), 1), 0);
}

test("the layers are Keras' 175 ResNet-50 layers, same names, same order", () => {
  const model = buildResNet50({ imageSize: 32, seed: 1 });
  assert.equal(KERAS_RESNET50_LAYER_NAMES.length, 175);
  assert.equal(RESNET50_LAYER_COUNT, 175);
  assert.deepEqual(
    model.layers.map((l) => l.name),
    KERAS_RESNET50_LAYER_NAMES,
  );
  assert.equal(model.layers[0].getClassName(), "InputLayer");
  model.dispose();
});

for (const imageSize of [32, 224]) {
  test(`at ${imageSize} px: 23,587,712 parameters, 53,120 of them BN moving statistics`, () => {
    const model = buildResNet50({ imageSize, seed: 1 });
    assert.equal(model.countParams(), 23_587_712);
    assert.equal(weightCount(model.nonTrainableWeights), 53_120);
    assert.ok(model.nonTrainableWeights.every((w) => /moving_(mean|variance)/.test(w.originalName)));
    assert.equal(weightCount(model.trainableWeights), 23_587_712 - 53_120);
    const finalSize = Math.ceil(imageSize / 32);
    assert.deepEqual(model.outputs[0].shape, [null, finalSize, finalSize, 2048]);
    model.dispose();
  });
}

test("layer hyper-parameters follow keras resnet.py", () => {
  const model = buildResNet50({ imageSize: 64, seed: 1 });
  const config = (name: string) => model.getLayer(name).getConfig();
  const convs = model.layers.filter((l) => l.getClassName() === "Conv2D");
  const bns = model.layers.filter((l) => l.getClassName() === "BatchNormalization");
  assert.equal(convs.length, 53);
  assert.equal(bns.length, 53);
  for (const conv of convs) assert.equal(conv.getConfig().useBias, true, conv.name);
  for (const bn of bns) {
    assert.equal(bn.getConfig().epsilon, 1.001e-5, bn.name);
    assert.equal(bn.getConfig().axis, 3, bn.name);
    assert.equal(bn.getConfig().momentum, 0.99, bn.name);
  }
  assert.deepEqual(config("conv1_pad").padding, [
    [3, 3],
    [3, 3],
  ]);
  assert.deepEqual(config("conv1_conv").kernelSize, [7, 7]);
  assert.deepEqual(config("conv1_conv").strides, [2, 2]);
  assert.deepEqual(config("pool1_pad").padding, [
    [1, 1],
    [1, 1],
  ]);
  assert.deepEqual(config("pool1_pool").poolSize, [3, 3]);
  assert.deepEqual(config("pool1_pool").strides, [2, 2]);
  // The stride of a stage sits on its 1x1 convolutions, as in Keras (conv2 is not strided).
  assert.deepEqual(config("conv2_block1_1_conv").strides, [1, 1]);
  assert.deepEqual(config("conv3_block1_1_conv").strides, [2, 2]);
  assert.deepEqual(config("conv3_block1_0_conv").strides, [2, 2]);
  assert.deepEqual(config("conv3_block1_2_conv").strides, [1, 1]);
  assert.equal(config("conv3_block1_2_conv").padding, "same");
  const shapes = (name: string) =>
    model
      .getLayer(name)
      .getWeights()
      .map((w) => w.shape);
  assert.deepEqual(shapes("conv1_conv"), [[7, 7, 3, 64], [64]]);
  assert.deepEqual(shapes("conv5_block1_0_conv"), [[1, 1, 1024, 2048], [2048]]);
  assert.deepEqual(shapes("conv5_block3_3_bn"), [[2048], [2048], [2048], [2048]]);
  assert.deepEqual(model.getLayer("conv4_block6_out").outputShape, [null, 4, 4, 1024]);
  model.dispose();
});

test("Keras initialisation: zero biases, unit gamma, zero beta and moving mean, unit moving variance", () => {
  const model = buildResNet50({ imageSize: 32, seed: 3 });
  const [kernel, bias] = model.getLayer("conv1_conv").getWeights();
  assert.ok(bias.dataSync().every((v) => v === 0));
  // glorot uniform: |w| <= sqrt(6 / (fanIn + fanOut)) with fans 7*7*3 and 7*7*64
  const limit = Math.sqrt(6 / (7 * 7 * 3 + 7 * 7 * 64));
  const values = kernel.dataSync();
  assert.ok(values.every((v) => Math.abs(v) <= limit));
  assert.ok(values.some((v) => Math.abs(v) > limit / 2));
  const [gamma, beta, mean, variance] = model.getLayer("conv1_bn").getWeights();
  assert.ok(gamma.dataSync().every((v) => v === 1));
  assert.ok(beta.dataSync().every((v) => v === 0));
  assert.ok(mean.dataSync().every((v) => v === 0));
  assert.ok(variance.dataSync().every((v) => v === 1));
  model.dispose();
});

test("the same seed builds the same weights, another seed different ones", () => {
  const kernels = (seed: number) => {
    const model = buildResNet50({ imageSize: 32, seed });
    const picked = ["conv1_conv", "conv3_block2_2_conv", "conv5_block3_3_conv"].map((n) =>
      Array.from(model.getLayer(n).getWeights()[0].dataSync()),
    );
    model.dispose();
    return picked;
  };
  const a = kernels(7);
  assert.deepEqual(kernels(7), a);
  assert.notDeepEqual(kernels(8)[0], a[0]);
  // Every conv draws its own stream, so two kernels of one model are not copies of each other.
  assert.notDeepEqual(a[1].slice(0, 50), a[2].slice(0, 50));
});

test("the model runs forward and serialises BN layers as BatchNormalization", () => {
  const model = buildResNet50({ imageSize: 32, seed: 1 });
  const out = tf.tidy(() => model.predict(tf.ones([2, 32, 32, 3])) as tf.Tensor);
  assert.deepEqual(out.shape, [2, 1, 1, 2048]);
  assert.ok(out.dataSync().every(Number.isFinite));
  out.dispose();
  const topology = model.toJSON(null, false) as unknown as { config: { layers: { class_name: string }[] } };
  const classes = topology.config.layers.map((l) => l.class_name);
  assert.equal(classes.filter((c) => c === "BatchNormalization").length, 53);
  model.dispose();
});

for (const [options, field] of [
  [{ imageSize: 31 }, "imageSize"],
  [{ imageSize: 513 }, "imageSize"],
  [{ imageSize: 64.5 }, "imageSize"],
  [{ imageSize: "224" }, "imageSize"],
  [{ imageSize: 64, seed: 1.5 }, "seed"],
] as const) {
  test(`buildResNet50 refuses ${JSON.stringify(options)} with INVALID_MODEL_OPTIONS quoting the value`, () => {
    assert.throws(
      () => buildResNet50(options as unknown as { imageSize: number; seed?: number }),
      (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.code, "INVALID_MODEL_OPTIONS");
        const value = (options as Record<string, unknown>)[field];
        assert.ok(err.message.includes(JSON.stringify(value)), err.message);
        assert.deepEqual(err.details, { field, value });
        return true;
      },
    );
  });
}
