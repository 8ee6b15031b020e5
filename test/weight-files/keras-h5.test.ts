import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { selectBackend } from "../../src/backend/select-backend.js";
import { AppError } from "../../src/errors.js";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { inspectWeightsFile, loadBaseWeights, openWeightsFile } from "../../src/weight-files/index.js";
import { tempDir } from "../helpers/app.js";
import { writeKeras3WeightsFile, writeKerasWeightsFile } from "../helpers/keras-h5.js";
import { KERAS2_FIXTURES, keras2Skip } from "../helpers/keras-fixtures.js";
import { assertDifferentWeights, assertSameWeights, weightBytes } from "../helpers/weights.js";

await selectBackend("wasm");

const dir = await tempDir("rf-weights-");
after(() => fs.rm(dir, { recursive: true, force: true }));

const source = buildResNet50({ imageSize: 32, seed: 1 });
const target = buildResNet50({ imageSize: 32, seed: 2 });
assertDifferentWeights(target.layers, source.layers);

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<AppError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof AppError, `expected an AppError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

test("a Keras save_weights file of ResNet-50 loads bit for bit", async () => {
  const file = path.join(dir, "plain.h5");
  await writeKerasWeightsFile(source, file);
  const report = await loadBaseWeights(target, file);
  assert.equal(report.format, "keras-h5");
  assert.equal(report.usable, true);
  assert.equal(report.matchedLayers, 106);
  assert.deepEqual(report.ignoredLayers, []);
  assertSameWeights(target.layers, source.layers);
});

test("layers with other names load by position among weighted layers, as Keras does", async () => {
  const file = path.join(dir, "renamed.h5");
  await writeKerasWeightsFile(source, file, { rename: (n) => `old_${n}` });
  const fresh = buildResNet50({ imageSize: 32, seed: 3 });
  const report = await loadBaseWeights(fresh, file);
  assert.equal(report.matchedLayers, 106);
  assertSameWeights(fresh.layers, source.layers);
  fresh.dispose();
});

test("an include_top file loads its base and reports the top as ignored", async () => {
  const file = path.join(dir, "top.h5");
  await writeKerasWeightsFile(source, file, { includeTop: true });
  const report = await inspectWeightsFile(file);
  assert.equal(report.usable, true);
  assert.deepEqual(report.ignoredLayers, ["predictions"]);
  assert.equal(report.fileLayers.length, 107);
  const renamed = path.join(dir, "top-renamed.h5");
  await writeKerasWeightsFile(source, renamed, { includeTop: true, rename: (n) => `x_${n}` });
  const positional = await inspectWeightsFile(renamed);
  assert.equal(positional.usable, true);
  assert.deepEqual(positional.ignoredLayers, ["predictions"]);
});

test("split layer_names attributes, weight names without :0 and a nested base are read", async () => {
  const file = path.join(dir, "variants.h5");
  await writeKerasWeightsFile(source, file, { layerNamesLimit: 512, withoutColonZero: true });
  const opened = await openWeightsFile(file);
  assert.equal(opened.layers.length, 106);
  assert.equal(opened.layers[0].weights[0].name, "conv1_conv/kernel");
  opened.close();
  assert.equal((await inspectWeightsFile(file)).usable, true);
  const nested = path.join(dir, "nested.h5");
  await writeKerasWeightsFile(source, nested, { nestAs: "resnet50" });
  const report = await inspectWeightsFile(nested);
  assert.equal(report.usable, true);
  assert.equal(report.fileLayers[0], "conv1_conv");
});

test("a missing layer is named in WEIGHTS_MISMATCH and the model is left as it was", async () => {
  const file = path.join(dir, "dropped.h5");
  await writeKerasWeightsFile(source, file, { drop: ["conv3_block2_2_conv"] });
  const fresh = buildResNet50({ imageSize: 32, seed: 4 });
  const before = weightBytes(fresh.layers);
  const error = await rejectsWith(loadBaseWeights(fresh, file), "WEIGHTS_MISMATCH");
  assert.equal(error.statusCode, 422);
  const details = error.details as { missing: string[]; unexpected: string[]; shapeMismatches: unknown[] };
  assert.deepEqual(details.missing, ["conv3_block2_2_conv"]);
  assert.deepEqual(details.unexpected, []);
  assert.deepEqual(details.shapeMismatches, []);
  const after = weightBytes(fresh.layers);
  assert.ok(
    [...before].every(([k, v]) => after.get(k)!.equals(v)),
    "no weight may change",
  );
  fresh.dispose();
});

test("a weight of the wrong shape is reported with both shapes", async () => {
  const file = path.join(dir, "reshaped.h5");
  await writeKerasWeightsFile(source, file, { reshape: { layer: "conv5_block3_3_conv", weight: 0, shape: [1, 1, 512, 1024] } });
  const report = await inspectWeightsFile(file);
  assert.equal(report.usable, false);
  assert.deepEqual(report.shapeMismatches, [
    { layer: "conv5_block3_3_conv", weight: "kernel", expected: [1, 1, 512, 2048], found: [1, 1, 512, 1024] },
  ]);
});

test("a Keras 3 .weights.h5 file loads by class key, extra head layers ignored", async () => {
  const file = path.join(dir, "k3.weights.h5");
  await writeKeras3WeightsFile(source, file);
  const fresh = buildResNet50({ imageSize: 32, seed: 5 });
  const report = await loadBaseWeights(fresh, file);
  assert.equal(report.format, "keras3");
  assert.equal(report.matchedLayers, 106);
  assertSameWeights(fresh.layers, source.layers);
  fresh.dispose();
});

for (const name of ["cifar10-resnet-v1.keras2.h5", "vww-mobilenet-v1-96.keras2.h5"]) {
  test(`the real Keras 2.4 file ${name} is read and refused as ResNet-50 base weights`, { skip: keras2Skip }, async () => {
    const file = path.join(KERAS2_FIXTURES, name);
    const report = await inspectWeightsFile(file);
    assert.equal(report.format, "keras-h5");
    assert.equal(report.usable, false);
    assert.equal(report.fileLayers[0], "conv2d");
    assert.ok(report.fileLayers.includes("batch_normalization"));
    assert.ok(report.fileLayers.includes("dense"));
    assert.ok(report.counts.missing > 0 && report.counts.shapeMismatches > 0);

    const error = await rejectsWith(loadBaseWeights(target, file), "WEIGHTS_MISMATCH");
    assert.equal(error.statusCode, 422);
    const details = error.details as { missing: string[]; shapeMismatches: { layer: string; fileLayer: string }[] };
    assert.ok(details.missing.length > 0 && details.missing.length <= 20);
    assert.ok(details.shapeMismatches.length > 0 && details.shapeMismatches.length <= 20);
    assert.deepEqual(details.shapeMismatches[0], {
      layer: "conv1_conv",
      fileLayer: "conv2d",
      weight: "kernel",
      expected: [7, 7, 3, 64],
      found: [3, 3, 3, name.startsWith("cifar") ? 16 : 8],
    });
    assert.doesNotMatch(JSON.stringify(error.toJSON()), /\n\s+at /);
  });
}

test("unreadable files fail with WEIGHTS_UNREADABLE", async () => {
  const text = path.join(dir, "notes.txt");
  await fs.writeFile(text, "not weights");
  await rejectsWith(inspectWeightsFile(text), "WEIGHTS_UNREADABLE");
  await rejectsWith(inspectWeightsFile(path.join(dir, "absent.h5")), "WEIGHTS_UNREADABLE");

  const truncated = path.join(dir, "truncated.h5");
  const whole = await fs.readFile(path.join(dir, "plain.h5"));
  await fs.writeFile(truncated, whole.subarray(0, 300_000));
  const error = await rejectsWith(loadBaseWeights(target, truncated), "WEIGHTS_UNREADABLE");
  assert.match(error.message, /truncated\.h5/);

  const empty = path.join(dir, "empty.h5");
  await writeKerasWeightsFile(source, empty, { drop: source.layers.map((l) => l.name) });
  const report = await inspectWeightsFile(empty);
  assert.equal(report.usable, false);
  assert.equal(report.counts.missing, 106);
});
