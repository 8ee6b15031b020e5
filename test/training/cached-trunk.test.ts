import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import * as tf from "@tensorflow/tfjs";
import { rgbToTensor } from "../../src/datasets/image-decode.js";
import { rowBatchSource } from "../../src/datasets/row-batch-source.js";
import { preprocessInput } from "../../src/network/preprocess.js";
import { buildTransferModel, type TransferModelOptions } from "../../src/network/transfer-model.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { prepareCachedTrunk } from "../../src/training/cached-trunk.js";
import { train } from "../../src/training/train.js";
import { tempDir } from "../helpers/app.js";
import { twoClassImages } from "../helpers/generated-images.js";
import { selectTrainingWasm } from "../helpers/backends.js";

const SIZE = 32;
const MODEL: TransferModelOptions = {
  imageSize: SIZE,
  numClasses: 2,
  head: { pooling: "flatten", denseUnits: 8, dropout: 0 },
  unfrozenLayers: 10,
  seed: 9,
};

before(async () => {
  await selectTrainingWasm();
});

/** The generated images as a table of uint8 RGB rows, like the decoded-image cache. */
function pixelTable(perClass: number) {
  const { xs, ys, labels } = twoClassImages({ perClass, size: SIZE, seed: 4 });
  const pixels = Uint8Array.from(xs.dataSync());
  tf.dispose([xs, ys]);
  const rowBytes = SIZE * SIZE * 3;
  const read = (rows: number[]) => {
    const out = new Uint8Array(rows.length * rowBytes);
    rows.forEach((r, i) => {
      out.set(pixels.subarray(r * rowBytes, (r + 1) * rowBytes), i * rowBytes);
    });
    return out;
  };
  return { labels, rows: labels.length, read };
}

function weightsOf(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, (w.read().dataSync() as Float32Array).slice()]));
}

async function withStorage<T>(fn: (storage: ReturnType<typeof createLocalStorage>, dir: string) => Promise<T>): Promise<T> {
  const dir = await tempDir("rf-features-");
  try {
    return await fn(createLocalStorage(dir), dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

{
  const threads = 2;
  test("training the tail on cached trunk features (2 trunk threads) gives the weights of training the whole model", async () => {
    const table = pixelTable(6);
    const trainRows = Array.from({ length: table.rows }, (_, i) => i);
    const sourceOpts = { rows: trainRows, labels: table.labels, numClasses: 2, batchSize: 4, seed: 3, shuffle: true };

    // Without the cache: images through the whole model every epoch.
    const plain = buildTransferModel(MODEL);
    const initial = weightsOf(plain.model);
    const images = rowBatchSource({
      ...sourceOpts,
      read: async (rows) => tf.tidy(() => preprocessInput(rgbToTensor(table.read(rows), rows.length, SIZE))),
    });
    const a = await train({ model: plain.model, learningRate: 1e-3, epochs: 2, train: images, seed: 5 });
    await a.stepper.dispose();

    // With the cache: the trunk once per image, then the tail only.
    const cached = buildTransferModel(MODEL);
    await withStorage(async (storage) => {
      const trunk = await prepareCachedTrunk({
        tm: cached,
        modelOptions: MODEL,
        storage,
        tenant: "t",
        datasetId: "ds",
        rows: table.rows,
        readPixels: async (first, count) => table.read(Array.from({ length: count }, (_, i) => first + i)),
        dtype: "float32",
        budgetBytes: 1e9,
        backend: "wasm",
        threads,
      });
      assert.ok(trunk);
      assert.equal(trunk.cache.built, true);
      const features = rowBatchSource({ ...sourceOpts, read: (rows) => trunk.reader.read(rows) });
      const b = await train({ model: trunk.tail, learningRate: 1e-3, epochs: 2, train: features, seed: 5 });
      await b.stepper.dispose();
      await trunk.close();
    });

    const expected = weightsOf(plain.model);
    const actual = weightsOf(cached.model);
    let worst = 0;
    let changed = 0;
    for (const [name, values] of expected) {
      const other = actual.get(name)!;
      if (values.some((v, i) => v !== initial.get(name)![i])) changed++;
      values.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - other[i]));
      });
    }
    for (const model of [plain.model, cached.model]) model.dispose();
    assert.ok(changed > 0, "training changed no weight");
    assert.ok(worst <= 1e-5, `largest weight difference ${worst}`);
  });
}
