import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { selectBackend } from "../../src/backend/select-backend.js";
import { AppError } from "../../src/errors.js";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { inspectWeightsFile, loadBaseWeights } from "../../src/weight-files/index.js";
import { tempDir } from "../helpers/app.js";
import { RESNET50_PATTERN, SMALL_CNN_FILES, patternValues, unpackResnet50 } from "../helpers/keras-fixtures.js";

await selectBackend("wasm");

const dir = await tempDir("rf-real-keras-");
after(() => fs.rm(dir, { recursive: true, force: true }));

for (const name of ["resnet50-notop.keras3.h5", "resnet50-notop.weights.h5"] as const) {
  test(`ResNet-50 weights saved by real Keras 3 (${name}) load into every layer, value for value`, async () => {
    const file = await unpackResnet50(name, dir);
    const model = buildResNet50({ imageSize: 32, seed: 5 });
    const report = await loadBaseWeights(model, file);
    assert.equal(report.usable, true);
    assert.equal(report.matchedLayers, 106);

    const byLayer = new Map<string, typeof RESNET50_PATTERN>();
    for (const w of RESNET50_PATTERN) {
      const layer = w.path.split("/")[0];
      byLayer.set(layer, [...(byLayer.get(layer) ?? []), w]);
    }
    let checked = 0;
    for (const layer of model.layers) {
      const weights = layer.getWeights();
      const expected = byLayer.get(layer.name) ?? [];
      assert.equal(weights.length, expected.length, layer.name);
      weights.forEach((tensor, i) => {
        assert.deepEqual(tensor.shape, expected[i].shape, expected[i].path);
        assert.deepEqual(tensor.dataSync(), patternValues(expected[i]), expected[i].path);
        checked++;
      });
    }
    assert.equal(checked, RESNET50_PATTERN.length);
    assert.equal(checked, 53 * 2 + 53 * 4, "53 convolutions (kernel, bias) and 53 BatchNormalizations");
    model.dispose();
    await fs.rm(file);
  });
}

for (const file of SMALL_CNN_FILES) {
  test(`a real Keras 3 file of another network (${file.split("/").pop()}) is read and refused as ResNet-50 base weights`, async () => {
    const report = await inspectWeightsFile(file);
    assert.equal(report.usable, false);
    assert.equal(report.matchedLayers, 0);
    for (const layer of ["conv2d", "batch_normalization", "depthwise_conv2d", "dense"]) assert.ok(report.fileLayers.includes(layer), layer);
    const error = await loadBaseWeights(buildResNet50({ imageSize: 32, seed: 1 }), file).then(
      () => assert.fail("expected WEIGHTS_MISMATCH"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof AppError);
    assert.equal(error.code, "WEIGHTS_MISMATCH");
    assert.ok((error.details as { missing: string[] }).missing.length > 0);
  });
}
