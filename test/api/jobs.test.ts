import { test } from "node:test";
import assert from "node:assert/strict";
import supertest from "supertest";
import { build } from "../helpers/app.js";
import { assertDocumented } from "../helpers/openapi-check.js";
import { placeImagenetWeights, readyDataset } from "../helpers/jobs.js";
import { documentedOperations } from "../../src/api/openapi.js";
import { JOB_SPEC_DEFAULTS, MAX_BATCH_SIZE } from "../../src/jobs/job-spec.js";
import { loadOpenApi } from "../../src/api/openapi.js";
import { MAX_CLASSES, MAX_DENSE_UNITS } from "../../src/network/transfer-model.js";

const KEYS = { API_KEYS: "acme:key-acme,globex:key-globex" };
const acme = { authorization: "Bearer key-acme" };
const globex = { authorization: "Bearer key-globex" };

async function setup(t: Parameters<typeof build>[0]) {
  const { app, config } = await build(t, KEYS);
  await placeImagenetWeights(config);
  const datasetId = await readyDataset(config, "acme", { cat: 10, dog: 10, fox: 1 });
  return { app, config, datasetId, http: supertest(app.server) };
}

test("openapi.yaml and the app serve the same operations", async (t) => {
  const { app } = await build(t);
  const documented = documentedOperations();
  // The app's own routes, each documented...
  assert.deepEqual(
    [...new Set(app.routeTable)].filter((op) => !documented.includes(op)),
    [],
  );
  // ...and each documented operation served (plugins such as the queue dashboard hide theirs from the route table).
  const missing = documented.filter((op) => {
    const [method, url] = op.split(" ");
    return !app.hasRoute({ method: method as "GET", url: url.replace(/\{(\w+)\}/g, ":$1") });
  });
  assert.deepEqual(missing, []);
});

test("the spec defaults in openapi.yaml are the ones the code applies", () => {
  const props = loadOpenApi().components.schemas.JobSpec.properties ?? {};
  for (const [field, value] of Object.entries(JOB_SPEC_DEFAULTS)) assert.deepEqual(props[field].default, value, field);
});

test("the spec limits in openapi.yaml are the ones the model builder checks", () => {
  const props = loadOpenApi().components.schemas.JobSpec.properties ?? {};
  assert.equal(props.head.properties?.denseUnits.maximum, MAX_DENSE_UNITS);
  assert.equal(props.classes.maxItems, MAX_CLASSES);
  assert.equal(props.batchSize.maximum, MAX_BATCH_SIZE);
});

test("POST /v1/jobs queues a job with the tutorial's defaults; GET and the list show it", async (t) => {
  const { http, datasetId } = await setup(t);
  const res = await http
    .post("/v1/jobs")
    .set(acme)
    .send({ datasetId, classes: ["cat", "dog"] });
  assert.equal(res.status, 202, res.text);
  assertDocumented(res, "POST", "/v1/jobs");
  const job = res.body;
  assert.match(job.id, /^job_[0-9a-f-]{36}$/);
  assert.equal(res.headers.location, `/v1/jobs/${job.id}`);
  assert.equal(job.state, "queued");
  assert.equal(job.queuePosition, 1);
  assert.deepEqual(job.spec, { ...JOB_SPEC_DEFAULTS, datasetId, classes: ["cat", "dog"] });
  assert.equal(job.attempts, 0);
  assert.deepEqual(job.metrics, []);

  const second = await http
    .post("/v1/jobs")
    .set(acme)
    .send({ datasetId, classes: ["dog", "cat"], baseWeights: "none", epochs: 2 });
  assert.equal(second.status, 202);
  assert.equal(second.body.queuePosition, 2);

  const got = await http.get(`/v1/jobs/${job.id}`).set(acme);
  assert.equal(got.status, 200);
  assertDocumented(got, "GET", "/v1/jobs/:id");
  assert.equal(got.body.id, job.id);

  const list = await http.get("/v1/jobs").set(acme);
  assert.equal(list.status, 200);
  assertDocumented(list, "GET", "/v1/jobs");
  assert.deepEqual(
    list.body.items.map((j: { id: string }) => j.id),
    [second.body.id, job.id],
  );
  assert.equal(list.body.items[0].metrics, undefined);
});

