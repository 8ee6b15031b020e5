import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../../src/backend/select-backend.js";
import { rgbToTensor } from "../../../src/datasets/image-decode.js";
import { preprocessInput } from "../../../src/network/preprocess.js";
import { createOnnxTrunk } from "../../../src/engine/onnx/onnx-trunk.js";
import { buildTransferModel } from "../../../src/network/transfer-model.js";
import { splitAtFrozenBoundary } from "../../../src/network/trunk-split.js";
import { inProcessRunner } from "../../../src/training/trunk-pool.js";
import { relativeError, seededValues } from "../../helpers/backends.js";

before(async () => {
  await selectBackend("wasm");
});

test("the ONNX trunk runner gives the TF.js runner's features from the same uint8 pixels (preprocessing included) and preprocessed floats", async () => {
  const imageSize = 32;
  const tm = buildTransferModel({
    imageSize,
    numClasses: 2,
    head: { pooling: "flatten", denseUnits: 4, dropout: 0 },
    unfrozenLayers: 30,
    seed: 21,
  });
  const split = splitAtFrozenBoundary(tm, 30)!;
  const count = 3;
  const pixels = Uint8Array.from(seededValues(count * imageSize * imageSize * 3, 9), (v) => Math.floor((v + 1) * 127.9));
  const expected = await inProcessRunner(split.trunk, imageSize).run(pixels, count);
  const runner = await createOnnxTrunk(split.trunk, imageSize);
  try {
    // From uint8 pixels (the feature cache), and from caffe-preprocessed NHWC floats (the streamed trunk).
    const preprocessed = tf.tidy(() => preprocessInput(rgbToTensor(pixels, count, imageSize)));
    const fromFloats = await runner.runPreprocessed(preprocessed.dataSync() as Float32Array, count);
    preprocessed.dispose();
    for (const got of [await runner.run(pixels, count), fromFloats]) {
      assert.equal(got.length, split.cut.length);
      got.forEach((features, i) => {
        assert.equal(features.length, count * split.cut[i].shape.reduce((a, b) => a * b, 1));
        const error = relativeError(features, expected[i]);
        assert.ok(error <= 1e-4, `${split.cut[i].layer}: relative error ${error}`);
      });
    }
  } finally {
    await runner.close();
    tm.model.dispose();
  }
});
