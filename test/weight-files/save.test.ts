import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import h5wasm, { type Dataset, type File as H5File, type Group } from "h5wasm/node";
import yazl from "yazl";
import { selectBackend } from "../../src/backend/select-backend.js";
import { AppError } from "../../src/errors.js";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { buildTransferModel, type TransferModelOptions } from "../../src/network/transfer-model.js";
import {
  inspectWeightsFile,
  loadBaseWeights,
  loadModelWeights,
  loadTfjsModel,
  saveKerasH5,
  saveTfjs,
} from "../../src/weight-files/index.js";
import { openH5ForRead } from "../../src/weight-files/h5-file.js";
import { tempDir } from "../helpers/app.js";
import { assertSameWeights, zeroWeights } from "../helpers/weights.js";
import { KERAS2_FIXTURES, keras2Skip } from "../helpers/keras-fixtures.js";

await selectBackend("wasm");
await h5wasm.ready;

const dir = await tempDir("rf-save-");
after(() => fs.rm(dir, { recursive: true, force: true }));

const options = (seed: number): TransferModelOptions => ({
  imageSize: 32,
  numClasses: 3,
  head: { pooling: "flatten", denseUnits: 16, dropout: 0.5 },
  unfrozenLayers: 10,
  seed,
});
const trained = buildTransferModel(options(1));
const h5Path = path.join(dir, "model.h5");
const tfjsDir = path.join(dir, "tfjs");
await saveKerasH5(trained.model, h5Path);
await saveTfjs(trained.model, tfjsDir);
/** The target of every load below, zeroed before each. */
const copy = buildTransferModel(options(2));
const base = buildResNet50({ imageSize: 32, seed: 3 });

/** The HDF5 type of an attribute, without the string padding h5wasm cannot choose. */
function attrType(file: H5File, holder: string, name: string) {
  const entity = holder ? (file.get(holder) as Group) : file;
  const { type, vlen, cset, size } = entity.attrs[name].metadata;
  return { type, vlen, cset, fixedSize: vlen ? undefined : size > 0 };
}

/** Our file's attributes have the HDF5 types h5py gives them in a file real Keras wrote (`rename`: our holder -> theirs). */
async function assertAttributeTypesOf(realFile: string, rename: Record<string, string>): Promise<void> {
  // Through the engine's opener: h5wasm may open no other host file once the engine has loaded it.
  const ours = await openH5ForRead(h5Path);
  const real = await openH5ForRead(realFile);
  try {
    for (const [holder, name] of [
      ["", "backend"],
      ["", "keras_version"],
      ["", "model_config"],
      ["model_weights", "backend"],
      ["model_weights", "keras_version"],
      ["model_weights", "layer_names"],
      ["model_weights/conv1_conv", "weight_names"],
      ["model_weights/input_1", "weight_names"],
    ] as const) {
      const realHolder = holder.replace(/[^/]+$/, (last) => rename[last] ?? last);
      assert.deepEqual(attrType(ours, holder, name), attrType(real, realHolder, name), `${holder}@${name}`);
    }
  } finally {
    ours.close();
    real.close();
  }
  const [ourHead, realHead] = await Promise.all([fs.readFile(h5Path), fs.readFile(realFile)]).then((b) => b.map((x) => x[8]));
  assert.equal(ourHead, realHead, "same superblock version as h5py writes");
}

test("the Keras h5 file has the attribute types of a real Keras 2.4 model.save() file", { skip: keras2Skip }, async () => {
  await assertAttributeTypesOf(path.join(KERAS2_FIXTURES, "cifar10-resnet-v1.keras2.h5"), { conv1_conv: "conv2d" });
});

