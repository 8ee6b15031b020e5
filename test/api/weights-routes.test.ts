import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import supertest from "supertest";
import { build, tempDir } from "../helpers/app.js";
import { filesUnder } from "../helpers/dataset-upload.js";
import { makeZip } from "../helpers/dataset-archives.js";
import { readyDataset } from "../helpers/jobs.js";
import { writeKeras3WeightsFile, writeKerasWeightsFile } from "../helpers/keras-h5.js";
import { assertDocumented } from "../helpers/openapi-check.js";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { KERAS2_FIXTURES, SMALL_CNN_FILES, keras2Skip, unpackResnet50 } from "../helpers/keras-fixtures.js";
import { newWeightsId, saveWeightsRecord, type WeightsRecord } from "../../src/base-weights/weights-store.js";

const KEYS = { API_KEYS: "acme:key-acme,globex:key-globex" };
const acme = { authorization: "Bearer key-acme" };
const globex = { authorization: "Bearer key-globex" };

// ResNet-50's weight shapes do not depend on the image size, so a 32 px model gives full-size files
// (~94 MB each): written once for the whole file.
const dir = await tempDir("rf-weights-api-");
const files = {
  keras2: path.join(dir, "resnet50-top.h5"),
  keras3: path.join(dir, "resnet50.weights.h5"),
  garbage: path.join(dir, "garbage.h5"),
};
before(async () => {
  const model = buildResNet50({ imageSize: 32, seed: 1 });
  await writeKerasWeightsFile(model, files.keras2, { includeTop: true });
  await writeKeras3WeightsFile(model, files.keras3);
  model.dispose();
  await fs.writeFile(files.garbage, Buffer.from("this is not a weights file, just some bytes".repeat(100)));
});
after(() => fs.rm(dir, { recursive: true, force: true }));

async function setup(t: Parameters<typeof build>[0]) {
  const { app, config } = await build(t, KEYS);
  return { app, config, http: supertest(app.server) };
}

/** Files under the data dir that are not the API's own Redis or probe files: what an upload stored. */
async function storedFiles(dataDir: string): Promise<string[]> {
  return (await filesUnder(dataDir)).filter((f) => f.startsWith("tenants/"));
}

test("a Keras 2 ResNet-50 file with the ImageNet top is stored; GET, the list and its file agree", async (t) => {
  const { http, config } = await setup(t);
  const res = await http.post("/v1/weights").set(acme).attach("file", files.keras2);
  assert.equal(res.status, 201, res.text);
  assertDocumented(res, "POST", "/v1/weights");
  const body = res.body as WeightsRecord;
  assert.match(body.id, /^wts_[0-9a-f-]{36}$/);
  assert.equal(res.headers.location, `/v1/weights/${body.id}`);
  assert.equal(body.format, "keras-h5");
  assert.equal(body.matchedLayers, 106);
  assert.deepEqual(body.ignoredLayers, ["predictions"]);
  assert.equal(body.fileName, "resnet50-top.h5");
  assert.equal(body.bytes, (await fs.stat(files.keras2)).size);

  const got = await http.get(`/v1/weights/${body.id}`).set(acme);
  assert.equal(got.status, 200);
  assertDocumented(got, "GET", "/v1/weights/:id");
  assert.deepEqual(got.body, body);

  const list = await http.get("/v1/weights").set(acme);
  assert.equal(list.status, 200);
  assertDocumented(list, "GET", "/v1/weights");
  assert.deepEqual(list.body, { items: [body], nextCursor: null });

  // The file as uploaded and its record, no scratch files left.
  const base = `tenants/acme/weights/${body.id}`;
  assert.deepEqual(await storedFiles(config.dataDir), [`${base}/record.json`, `${base}/weights.h5`]);
  assert.deepEqual(await filesUnder(path.join(config.dataDir, ".tmp")).catch(() => []), []);
  assert.ok((await fs.readFile(path.join(config.dataDir, base, "weights.h5"))).equals(await fs.readFile(files.keras2)));
});

test("a Keras 3 .weights.h5 file is stored as keras3", async (t) => {
  const { http } = await setup(t);
  const res = await http.post("/v1/weights").set(acme).attach("file", files.keras3);
  assert.equal(res.status, 201, res.text);
  assertDocumented(res, "POST", "/v1/weights");
  assert.equal(res.body.format, "keras3");
  assert.equal(res.body.matchedLayers, 106);
  assert.deepEqual(res.body.ignoredLayers, []);
});

