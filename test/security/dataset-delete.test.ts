// Deleting a dataset deletes everything derived from it: its decoded-image
// cache and every frozen-trunk feature cache (those live with the shared
// caches, outside the dataset's folder). A dataset a job still uses is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { build } from "../helpers/app.js";
import { classFolders, makeZip } from "../helpers/dataset-archives.js";
import { filesUnder, uploadArchive } from "../helpers/dataset-upload.js";
import { assertStillServing, errorOf } from "../helpers/security.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { readDatasetIndex } from "../../src/datasets/dataset-store.js";
import { openDecodedCache, readDecodedRange } from "../../src/datasets/decoded-cache.js";
import { ensureFeatureCache } from "../../src/training/feature-cache.js";
import type { TrunkRunner } from "../../src/training/trunk-pool.js";

const IMAGE_SIZE = 32;
const CUT = [{ layer: "conv5_block3_2_relu", shape: [1, 1, 4] }];

/** Stands in for the trunk: the feature cache's bytes are what is under test, not their values. */
const runner: TrunkRunner = {
  parallelism: 1,
  async run(_pixels, count) {
    return [new Float32Array(count * 4).fill(1)];
  },
  async close() {},
};

test("DELETE /v1/datasets/{id} removes the decoded-image cache and the feature caches; refused while a job uses it", async (t) => {
  let inUse = true;
  const { app, config } = await build(t, {}, { isDatasetInUse: async () => inUse });
  const storage = createLocalStorage(config.dataDir);
  const created = await uploadArchive(app, await makeZip(await classFolders(["cat", "dog"], 3)));
  assert.equal(created.statusCode, 201, created.body);
  const id = created.json().id as string;

  // What a worker leaves after training on it.
  const index = (await readDatasetIndex(storage, "default", id))!;
  const decoded = await openDecodedCache(storage, "default", id, index, IMAGE_SIZE);
  for (const dtype of ["float32", "float16"] as const) {
    await ensureFeatureCache({
      storage,
      identity: {
        tenant: "default",
        datasetId: id,
        imageSize: IMAGE_SIZE,
        trunkFingerprint: "f".repeat(64),
        engine: "tfjs",
        cut: CUT,
        dtype,
      },
      rows: index.images.length,
      readPixels: async (first, count) => readDecodedRange(decoded, first, count),
      runner,
      budgetBytes: 1024 ** 3,
    });
  }
  const mentions = async () => (await filesUnder(config.dataDir)).filter((f) => f.includes(id));
  assert.ok(
    (await mentions()).some((f) => f.includes("decoded-32")),
    "decoded cache written",
  );
  assert.equal(
    (await mentions()).filter((f) => f.startsWith(path.join("cache", "features"))).length,
    4,
    "two feature caches (data + meta)",
  );

  const busy = await app.inject({ method: "DELETE", url: `/v1/datasets/${id}` });
  assert.equal(busy.statusCode, 409);
  assert.equal(errorOf(busy).code, "DATASET_IN_USE");
  assert.ok((await mentions()).length > 0, "nothing deleted while in use");

  inUse = false;
  const deleted = await app.inject({ method: "DELETE", url: `/v1/datasets/${id}` });
  assert.equal(deleted.statusCode, 204);
  assert.deepEqual(await mentions(), [], "no file derived from the dataset is left");
  assert.equal((await app.inject({ method: "GET", url: `/v1/datasets/${id}` })).statusCode, 404);
  await assertStillServing(app, config);
});
