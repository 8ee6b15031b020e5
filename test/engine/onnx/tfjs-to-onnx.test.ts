import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../../src/backend/select-backend.js";
import { createOrtSession } from "../../../src/engine/onnx/ort-session.js";
import { tfjsToOnnx } from "../../../src/engine/onnx/tfjs-to-onnx.js";
import { buildTransferModel, type HeadSpec } from "../../../src/network/transfer-model.js";
import { splitAtFrozenBoundary } from "../../../src/network/trunk-split.js";
import { relativeError, seededValues } from "../../helpers/backends.js";
import { onnxNodes } from "../../helpers/onnx-nodes.js";

before(async () => {
  await selectBackend("wasm");
});

/**
 * Moves every BatchNormalization away from its initial state (gamma 1, beta 0, mean 0, variance 1), so
 * folding it into the convolution before it is really exercised.
 */
function randomiseBatchNorms(model: tf.LayersModel, seed: number): void {
  let next = seed;
  for (const layer of model.layers) {
    if (layer.getClassName() !== "BatchNormalization") continue;
    const [gamma, beta, mean, variance] = layer.getWeights().map((w) => w.shape[0]);
    const u = (n: number, lo: number, hi: number) => tf.tensor1d(seededValues(n, next++).map((v) => lo + ((v + 1) / 2) * (hi - lo)));
    layer.setWeights([u(gamma, 0.5, 1.5), u(beta, -0.5, 0.5), u(mean, -0.5, 0.5), u(variance, 0.5, 2)]);
  }
}

function images(size: number, count: number, seed: number): tf.Tensor4D {
  // The range of caffe-preprocessed pixels.
  return tf.tensor4d(
    seededValues(count * size * size * 3, seed).map((v) => v * 125),
    [count, size, size, 3],
  );
}

const FLATTEN: HeadSpec = { pooling: "flatten", denseUnits: 16, dropout: 0.5 };

for (const imageSize of [32, 64]) {
  for (const unfrozenLayers of [0, 8]) {
    test(`the ONNX trunk computes TF.js' trunk within 1e-4 (${imageSize} px, unfrozenLayers ${unfrozenLayers})`, async () => {
      const tm = buildTransferModel({ imageSize, numClasses: 3, head: FLATTEN, unfrozenLayers, seed: 11 });
      randomiseBatchNorms(tm.model, 100);
      const split = splitAtFrozenBoundary(tm, unfrozenLayers)!;
      const onnx = tfjsToOnnx(split.trunk);
      assert.deepEqual(
        onnx.outputNames,
        split.cut.map((c) => c.layer),
      );

      const x = images(imageSize, 3, 5);
      const expected = tf.tidy(() => {
        const out = split.trunk.predict(x);
        return (Array.isArray(out) ? out : [out]).map((t) => ({ data: t.dataSync() as Float32Array, shape: t.shape }));
      });
      const session = await createOrtSession(onnx.bytes);
      try {
        const got = await session.run({ [onnx.inputNames[0]]: { data: x.dataSync() as Float32Array, dims: x.shape } });
        onnx.outputNames.forEach((name, i) => {
          assert.deepEqual(got[name].dims, expected[i].shape);
          const error = relativeError(got[name].data, expected[i].data);
          assert.ok(error <= 1e-4, `${name}: relative error ${error}`);
        });
      } finally {
        await session.release();
        x.dispose();
        tm.model.dispose();
      }
    });
  }
}