for (const [name, format] of [
  ["resnet50-notop.keras3.h5", "keras-h5"],
  ["resnet50-notop.weights.h5", "keras3"],
] as const) {
  test(`ResNet-50 weights written by real Keras 3 (${name}) are accepted as ${format}`, async (t) => {
    const { http } = await setup(t);
    const res = await http
      .post("/v1/weights")
      .set(acme)
      .attach("file", await unpackResnet50(name, dir));
    assert.equal(res.status, 201, res.text);
    assertDocumented(res, "POST", "/v1/weights");
    assert.equal(res.body.format, format);
    assert.equal(res.body.matchedLayers, 106);
  });
}

const otherNetworks = [
  ...["cifar10-resnet-v1.keras2.h5", "vww-mobilenet-v1-96.keras2.h5"].map((name) => ({
    file: path.join(KERAS2_FIXTURES, name),
    format: "keras-h5",
    skip: keras2Skip,
  })),
  ...SMALL_CNN_FILES.map((file) => ({ file, format: file.endsWith(".weights.h5") ? "keras3" : "keras-h5", skip: false as const })),
];
for (const { file, format, skip } of otherNetworks) {
  test(`a real Keras file of another network (${path.basename(file)}) is 422 WEIGHTS_MISMATCH with the report, nothing stored`, {
    skip,
  }, async (t) => {
    const { http, config } = await setup(t);
    const res = await http.post("/v1/weights").set(acme).attach("file", file);
    assert.equal(res.status, 422, res.text);
    assertDocumented(res, "POST", "/v1/weights");
    const { code, details } = res.body.error;
    assert.equal(code, "WEIGHTS_MISMATCH");
    assert.equal(details.format, format);
    assert.ok(details.matchedLayers < 106, `matched ${details.matchedLayers}`);
    assert.ok(details.counts.missing + details.counts.unexpected + details.counts.shapeMismatches > 0);
    assert.ok(details.missing.length > 0 || details.shapeMismatches.length > 0, "the report names what does not fit");
    assert.ok(details.missing.length <= 20 && details.unexpected.length <= 20 && details.shapeMismatches.length <= 20);
    assert.equal(details.fileLayers, undefined, "the report does not list every layer of the file");
    assert.deepEqual(await storedFiles(config.dataDir), []);
    assert.deepEqual(await filesUnder(config.dataDir).then((all) => all.filter((f) => f.startsWith(".tmp/"))), []);
    assert.deepEqual((await http.get("/v1/weights").set(acme)).body.items, []);
  });
}

test("bytes that are no weights file, and a zip without a TF.js model, are 422 WEIGHTS_UNREADABLE", async (t) => {
  const { http, config } = await setup(t);
  const garbage = await http.post("/v1/weights").set(acme).attach("file", files.garbage);
  assert.equal(garbage.status, 422, garbage.text);
  assertDocumented(garbage, "POST", "/v1/weights");
  assert.equal(garbage.body.error.code, "WEIGHTS_UNREADABLE");
  assert.ok(garbage.body.error.details.reason);

  const zip = await makeZip([{ path: "notes.txt", data: Buffer.from("no model here") }]);
  const zipped = await http.post("/v1/weights").set(acme).attach("file", zip, "model.zip");
  assert.equal(zipped.status, 422, zipped.text);
  assert.equal(zipped.body.error.code, "WEIGHTS_UNREADABLE");

  // A lone model.json is refused before the engine could follow its shard paths.
  const modelJson = Buffer.from(JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ["../../etc/passwd"], weights: [] }] }));
  const json = await http.post("/v1/weights").set(acme).attach("file", modelJson, "model.json");
  assert.equal(json.status, 422, json.text);
  assert.equal(json.body.error.code, "WEIGHTS_UNREADABLE");
  assert.deepEqual(await storedFiles(config.dataDir), []);
});

test("not multipart, or multipart without a file, is 400", async (t) => {
  const { http } = await setup(t);
  const json = await http.post("/v1/weights").set(acme).send({ file: "x" });
  assert.equal(json.status, 400);
  assertDocumented(json, "POST", "/v1/weights");
  assert.equal(json.body.error.code, "NOT_MULTIPART");
  const noFile = await http.post("/v1/weights").set(acme).field("name", "no file");
  assert.equal(noFile.status, 400);
  assert.equal(noFile.body.error.code, "MISSING_FILE");
  const unauthenticated = await http.post("/v1/weights").attach("file", files.garbage);
  assert.equal(unauthenticated.status, 401);
});

