import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { augmentBatches, transformFor } from "../../src/worker/augment-batches.js";
import { arrayBatchSource } from "../helpers/array-batch-source.js";

await selectBackend("wasm");

/** 1 image 4x4 whose pixel value is its x coordinate (all channels). */
function ramp(): tf.Tensor4D {
  return tf.tidy(() => tf.tile(tf.range(0, 4).reshape([1, 1, 4, 1]), [1, 4, 1, 3]).toFloat() as tf.Tensor4D);
}

test("the transform of no flip, no rotation, no zoom is the identity, and a flip mirrors x", async () => {
  assert.deepEqual(
    transformFor(4, false, 0, 1).map((v) => v + 0),
    [1, 0, 0, 0, 1, 0, 0, 0],
  );
  const image = ramp();
  const flipped = tf.image.transform(image, tf.tensor2d([transformFor(4, true, 0, 1)]), "nearest", "constant", 0);
  assert.deepEqual(Array.from(await flipped.slice([0, 0, 0, 0], [1, 1, 4, 1]).data()), [3, 2, 1, 0]);
  tf.dispose([image, flipped]);
});

test("augmented batches depend only on (seed, epoch, batch) and keep labels and shapes", async () => {
  const xs = tf.randomUniform([6, 8, 8, 3], -100, 100, "float32", 1) as tf.Tensor4D;
  const ys = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 0, 1], "int32"), 2).toFloat() as tf.Tensor2D;
  const source = arrayBatchSource(xs, ys, 4, 7);
  const spec = { flip: true, rotate: 0.1, zoom: 0.2 };
  const read = async (seed: number, epoch: number) => {
    const out: number[][] = [];
    for await (const b of augmentBatches(source, spec, seed).batches(epoch)) {
      assert.deepEqual(b.xs.shape.slice(1), [8, 8, 3]);
      out.push(Array.from(await b.xs.data()), Array.from(await b.ys.data()));
      tf.dispose([b.xs, b.ys]);
    }
    return out;
  };
  const first = await read(5, 1);
  assert.deepEqual(await read(5, 1), first);
  assert.notDeepEqual(await read(5, 2), first);
  assert.notDeepEqual(await read(6, 1), first);
  const plain: number[] = [];
  for await (const b of source.batches(1)) {
    plain.push(...(await b.ys.data()));
    tf.dispose([b.xs, b.ys]);
  }
  assert.deepEqual([...first[1], ...first[3]], plain);
  tf.dispose([xs, ys]);
});
