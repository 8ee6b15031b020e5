import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { rgbToTensor } from "../../src/datasets/image-decode.js";
import { rowBatchSource } from "../../src/datasets/row-batch-source.js";
import { preprocessInput } from "../../src/network/preprocess.js";
import { buildTransferModel, type TransferModelOptions } from "../../src/network/transfer-model.js";
import { splitAtFrozenBoundary } from "../../src/network/trunk-split.js";
import { train } from "../../src/training/train.js";
import { trunkBatches } from "../../src/training/trunk-batches.js";
import { twoClassImages } from "../helpers/generated-images.js";
import { selectTrainingWasm } from "../helpers/backends.js";

const SIZE = 32;
// unfrozenLayers 8: the cut carries two tensors (conv5_block3_1_relu and the shortcut conv5_block2_out).
const MODEL: TransferModelOptions = {
  imageSize: SIZE,
  numClasses: 2,
  head: { pooling: "flatten", denseUnits: 8, dropout: 0 },
  unfrozenLayers: 8,
  seed: 11,
};

before(async () => {
  await selectTrainingWasm();
});

function imageSource() {
  const { xs, ys, labels } = twoClassImages({ perClass: 5, size: SIZE, seed: 6 });
  const pixels = Uint8Array.from(xs.dataSync());
  tf.dispose([xs, ys]);
  const rowBytes = SIZE * SIZE * 3;
  return rowBatchSource({
    rows: labels.map((_, i) => i),
    labels,
    numClasses: 2,
    batchSize: 4,
    seed: 2,
    shuffle: true,
    read: async (rows) => {
      const out = new Uint8Array(rows.length * rowBytes);
      rows.forEach((r, i) => {
        out.set(pixels.subarray(r * rowBytes, (r + 1) * rowBytes), i * rowBytes);
      });
      return tf.tidy(() => preprocessInput(rgbToTensor(out, rows.length, SIZE)));
    },
  });
}

function weightsOf(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, (w.read().dataSync() as Float32Array).slice()]));
}

test("training the tail on the trunk run batch by batch gives the weights of training the whole model", async () => {
  const whole = buildTransferModel(MODEL);
  const initial = weightsOf(whole.model);
  const a = await train({ model: whole.model, learningRate: 1e-3, epochs: 2, train: imageSource(), seed: 5 });
  await a.stepper.dispose();

  const parts = buildTransferModel(MODEL);
  const split = splitAtFrozenBoundary(parts, MODEL.unfrozenLayers);
  assert.ok(split);
  assert.equal(split.cut.length, 2);
  const b = await train({ model: split.tail, learningRate: 1e-3, epochs: 2, train: trunkBatches(imageSource(), split.trunk, 3), seed: 5 });
  await b.stepper.dispose();

  const expected = weightsOf(whole.model);
  const actual = weightsOf(parts.model);
  let worst = 0;
  let changed = 0;
  for (const [name, values] of expected) {
    if (values.some((v, i) => v !== initial.get(name)![i])) changed++;
    const other = actual.get(name)!;
    values.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - other[i]));
    });
  }
  whole.model.dispose();
  parts.model.dispose();
  assert.ok(changed > 0, "training changed no weight");
  assert.ok(worst <= 1e-5, `largest weight difference ${worst}`);
});

test("each batch holds the trunk's cut tensors for the same images and labels, and iterating leaks no tensor", async () => {
  const tm = buildTransferModel(MODEL);
  const split = splitAtFrozenBoundary(tm, MODEL.unfrozenLayers)!;
  const images = imageSource();
  const source = trunkBatches(images, split.trunk, 3);
  assert.deepEqual([source.size, source.batchSize, source.batchCount], [images.size, images.batchSize, images.batchCount]);

  const before = tf.memory().numTensors;
  const plain = images.batches(1)[Symbol.asyncIterator]();
  let batches = 0;
  for await (const { xs, ys } of source.batches(1)) {
    const { value: reference } = await plain.next();
    const expected = split.trunk.predict(reference.xs) as tf.Tensor[];
    assert.equal(xs.length, 2);
    xs.forEach((x, i) => {
      assert.deepEqual(x.shape, expected[i].shape);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(x, expected[i]))).dataSync()[0]);
      assert.ok(diff <= 1e-5, `cut tensor ${i} differs by ${diff}`);
    });
    assert.deepEqual(ys.arraySync(), reference.ys.arraySync());
    tf.dispose([...xs, ys, reference.xs, reference.ys, ...expected]);
    batches++;
  }
  assert.equal(batches, images.batchCount);
  assert.equal(tf.memory().numTensors, before);
  tm.model.dispose();
});