test("another tenant's weights are 404 and absent from its list; DELETE is 204, then 404 and the files are gone", async (t) => {
  const { http, config } = await setup(t);
  const id = (await http.post("/v1/weights").set(acme).attach("file", files.keras3)).body.id as string;

  for (const res of [await http.get(`/v1/weights/${id}`).set(globex), await http.delete(`/v1/weights/${id}`).set(globex)]) {
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, "WEIGHTS_NOT_FOUND");
  }
  assert.deepEqual((await http.get("/v1/weights").set(globex)).body.items, []);
  assert.equal((await http.get(`/v1/weights/${id}`).set(acme)).status, 200, "still there for its tenant");
  assert.equal((await http.get("/v1/weights/not-an-id").set(acme)).status, 404);

  const deleted = await http.delete(`/v1/weights/${id}`).set(acme);
  assert.equal(deleted.status, 204);
  assertDocumented(deleted, "DELETE", "/v1/weights/:id");
  const gone = await http.get(`/v1/weights/${id}`).set(acme);
  assert.equal(gone.status, 404);
  assertDocumented(gone, "GET", "/v1/weights/:id");
  assert.equal((await http.delete(`/v1/weights/${id}`).set(acme)).status, 404);
  assert.deepEqual(await storedFiles(config.dataDir), []);
});

test("DELETE is 409 WEIGHTS_IN_USE while a queued job uses the weights, 204 once it is cancelled", async (t) => {
  const { http, config } = await setup(t);
  const id = (await http.post("/v1/weights").set(acme).attach("file", files.keras3)).body.id as string;
  const datasetId = await readyDataset(config, "acme", { cat: 10, dog: 10 });
  const job = await http.post("/v1/jobs").set(acme).send({ datasetId, baseWeights: id });
  assert.equal(job.status, 202, job.text);
  assert.equal(job.body.spec.baseWeights, id);

  const refused = await http.delete(`/v1/weights/${id}`).set(acme);
  assert.equal(refused.status, 409);
  assertDocumented(refused, "DELETE", "/v1/weights/:id");
  assert.equal(refused.body.error.code, "WEIGHTS_IN_USE");
  assert.equal((await http.get(`/v1/weights/${id}`).set(acme)).status, 200);

  assert.equal((await http.post(`/v1/jobs/${job.body.id}/cancel`).set(acme)).status, 200);
  assert.equal((await http.delete(`/v1/weights/${id}`).set(acme)).status, 204);
});

test("the list pages newest first with an opaque cursor; a foreign cursor is 400 INVALID_CURSOR", async (t) => {
  const { http, config } = await setup(t);
  const storage = createLocalStorage(config.dataDir);
  // Records only (the list never opens the files); two share a createdAt, so the cursor needs the id too.
  const times = [
    "2026-01-01T00:00:00.000Z",
    "2026-01-02T00:00:00.000Z",
    "2026-01-02T00:00:00.000Z",
    "2026-01-03T00:00:00.000Z",
    "2026-01-04T00:00:00.000Z",
  ];
  const records: WeightsRecord[] = times.map((createdAt, i) => ({
    id: newWeightsId(),
    format: "keras-h5",
    matchedLayers: 106,
    ignoredLayers: [],
    fileName: `w${i}.h5`,
    bytes: 1,
    createdAt,
  }));
  for (const record of records) await saveWeightsRecord(storage, "acme", record);
  const expected = [...records]
    .sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1))
    .map((r) => r.id);

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res: supertest.Response = await http
      .get("/v1/weights")
      .query({ limit: 2, ...(cursor ? { cursor } : {}) })
      .set(acme);
    assert.equal(res.status, 200, res.text);
    assertDocumented(res, "GET", "/v1/weights");
    seen.push(...res.body.items.map((r: WeightsRecord) => r.id));
    cursor = res.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  assert.equal(pages, 3);
  assert.deepEqual(seen, expected);

  for (const bad of ["nope", Buffer.from("2026-01-01T00:00:00.000Z wts_x").toString("base64url")]) {
    const res = await http.get("/v1/weights").query({ cursor: bad }).set(acme);
    assert.equal(res.status, 400);
    assertDocumented(res, "GET", "/v1/weights");
    assert.equal(res.body.error.code, "INVALID_CURSOR");
  }
  assert.equal((await http.get("/v1/weights").query({ limit: 0 }).set(acme)).status, 400);
});