for (const head of [FLATTEN, { pooling: "avg", denseUnits: 8, dropout: 0.2 } satisfies HeadSpec]) {
  test(`the exported whole model gives TF.js' probabilities within 1e-5 (${head.pooling} head)`, async () => {
    const tm = buildTransferModel({ imageSize: 32, numClasses: 4, head, unfrozenLayers: 10, seed: 12 });
    randomiseBatchNorms(tm.model, 200);
    const onnx = tfjsToOnnx(tm.model);
    assert.deepEqual(onnx.outputNames, ["predictions"]);
    const x = images(32, 4, 6);
    const expected = tf.tidy(() => (tm.model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    const session = await createOrtSession(onnx.bytes);
    try {
      const got = (await session.run({ input_1: { data: x.dataSync() as Float32Array, dims: x.shape } })).predictions;
      assert.deepEqual(got.dims, [4, 4]);
      const diff = Math.max(...got.data.map((p, i) => Math.abs(p - expected[i])));
      assert.ok(diff <= 1e-5, `max difference ${diff}`);
    } finally {
      await session.release();
      x.dispose();
      tm.model.dispose();
    }
  });
}

test("the ONNX tail computes TF.js' tail from the cut tensors (two-tensor cut)", async () => {
  const tm = buildTransferModel({ imageSize: 32, numClasses: 3, head: FLATTEN, unfrozenLayers: 8, seed: 13 });
  randomiseBatchNorms(tm.model, 300);
  const split = splitAtFrozenBoundary(tm, 8)!;
  const onnx = tfjsToOnnx(split.tail);
  const cut = split.cut.map((c, i) =>
    tf.tensor4d(seededValues(2 * c.shape.reduce((a, b) => a * b), 40 + i), [2, ...c.shape] as [number, number, number, number]),
  );
  const expected = tf.tidy(() => (split.tail.predict(cut) as tf.Tensor).dataSync() as Float32Array);
  const session = await createOrtSession(onnx.bytes);
  try {
    const feeds = Object.fromEntries(
      onnx.inputNames.map((name, i) => [name, { data: cut[i].dataSync() as Float32Array, dims: cut[i].shape }]),
    );
    const got = (await session.run(feeds)).predictions;
    const diff = Math.max(...got.data.map((p, i) => Math.abs(p - expected[i])));
    assert.ok(diff <= 1e-5, `max difference ${diff}`);
  } finally {
    await session.release();
    tf.dispose(cut);
    tm.model.dispose();
  }
});

test("the trunk's graph is one input Transpose, Conv/Relu/Add/MaxPool in NCHW, one Transpose per output: the ZeroPadding2Ds are pads", async () => {
  const tm = buildTransferModel({ imageSize: 32, numClasses: 3, head: FLATTEN, unfrozenLayers: 8, seed: 14 });
  const split = splitAtFrozenBoundary(tm, 8)!;
  try {
    const onnx = tfjsToOnnx(split.trunk);
    const nodes = onnxNodes(onnx.bytes);
    const ops = new Map<string, number>();
    for (const n of nodes) ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
    // A Pad node between conv1 and pool1 would make ONNX Runtime reorder the 64-channel image out of NCHWc and back.
    assert.deepEqual([...ops.keys()].sort(), ["Add", "Conv", "MaxPool", "Relu", "Transpose"]);
    assert.equal(ops.get("Transpose"), 1 + onnx.outputNames.length);
    const conv1 = nodes.find((n) => n.opType === "Conv" && n.input[1] === "conv1_conv/kernel")!;
    assert.deepEqual(conv1.attributes.pads, [3, 3, 3, 3]);
    assert.equal(conv1.attributes.auto_pad, undefined);
    assert.equal(conv1.input[0], "input_1/nchw");
    const pool = nodes.find((n) => n.opType === "MaxPool")!;
    assert.deepEqual(pool.attributes.pads, [1, 1, 1, 1]);
    assert.equal(pool.input[0], "conv1_relu/relu");
  } finally {
    tm.model.dispose();
  }
});

test("a ZeroPadding2D is a Pad node where its reader cannot take it as pads (MaxPool of signed values, a 'same' Conv), and every reader gives TF.js' values", async () => {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const input = tf.input({ shape: [7, 6, 3], name: "x" });
  const padded = tf.layers
    .zeroPadding2d({
      padding: [
        [1, 2],
        [0, 1],
      ],
      name: "pad",
    })
    .apply(input) as tf.SymbolicTensor;
  const pooled = tf.layers.maxPooling2d({ poolSize: 2, name: "pool" }).apply(padded) as tf.SymbolicTensor;
  const valid = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, kernelInitializer: init(1), biasInitializer: "ones", name: "valid" })
    .apply(padded);
  const same = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: "same", kernelInitializer: init(2), name: "same" }).apply(padded);
  const model = tf.model({ inputs: input, outputs: [pooled, valid as tf.SymbolicTensor, same as tf.SymbolicTensor] });
  const onnx = tfjsToOnnx(model);
  const nodes = onnxNodes(onnx.bytes);
  const pads = nodes.filter((n) => n.opType === "Pad");
  assert.equal(pads.length, 1, "one Pad node, shared by the MaxPool and the 'same' Conv");
  assert.equal(nodes.find((n) => n.opType === "MaxPool")!.input[0], "pad/out");
  const convs = nodes.filter((n) => n.opType === "Conv");
  assert.deepEqual(convs.find((n) => n.input[1] === "valid/kernel")!.attributes.pads, [1, 0, 2, 1]);
  assert.equal(convs.find((n) => n.input[1] === "same/kernel")!.input[0], "pad/out");

  const x = tf.tensor4d(
    seededValues(2 * 7 * 6 * 3, 8).map((v) => v * 125),
    [2, 7, 6, 3],
  );
  const expected = tf.tidy(() => (model.predict(x) as tf.Tensor[]).map((t) => t.dataSync() as Float32Array));
  const session = await createOrtSession(onnx.bytes);
  try {
    const got = await session.run({ x: { data: x.dataSync() as Float32Array, dims: x.shape } });
    onnx.outputNames.forEach((name, i) => {
      const error = relativeError(got[name].data, expected[i]);
      assert.ok(error <= 1e-5, `${name}: relative error ${error}`);
    });
  } finally {
    await session.release();
    x.dispose();
    model.dispose();
  }
});