test("the Keras h5 file has the layout of a Keras 2 model.save() file", async () => {
  const ours = await openH5ForRead(h5Path);
  try {
    assert.equal(ours.attrs.backend.value, "tensorflow");
    assert.match(String(ours.attrs.keras_version.value), /^2\.\d+\.\d+$/);
    const layerNames = (ours.get("model_weights") as Group).attrs.layer_names.value as string[];
    assert.deepEqual(
      layerNames,
      trained.model.layers.map((l) => l.name),
    );
    assert.deepEqual((ours.get("model_weights/conv1_bn") as Group).attrs.weight_names.value, [
      "conv1_bn/gamma:0",
      "conv1_bn/beta:0",
      "conv1_bn/moving_mean:0",
      "conv1_bn/moving_variance:0",
    ]);
    const kernel = ours.get("model_weights/conv1_conv/conv1_conv/kernel:0") as Dataset;
    assert.deepEqual(kernel.shape, [7, 7, 3, 64]);
    assert.equal(kernel.dtype, "<f");
    assert.deepEqual(ours.get("model_weights/predictions/predictions/bias:0")!.constructor, h5wasm.Dataset);

    const config = JSON.parse(String(ours.attrs.model_config.value));
    assert.equal(config.class_name, "Functional");
    assert.deepEqual(
      config.config.layers.map((l: { name: string }) => l.name),
      trained.model.layers.map((l) => l.name),
    );
    const classOf = (name: string) => config.config.layers.find((l: { name: string }) => l.name === name).class_name;
    assert.equal(classOf("conv1_bn"), "BatchNormalization");
    assert.equal(classOf("dropout"), "Dropout");
    assert.equal(classOf("input_1"), "InputLayer");
  } finally {
    ours.close();
  }
  assert.deepEqual(
    (await fs.readdir(dir)).filter((f) => f.includes(".tmp")),
    [],
  );
});

test("Keras h5 round trip: every weight of base and head comes back bit for bit", async () => {
  zeroWeights(copy.model.layers);
  const report = await loadModelWeights(copy.model, h5Path);
  assert.equal(report.matchedLayers, 108);
  assertSameWeights(copy.model.layers, trained.model.layers);
});

test("a fine-tuned model file serves as base weights, its head ignored", async () => {
  zeroWeights(base.layers);
  const report = await loadBaseWeights(base, h5Path);
  assert.deepEqual(report.ignoredLayers, ["dense", "predictions"]);
  assertSameWeights(base.layers, trained.baseLayers);
});

test("TF.js round trip: loadTfjsModel and loadModelWeights give the same weights bit for bit", async () => {
  const files = await fs.readdir(tfjsDir);
  assert.ok(files.includes("model.json"));
  assert.ok(files.some((f) => /^group1-shard1of\d+\.bin$/.test(f)));
  const loaded = await loadTfjsModel(tfjsDir);
  assert.deepEqual(
    loaded.layers.map((l) => l.name),
    trained.model.layers.map((l) => l.name),
  );
  assertSameWeights(loaded.layers, trained.model.layers);
  loaded.dispose();
  zeroWeights(copy.model.layers);
  await loadModelWeights(copy.model, tfjsDir);
  assertSameWeights(copy.model.layers, trained.model.layers);
});

test("a zipped TF.js model is read as base weights", async () => {
  const zipPath = path.join(dir, "model.zip");
  const zip = new yazl.ZipFile();
  // shards stored, model.json deflated: both entry kinds are read, and the test stays fast
  for (const f of await fs.readdir(tfjsDir)) zip.addFile(path.join(tfjsDir, f), `my-model/${f}`, { compress: f === "model.json" });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(zipPath));
  const report = await inspectWeightsFile(zipPath);
  assert.equal(report.format, "tfjs");
  assert.equal(report.usable, true);
  assert.deepEqual(report.ignoredLayers, ["dense", "predictions"]);
  zeroWeights(base.layers);
  await loadBaseWeights(base, zipPath);
  assertSameWeights(base.layers, trained.baseLayers);
});

test("a TF.js model with a truncated shard is WEIGHTS_UNREADABLE", async () => {
  const broken = path.join(dir, "broken");
  await fs.cp(tfjsDir, broken, { recursive: true });
  const shards = (await fs.readdir(broken)).filter((f) => f.endsWith(".bin")).length;
  await fs.truncate(path.join(broken, `group1-shard1of${shards}.bin`), 100);
  await assert.rejects(inspectWeightsFile(broken), (e: unknown) => e instanceof AppError && e.code === "WEIGHTS_UNREADABLE");
  await assert.rejects(loadTfjsModel(broken), (e: unknown) => e instanceof AppError && e.code === "WEIGHTS_UNREADABLE");
});