test("every schema rule is a 400 VALIDATION_FAILED, never a 5xx", async (t) => {
  const { http, datasetId } = await setup(t);
  const bad: Record<string, unknown>[] = [
    {},
    { datasetId: "" },
    { datasetId, unknownField: 1 },
    { datasetId, unfrozenLayers: -1 },
    { datasetId, unfrozenLayers: 176 },
    { datasetId, unfrozenLayers: 1.5 },
    { datasetId, learningRate: 0 },
    { datasetId, learningRate: 1.01 },
    { datasetId, epochs: 0 },
    { datasetId, epochs: 1001 },
    { datasetId, batchSize: 0 },
    { datasetId, batchSize: 1025 },
    { datasetId, imageSize: 31 },
    { datasetId, imageSize: 513 },
    { datasetId, validationSplit: -0.1 },
    { datasetId, validationSplit: 0.5 },
    { datasetId, classes: ["cat"] },
    { datasetId, classes: ["cat", "cat"] },
    { datasetId, head: { pooling: "max" } },
    { datasetId, head: { dropout: 1 } },
    { datasetId, head: { denseUnits: 0 } },
    { datasetId, head: { extra: true } },
    { datasetId, augmentation: { rotate: 0.6 } },
    { datasetId, augmentation: { zoom: 0.95 } },
    { datasetId, augmentation: { flip: true, shear: 1 } },
    { datasetId, earlyStopping: { monitor: "val_auc" } },
    { datasetId, earlyStopping: { patience: -1 } },
    { datasetId, seed: -1 },
    { datasetId, baseWeights: "" },
  ];
  for (const body of bad) {
    const res = await http.post("/v1/jobs").set(acme).send(body);
    assert.equal(res.status, 400, `${JSON.stringify(body)} -> ${res.status} ${res.text}`);
    assert.equal(res.body.error.code, "VALIDATION_FAILED", JSON.stringify(body));
    assertDocumented(res, "POST", "/v1/jobs");
  }
  for (const raw of ["{", "[]", "null", '"x"']) {
    const res = await http.post("/v1/jobs").set(acme).set("content-type", "application/json").send(raw);
    assert.equal(res.status, 400, `${raw} -> ${res.status}`);
  }
  const text = await http.post("/v1/jobs").set(acme).set("content-type", "text/plain").send("hello");
  assert.equal(text.status, 400, "a text body is not a spec");
  const list = await http.get("/v1/jobs?limit=0").set(acme);
  assert.equal(list.status, 400);
  assert.equal((await http.get("/v1/jobs?state=sleeping").set(acme)).status, 400);
  assert.equal((await http.get("/v1/jobs?cursor=bm9wZQ").set(acme)).body.error.code, "INVALID_CURSOR");
});

test("the spec is checked against the dataset, the classes, the split and the weights", async (t) => {
  const { http, datasetId, config } = await setup(t);
  const tiny = await readyDataset(config, "acme", { only: 5 });
  const theirs = await readyDataset(config, "globex", { a: 5, b: 5 });
  const cases: [Record<string, unknown>, number, string][] = [
    [{ datasetId: "ds_000000000000000000000" }, 404, "DATASET_NOT_FOUND"],
    [{ datasetId: theirs }, 404, "DATASET_NOT_FOUND"],
    [{ datasetId, classes: ["cat", "wolf"] }, 422, "UNKNOWN_CLASSES"],
    [{ datasetId: tiny }, 422, "TOO_FEW_CLASSES"],
    // fox has one image: with a split it cannot be on both sides
    [{ datasetId }, 422, "SPLIT_LEAVES_CLASS_EMPTY"],
    [{ datasetId, classes: ["cat", "dog"], validationSplit: 0, earlyStopping: {} }, 422, "EARLY_STOPPING_NEEDS_VALIDATION"],
    [{ datasetId, classes: ["cat", "dog"], baseWeights: "wts_00000000-0000-0000-0000-000000000000" }, 404, "WEIGHTS_NOT_FOUND"],
  ];
  for (const [body, status, code] of cases) {
    const res = await http.post("/v1/jobs").set(acme).send(body);
    assert.equal(res.status, status, `${JSON.stringify(body)} -> ${res.text}`);
    assert.equal(res.body.error.code, code);
    assertDocumented(res, "POST", "/v1/jobs");
  }
  const noSplit = await http.post("/v1/jobs").set(acme).send({ datasetId, validationSplit: 0, baseWeights: "none" });
  assert.equal(noSplit.status, 202, "without validation, one image per class is enough");

  const fs = await import("node:fs/promises");
  await fs.rm(config.imagenetWeights);
  const missing = await http
    .post("/v1/jobs")
    .set(acme)
    .send({ datasetId, classes: ["cat", "dog"] });
  assert.equal(missing.status, 422);
  assert.equal(missing.body.error.code, "IMAGENET_WEIGHTS_MISSING");
  assert.equal(missing.body.error.details.setting, "IMAGENET_WEIGHTS");
  assert.match(missing.body.error.message, /IMAGENET_WEIGHTS/);
  assert.ok(!missing.text.includes(config.imagenetWeights), "no server path in the answer");
});

