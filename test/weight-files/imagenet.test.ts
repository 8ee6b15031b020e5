import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { selectBackend } from "../../src/backend/select-backend.js";
import type { AppError } from "../../src/errors.js";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { IMAGENET_WEIGHTS_FILE, loadImagenetWeights } from "../../src/weight-files/index.js";
import { testConfig } from "../helpers/app.js";
import { writeKerasWeightsFile } from "../helpers/keras-h5.js";
import { assertSameWeights } from "../helpers/weights.js";

await selectBackend("wasm");
const config = await testConfig();
after(() => fs.rm(config.dataDir, { recursive: true, force: true }));

test("without the file, IMAGENET_WEIGHTS_MISSING names the setting (never the server's path), the file and where Keras publishes it", async () => {
  const model = buildResNet50({ imageSize: 32 });
  const error = await loadImagenetWeights(model, config.imagenetWeights).then(
    () => assert.fail("expected IMAGENET_WEIGHTS_MISSING"),
    (e: unknown) => e as AppError,
  );
  assert.equal(error.code, "IMAGENET_WEIGHTS_MISSING");
  assert.ok(!error.message.includes(config.imagenetWeights), "the error reaches clients: no server path");
  assert.ok(error.message.includes("IMAGENET_WEIGHTS"));
  assert.ok(error.message.includes(`https://storage.googleapis.com/tensorflow/keras-applications/resnet/${IMAGENET_WEIGHTS_FILE}`));
  assert.deepEqual(error.details, {
    setting: "IMAGENET_WEIGHTS",
    file: IMAGENET_WEIGHTS_FILE,
    url: `https://storage.googleapis.com/tensorflow/keras-applications/resnet/${IMAGENET_WEIGHTS_FILE}`,
    md5: "4d473c1dd8becc155b73f8504c6f6626",
  });
  model.dispose();
});

test("with a Keras-layout file at IMAGENET_WEIGHTS, its weights are loaded", async () => {
  const keras = buildResNet50({ imageSize: 32, seed: 11 });
  await fs.mkdir(path.dirname(config.imagenetWeights), { recursive: true });
  await writeKerasWeightsFile(keras, config.imagenetWeights);
  const model = buildResNet50({ imageSize: 32, seed: 12 });
  const report = await loadImagenetWeights(model, config.imagenetWeights);
  assert.equal(report.matchedLayers, 106);
  assertSameWeights(model.layers, keras.layers);
});
