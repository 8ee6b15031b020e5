import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { datasetKeys, getDataset, readDatasetIndex } from "../../src/datasets/dataset-store.js";
import { splitCounts, splitIndex } from "../../src/datasets/split.js";
import { decodeImageForModel, prepareTrainingData } from "../../src/datasets/training-data.js";
import type { BatchSource } from "../../src/datasets/batch-source.js";
import { build } from "../helpers/app.js";
import { classFolders, makeZip, makeTar } from "../helpers/dataset-archives.js";
import { uploadArchive } from "../helpers/dataset-upload.js";

const TENANT = "default";

async function dataset(t: Parameters<typeof build>[0], entries: Awaited<ReturnType<typeof classFolders>>) {
  const { app, config } = await build(t);
  const res = await uploadArchive(app, await makeZip(entries));
  assert.equal(res.statusCode, 201, res.body);
  return { storage: createLocalStorage(config.dataDir), id: res.json().id as string };
}

async function collect(source: BatchSource, epoch: number): Promise<{ xs: Float32Array[]; labels: number[] }> {
  const xs: Float32Array[] = [];
  const labels: number[] = [];
  for await (const batch of source.batches(epoch)) {
    const [n, ...rest] = batch.xs.shape;
    const per = rest.reduce((a, b) => a * b, 1);
    const data = await batch.xs.data();
    for (let i = 0; i < n; i++) xs.push(Float32Array.from(data.subarray(i * per, (i + 1) * per)));
    labels.push(...(await batch.ys.argMax(1).data()));
    tf.dispose([batch.xs, batch.ys]);
  }
  return { xs, labels };
}

test.before(async () => {
  await selectBackend("wasm");
});

test("the random split is stratified, seeded and matches splitCounts", async (t) => {
  const { storage, id } = await dataset(t, [...(await classFolders(["a"], 10)), ...(await classFolders(["b"], 5, "", "jpeg"))]);
  const record = (await getDataset(storage, TENANT, id))!;
  const index = (await readDatasetIndex(storage, TENANT, id))!;
  const split = splitIndex(index, false, ["a", "b"], 0.2, 7);
  const classOf = (rows: number[]) => rows.map((r) => index.images[r].class);
  assert.deepEqual(classOf(split.validation).sort(), ["a", "a", "b"]);
  assert.equal(split.train.length, 12);
  assert.deepEqual(
    [...split.train, ...split.validation].sort((x, y) => x - y),
    index.images.map((_, i) => i),
  );
  assert.deepEqual(splitIndex(index, false, ["a", "b"], 0.2, 7), split, "same seed, same split");
  const others = [1, 2, 3].map((seed) => splitIndex(index, false, ["a", "b"], 0.2, seed).validation);
  assert.ok(
    others.some((v) => v.join() !== split.validation.join()),
    "another seed gives another split",
  );
  assert.deepEqual(splitCounts(record, ["a", "b"], 0.2), { a: { train: 8, validation: 2 }, b: { train: 4, validation: 1 } });
  assert.deepEqual(splitCounts(record, ["b"], 0), { b: { train: 5, validation: 0 } });
});

test("a cached batch equals decoding the image directly; labels follow the requested class order", async (t) => {
  const { storage, id } = await dataset(t, [
    ...(await classFolders(["a", "b"], 3, "", "jpeg")),
    ...(await classFolders(["c"], 2, "", "webp")),
  ]);
  const classes = ["c", "a"];
  const data = await prepareTrainingData({
    storage,
    tenant: TENANT,
    datasetId: id,
    imageSize: 16,
    classes,
    validationSplit: 0.5,
    seed: 3,
    batchSize: 2,
  });
  assert.deepEqual(data.classes, classes);
  assert.equal(data.trainCount + data.validationCount, 5);
  assert.equal(data.validation!.batchCount, Math.ceil(data.validationCount / 2));

  const index = (await readDatasetIndex(storage, TENANT, id))!;
  const rows = splitIndex(index, false, classes, 0.5, 3).validation;
  const { xs, labels } = await collect(data.validation!, 0);
  assert.equal(xs.length, rows.length);
  for (const [i, row] of rows.entries()) {
    const bytes = await storage.get(datasetKeys(TENANT, id).file(index.images[row].file));
    const direct = await decodeImageForModel(bytes, 16);
    assert.deepEqual(direct.shape, [16, 16, 3]);
    assert.deepEqual(xs[i], await direct.data());
    direct.dispose();
    assert.equal(labels[i], classes.indexOf(index.images[row].class));
  }
});

test("training batches are reshuffled per epoch from the seed, each image once per epoch", async (t) => {
  const { storage, id } = await dataset(t, await classFolders(["a", "b"], 4));
  const options = { storage, tenant: TENANT, datasetId: id, imageSize: 8, validationSplit: 0, seed: 11, batchSize: 3 };
  const data = await prepareTrainingData(options);
  assert.equal(data.validation, null);
  assert.equal(data.trainCount, 8);
  assert.equal(data.train.batchCount, 3);
  const key = (x: Float32Array) => Array.from(x.subarray(0, 12)).join();
  const epoch0 = await collect(data.train, 0);
  const again = await collect((await prepareTrainingData(options)).train, 0);
  const epoch1 = await collect(data.train, 1);
  assert.deepEqual(again.xs.map(key), epoch0.xs.map(key), "same seed and epoch, same order");
  assert.notDeepEqual(epoch1.xs.map(key), epoch0.xs.map(key), "another epoch, another order");
  assert.deepEqual([...epoch1.xs.map(key)].sort(), [...epoch0.xs.map(key)].sort());
  assert.equal(new Set(epoch0.xs.map(key)).size, 8);
  const decoded = await storage.stat(datasetKeys(TENANT, id).decoded(8));
  assert.equal(decoded!.size, 8 * 8 * 8 * 3, "one uint8 row per image");
});

test("a predefined train/val split is used as given", async (t) => {
  const { app, config } = await build(t);
  // val/ in another format: the same pixels as train/ in the same format would be duplicates, kept in train only.
  const entries = [...(await classFolders(["x", "y"], 3, "train/")), ...(await classFolders(["x", "y"], 1, "val/", "jpeg"))];
  const id = (await uploadArchive(app, await makeTar(entries))).json().id;
  const storage = createLocalStorage(config.dataDir);
  const record = (await getDataset(storage, TENANT, id))!;
  assert.deepEqual(splitCounts(record, ["x", "y"], 0.9), { x: { train: 3, validation: 1 }, y: { train: 3, validation: 1 } });
  const data = await prepareTrainingData({
    storage,
    tenant: TENANT,
    datasetId: id,
    imageSize: 8,
    validationSplit: 0.9,
    seed: 1,
    batchSize: 4,
  });
  assert.equal(data.trainCount, 6);
  assert.equal(data.validationCount, 2);
  assert.equal(data.validation!.size, 2);
  await assert.rejects(
    prepareTrainingData({
      storage,
      tenant: TENANT,
      datasetId: id,
      imageSize: 8,
      classes: ["x", "nope"],
      validationSplit: 0,
      seed: 1,
      batchSize: 4,
    }),
    { code: "VALIDATION_FAILED" },
  );
});
