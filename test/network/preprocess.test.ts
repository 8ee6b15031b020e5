import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { preprocessInput } from "../../src/network/preprocess.js";
import { AppError } from "../../src/errors.js";

before(async () => {
  await selectBackend("wasm");
});

function assertClose(actual: ArrayLike<number>, expected: number[]): void {
  assert.equal(actual.length, expected.length);
  for (const [i, e] of expected.entries()) assert.ok(Math.abs(actual[i] - e) < 1e-4, `[${i}] ${actual[i]} vs ${e}`);
}

test("caffe preprocessing: RGB -> BGR, minus [103.939, 116.779, 123.68], no scaling", () => {
  // two images of 1x2 pixels: (255, 0, 10) (0, 128, 255) and (10, 20, 30) (103.939, 116.779, 123.68)
  const rgb = tf.tensor4d([255, 0, 10, 0, 128, 255, 10, 20, 30, 123.68, 116.779, 103.939], [2, 1, 2, 3]);
  const out = preprocessInput(rgb);
  assert.deepEqual(out.shape, [2, 1, 2, 3]);
  // by hand: B - 103.939, G - 116.779, R - 123.68
  assertClose(out.dataSync(), [
    10 - 103.939,
    0 - 116.779,
    255 - 123.68,
    255 - 103.939,
    128 - 116.779,
    0 - 123.68,
    30 - 103.939,
    20 - 116.779,
    10 - 123.68,
    0,
    0,
    0,
  ]);
  // hand-computed constants, not the same arithmetic again
  assertClose(out.dataSync().slice(0, 3), [-93.939, -116.779, 131.32]);
  assert.equal(rgb.isDisposed, false);
  tf.dispose([rgb, out]);
});

test("integer pixels (as decoders give them) are preprocessed the same as floats", () => {
  const ints = tf.tensor4d([200, 100, 50], [1, 1, 1, 3], "int32");
  const out = preprocessInput(ints);
  assert.equal(out.dtype, "float32");
  assertClose(out.dataSync(), [50 - 103.939, 100 - 116.779, 200 - 123.68]);
  tf.dispose([ints, out]);
});

test("a tensor that is not [n, h, w, 3] is refused, naming its shape", () => {
  const gray = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
  assert.throws(
    () => preprocessInput(gray),
    (err: unknown) => err instanceof AppError && err.message.includes("[1, 4, 4, 1]"),
  );
  gray.dispose();
});
