// The feature cache keeps one entry per engine: ONNX Runtime's features agree
// with TF.js' within 1e-4, not bit for bit, so a job never reads features
// another engine computed.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import type { EngineName } from "../../../src/engine/engine.js";
import { buildTransferModel, type TransferModelOptions } from "../../../src/network/transfer-model.js";
import { createLocalStorage } from "../../../src/storage/local-storage.js";
import { prepareCachedTrunk } from "../../../src/training/cached-trunk.js";
import { tempDir } from "../../helpers/app.js";
import { relativeError, seededValues, selectTrainingWasm } from "../../helpers/backends.js";

before(async () => {
  await selectTrainingWasm();
});

const MODEL: TransferModelOptions = {
  imageSize: 32,
  numClasses: 2,
  head: { pooling: "avg", denseUnits: 4, dropout: 0 },
  unfrozenLayers: 10,
  seed: 41,
};
const ROWS = 4;
const ROW_BYTES = 32 * 32 * 3;
const pixels = Uint8Array.from(seededValues(ROWS * ROW_BYTES, 3), (v) => Math.floor((v + 1) * 127.9));

test("each engine computes and keeps its own features for the same dataset and trunk, and they agree within 1e-4", async (t) => {
  const dir = await tempDir("rf-engine-cache-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const storage = createLocalStorage(dir);
  const tm = buildTransferModel(MODEL);
  t.after(() => tm.model.dispose());
  const open = (engine: EngineName) =>
    prepareCachedTrunk({
      tm,
      modelOptions: MODEL,
      storage,
      tenant: "t",
      datasetId: "ds",
      rows: ROWS,
      readPixels: async (first, count) => pixels.slice(first * ROW_BYTES, (first + count) * ROW_BYTES),
      dtype: "float32",
      budgetBytes: 1e9,
      backend: "wasm",
      engine,
      threads: 1,
    });
  const features: Float32Array[] = [];
  for (const [engine, built] of [
    ["tfjs", true],
    ["onnxruntime", true],
    ["onnxruntime", false],
    ["tfjs", false],
  ] as const) {
    const trunk = (await open(engine))!;
    assert.equal(trunk.cache.built, built, `${engine}: built`);
    const [read] = await trunk.reader.read([0, 1, 2, 3]);
    features.push(read.dataSync() as Float32Array);
    read.dispose();
    await trunk.close();
  }
  assert.ok(relativeError(features[1], features[0]) <= 1e-4);
  assert.deepEqual(features[2], features[1]);
  assert.deepEqual(features[3], features[0]);
});