test("API keys: 401 without a valid key; another tenant's job is 404 everywhere", async (t) => {
  const { http, datasetId } = await setup(t);
  assert.equal((await http.get("/v1/jobs")).status, 401);
  assert.equal((await http.get("/v1/jobs").set({ authorization: "Bearer key-acmE" })).status, 401);
  assert.equal((await http.get("/v1/jobs").set({ authorization: "Basic key-acme" })).status, 401);
  const job = (
    await http
      .post("/v1/jobs")
      .set(acme)
      .send({ datasetId, classes: ["cat", "dog"] })
  ).body;
  for (const res of [
    await http.get(`/v1/jobs/${job.id}`).set(globex),
    await http.post(`/v1/jobs/${job.id}/cancel`).set(globex),
    await http.get(`/v1/jobs/${job.id}/events`).set(globex),
  ]) {
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, "NOT_FOUND");
  }
  assert.deepEqual((await http.get("/v1/jobs").set(globex)).body, { items: [], nextCursor: null });
  assert.equal((await http.get(`/v1/jobs/${job.id}`).set(acme)).body.state, "queued", "globex's cancel did nothing");
});

test("Idempotency-Key: same key and body -> same job (200); other body -> 422; a failed request frees the key", async (t) => {
  const { http, datasetId, config } = await setup(t);
  const body = { datasetId, classes: ["cat", "dog"] };
  const first = await http.post("/v1/jobs").set(acme).set("idempotency-key", "k1").send(body);
  assert.equal(first.status, 202);
  // Same spec once defaults are applied, keys in another order.
  const again = await http
    .post("/v1/jobs")
    .set(acme)
    .set("idempotency-key", "k1")
    .send({ epochs: 10, ...body });
  assert.equal(again.status, 200);
  assertDocumented(again, "POST", "/v1/jobs");
  assert.equal(again.body.id, first.body.id);
  const other = await http
    .post("/v1/jobs")
    .set(acme)
    .set("idempotency-key", "k1")
    .send({ ...body, epochs: 3 });
  assert.equal(other.status, 422);
  assert.equal(other.body.error.code, "IDEMPOTENCY_KEY_REUSED");
  // Keys are per tenant.
  const theirs = await readyDataset(config, "globex", { a: 5, b: 5 });
  const theirJob = await http.post("/v1/jobs").set(globex).set("idempotency-key", "k1").send({ datasetId: theirs });
  assert.equal(theirJob.status, 202);
  const failed = await http
    .post("/v1/jobs")
    .set(acme)
    .set("idempotency-key", "k2")
    .send({ datasetId, classes: ["cat", "wolf"] });
  assert.equal(failed.status, 422);
  const retried = await http
    .post("/v1/jobs")
    .set(acme)
    .set("idempotency-key", "k2")
    .send({ datasetId, classes: ["cat", "dog"] });
  assert.equal(retried.status, 202);
  assert.equal((await http.get("/v1/jobs").set(acme)).body.items.length, 2);
});

test("pagination: newest first, nextCursor until the last page, state filter", async (t) => {
  const { http, datasetId } = await setup(t);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++)
    ids.push(
      (
        await http
          .post("/v1/jobs")
          .set(acme)
          .send({ datasetId, classes: ["cat", "dog"], seed: i })
      ).body.id,
    );
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const res: supertest.Response = await http.get(`/v1/jobs?limit=2${cursor ? `&cursor=${cursor}` : ""}`).set(acme);
    assert.equal(res.status, 200);
    assert.ok(res.body.items.length <= 2);
    seen.push(...res.body.items.map((j: { id: string }) => j.id));
    cursor = res.body.nextCursor;
  } while (cursor);
  assert.deepEqual(seen, [...ids].reverse());

  await http.post(`/v1/jobs/${ids[1]}/cancel`).set(acme);
  const cancelled = await http.get("/v1/jobs?state=cancelled&limit=1").set(acme);
  assert.deepEqual(
    cancelled.body.items.map((j: { id: string }) => j.id),
    [ids[1]],
  );
  const after = await http.get(`/v1/jobs?state=cancelled&cursor=${cancelled.body.nextCursor}`).set(acme);
  assert.deepEqual(after.body, { items: [], nextCursor: null });
  const queued = await http.get("/v1/jobs?state=queued&limit=100").set(acme);
  assert.equal(queued.body.items.length, 4);
});
