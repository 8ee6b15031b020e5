import { test } from "node:test";
import assert from "node:assert/strict";
import { KERAS_RESNET50_LAYER_NAMES } from "../network/keras-resnet50-layer-names.js";
import { assertCliError, runCliWithEnv } from "../helpers/cli.js";

const cli = (args: readonly string[], env: Record<string, string> = {}) => runCliWithEnv(args, env);
const assertUsageError = assertCliError;

test("summary lists the 175 layers with shapes, parameters and the trainable flags of --unfrozen-layers", {
  timeout: 120_000,
}, async () => {
  const run = await cli(["summary", "--image-size", "32", "--unfrozen-layers", "10"]);
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout);
  assert.equal(summary.imageSize, 32);
  assert.equal(summary.unfrozenLayers, 10);
  assert.equal(summary.backend, "wasm");
  assert.deepEqual(
    summary.layers.map((l: { name: string }) => l.name),
    KERAS_RESNET50_LAYER_NAMES,
  );
  assert.deepEqual(summary.layers[0], {
    index: 0,
    name: "input_1",
    class: "InputLayer",
    outputShape: [null, 32, 32, 3],
    params: 0,
    trainable: false,
  });
  assert.deepEqual(summary.layers[2], {
    index: 2,
    name: "conv1_conv",
    class: "Conv2D",
    outputShape: [null, 16, 16, 64],
    params: 7 * 7 * 3 * 64 + 64,
    trainable: false,
  });
  assert.deepEqual(summary.layers[174], {
    index: 174,
    name: "conv5_block3_out",
    class: "Activation",
    outputShape: [null, 1, 1, 2048],
    params: 0,
    trainable: true,
  });
  assert.deepEqual(
    summary.layers.filter((l: { trainable: boolean }) => l.trainable).map((l: { name: string }) => l.name),
    KERAS_RESNET50_LAYER_NAMES.slice(-10),
  );
  // conv5_block3: 1x1 512, 3x3 512, 1x1 2048 convs with biases, plus gamma and beta of its three BNs
  const trainableParams = 2048 * 512 + 512 + 9 * 512 * 512 + 512 + 512 * 2048 + 2048 + 2 * (512 + 512 + 2048);
  assert.deepEqual(summary.totals, {
    layers: 175,
    trainableLayers: 10,
    params: 23_587_712,
    trainableParams,
    nonTrainableParams: 23_587_712 - trainableParams,
  });
});

test("summary defaults to Keras' 224 px input with the whole base frozen", { timeout: 120_000 }, async () => {
  const run = await cli(["summary"]);
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout);
  assert.equal(summary.imageSize, 224);
  assert.deepEqual(summary.layers[174].outputShape, [null, 7, 7, 2048]);
  assert.equal(summary.totals.trainableLayers, 0);
  assert.equal(summary.totals.trainableParams, 0);
});

test("help lists the commands on stdout", { timeout: 120_000 }, async () => {
  const run = await cli(["--help"]);
  assert.equal(run.code, 0);
  const help = JSON.parse(run.stdout);
  assert.ok(help.commands.some((c: { usage: string }) => c.usage.startsWith("summary ")));
});

test("bad arguments exit 2 with a one-line coded JSON error quoting the value, never a stack trace", { timeout: 120_000 }, async () => {
  const cases = [
    [[], "VALIDATION_FAILED", /no command given/],
    [["summary", "--image-size", "big"], "VALIDATION_FAILED", /"big"/],
    [["summary", "--colour", "red"], "VALIDATION_FAILED", /--colour/],
    [["summary", "--image-size", "16"], "INVALID_MODEL_OPTIONS", /got 16/],
    [["summary", "--unfrozen-layers", "176"], "INVALID_MODEL_OPTIONS", /got 176/],
    [["summary", "--image-size", "32"], "VALIDATION_FAILED", /TFJS_BACKEND/, { TFJS_BACKEND: "gpu-please" }],
  ] as const;
  // Concurrently: each child spends most of its time loading modules.
  const runs = await Promise.all(cases.map(([args, , , env]) => cli(args, env)));
  runs.forEach((run, i) => {
    const [args, code, message] = cases[i];
    assert.match(assertUsageError(run, code).message, message, args.join(" "));
  });
});
