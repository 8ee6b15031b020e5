// TF.js weights zips are archives from a client: held to the dataset archives' limits (entries,
// uncompressed bytes, compression ratio of each entry and of the whole), model.json capped, shards
// unpacked one at a time; refused with a code, the API unharmed, nothing left behind.
import { test } from "node:test";
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { selectBackend } from "../../src/backend/select-backend.js";
import { loadModelWeights, saveTfjs } from "../../src/weight-files/index.js";
import { MAX_MODEL_JSON_BYTES } from "../../src/weight-files/tfjs-format.js";
import { build, tempDir } from "../helpers/app.js";
import { makeZip, multipartBody } from "../helpers/dataset-archives.js";
import { filesUnder } from "../helpers/dataset-upload.js";
import { smallModel } from "../helpers/small-model.js";
import { assertSameWeights } from "../helpers/weights.js";
import { weightsZipLargeModelJson, weightsZipModelJsonBomb, weightsZipShardBomb } from "./hostile-inputs.js";

await selectBackend("wasm");

const MiB = 1024 ** 2;

function uploadWeights(app: FastifyInstance, zip: Buffer) {
  const body = multipartBody(zip, {}, "model.zip");
  return app.inject({ method: "POST", url: "/v1/weights", payload: body.payload, headers: body.headers });
}

async function assertReadyAndClean(app: FastifyInstance, dataDir: string): Promise<void> {
  assert.equal((await app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
  const left = (await filesUnder(dataDir)).filter((f) => f.startsWith(".tmp/") || f.startsWith("tenants/"));
  assert.deepEqual(left, [], "nothing left in DATA_DIR/.tmp or storage");
}

/** Sends `zip` and returns the error and how much the process's RSS grew meanwhile. */
async function refused(app: FastifyInstance, zip: Buffer, status: number, code: string) {
  global.gc?.();
  const before = process.memoryUsage().rss;
  const res = await uploadWeights(app, zip);
  const grown = process.memoryUsage().rss - before;
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json().error.code, code, res.body);
  return { error: res.json().error, grown };
}

test("a model.json deflate bomb is 413 ARCHIVE_COMPRESSION_RATIO from its declared sizes: RSS stays flat", async (t) => {
  const { app, config } = await build(t);
  // ~250 KB on the wire, 256 MB of model.json: inflated and parsed whole it grew the API by gigabytes.
  const bomb = await weightsZipModelJsonBomb(256 * MiB);
  assert.ok(bomb.length < MiB);
  const { error, grown } = await refused(app, bomb, 413, "ARCHIVE_COMPRESSION_RATIO");
  assert.equal(error.details.limit, config.maxCompressionRatio);
  // Nothing is inflated: the bound leaves room for the upload's own bytes and GC timing.
  assert.ok(grown < 64 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB`);
  await assertReadyAndClean(app, config.dataDir);
});

test("a weights shard bomb is refused the same way", async (t) => {
  const { app, config } = await build(t);
  const { grown } = await refused(app, await weightsZipShardBomb(256 * MiB), 413, "ARCHIVE_COMPRESSION_RATIO");
  assert.ok(grown < 64 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB`);
  await assertReadyAndClean(app, config.dataDir);
});

test("a model.json over the cap is refused even when it compresses like text; entries and totals have the archives' limits", async (t) => {
  const { app, config } = await build(t, { MAX_ARCHIVE_ENTRIES: "10", MAX_UNCOMPRESSED_BYTES: String(40 * MiB) });
  const large = await refused(app, await weightsZipLargeModelJson(MAX_MODEL_JSON_BYTES + 1024), 422, "WEIGHTS_UNREADABLE");
  assert.match(large.error.details.reason, /model\.json/);
  const many = await makeZip(Array.from({ length: 11 }, (_, i) => ({ path: `f${i}.bin`, data: Buffer.from([i]) })));
  await refused(app, many, 413, "ARCHIVE_TOO_MANY_ENTRIES");
  const big = await makeZip([1, 2, 3].map((i) => ({ path: `shard${i}.bin`, data: randomBytes(15 * MiB) })));
  await refused(app, big, 413, "ARCHIVE_TOO_LARGE_UNCOMPRESSED");
  await assertReadyAndClean(app, config.dataDir);
});

test("a zipped TF.js model with several shards still loads bit for bit, shard by shard", async (t) => {
  const dir = await tempDir("rf-wzip-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const model = smallModel(5);
  // Three shards of a few bytes each: every weight range crosses shard boundaries.
  await saveTfjs(model, path.join(dir, "model"));
  const modelJson = JSON.parse(await fs.readFile(path.join(dir, "model", "model.json"), "utf8"));
  const data = await fs.readFile(path.join(dir, "model", modelJson.weightsManifest[0].paths[0]));
  const third = Math.ceil(data.length / 3);
  const shards = [0, 1, 2].map((i) => data.subarray(i * third, (i + 1) * third));
  modelJson.weightsManifest[0].paths = ["s1.bin", "s2.bin", "s3.bin"];
  const zip = await makeZip([
    { path: "model.json", data: Buffer.from(JSON.stringify(modelJson)) },
    ...shards.map((s, i) => ({ path: `s${i + 1}.bin`, data: Buffer.from(s) })),
  ]);
  const zipPath = path.join(dir, "model.zip");
  await fs.writeFile(zipPath, zip);
  const target = smallModel(9);
  await loadModelWeights(target, zipPath);
  assertSameWeights(target.layers, model.layers);
  model.dispose();
  target.dispose();
});
