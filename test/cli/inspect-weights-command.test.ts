import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { selectBackend } from "../../src/backend/select-backend.js";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { tempDir } from "../helpers/app.js";
import { assertCliError, runCli as cli } from "../helpers/cli.js";
import { writeKerasWeightsFile } from "../helpers/keras-h5.js";
import { SMALL_CNN_FILES } from "../helpers/keras-fixtures.js";

await selectBackend("wasm");
const dir = await tempDir("rf-cli-");
after(() => fs.rm(dir, { recursive: true, force: true }));

function assertNoStack(output: string): void {
  assert.doesNotMatch(output, /\n\s+at .+:\d+:\d+/);
}

test("inspect-weights accepts a Keras ResNet-50 weights file with an ImageNet top: exit 0", async () => {
  const file = path.join(dir, "good.h5");
  const model = buildResNet50({ imageSize: 32, seed: 1 });
  await writeKerasWeightsFile(model, file, { includeTop: true });
  model.dispose();
  const { code, stdout, stderr } = await cli("inspect-weights", file);
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout);
  assert.equal(report.format, "keras-h5");
  assert.equal(report.usable, true);
  assert.equal(report.matchedLayers, 106);
  assert.deepEqual(report.ignoredLayers, ["predictions"]);
  assert.deepEqual([report.missing, report.unexpected, report.shapeMismatches], [[], [], []]);
});

test("inspect-weights refuses a real Keras file of another network: exit 2, what does not fit", async () => {
  const { code, stdout, stderr } = await cli("inspect-weights", SMALL_CNN_FILES[0]);
  assert.equal(code, 2, stderr);
  const report = JSON.parse(stdout);
  assert.equal(report.usable, false);
  assert.ok(report.fileLayers.includes("depthwise_conv2d"));
  assert.ok(report.missing.length > 0 && report.missing.length <= 20);
  assert.ok(report.shapeMismatches.length > 0 && report.shapeMismatches.length <= 20);
  assertNoStack(stdout + stderr);
});

test("inspect-weights on an unreadable file: exit 2 and a coded JSON error, never a stack", async () => {
  const file = path.join(dir, "garbage.h5");
  await fs.writeFile(file, Buffer.from("\x89HDF\r\n\x1a\nthen nothing useful", "latin1"));
  const error = assertCliError(await cli("inspect-weights", file), "WEIGHTS_UNREADABLE");
  assert.match(error.message, /garbage\.h5/);
});

test("inspect-weights without a file is a usage error", async () => {
  const error = assertCliError(await cli("inspect-weights"), "VALIDATION_FAILED");
  assert.match(error.message, /usage: inspect-weights FILE/);
});
