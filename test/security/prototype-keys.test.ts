// Class names are the client's strings: "constructor", "__proto__", "toString" and "hasOwnProperty" are
// legitimate ones, and a dataset of them uploads, lists, trains and predicts like any other, through
// every JSON round trip (storage, Redis, HTTP answers).
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "../helpers/app.js";
import { multipartBody } from "../helpers/dataset-archives.js";
import { uploadArchive } from "../helpers/dataset-upload.js";
import { nextEvent, startTrainingWorker } from "../helpers/jobs.js";
import { startRedis } from "../helpers/redis.js";
import { PROTOTYPE_CLASS_NAMES, prototypeClassesZip, smallImages } from "./hostile-inputs.js";

const NAMES = [...PROTOTYPE_CLASS_NAMES].sort();

/** Own keys and values of a parsed JSON object, sorted (a literal {"__proto__": 3} would not have the key). */
function ownEntries(value: object): [string, unknown][] {
  return Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1));
}

test("a dataset of classes named like Object.prototype's keys uploads, lists, trains and predicts", { timeout: 300_000 }, async (t) => {
  // Our own Redis, stopped after the worker (build() would stop its own before this test's hooks run).
  const redis = await startRedis();
  const { app, config } = await build(t, { REDIS_URL: redis.url, TFJS_BACKEND: "wasm" });

  const uploaded = await uploadArchive(app, await prototypeClassesZip(3));
  assert.equal(uploaded.statusCode, 201, uploaded.body);
  const dataset = uploaded.json();
  assert.deepEqual(dataset.classes, NAMES);
  assert.deepEqual(
    ownEntries(dataset.counts),
    NAMES.map((n) => [n, 3]),
  );

  const listed = await app.inject({ method: "GET", url: "/v1/datasets" });
  assert.equal(listed.statusCode, 200, listed.body);
  assert.deepEqual(
    ownEntries(listed.json().items[0].counts),
    NAMES.map((n) => [n, 3]),
  );
  const one = await app.inject({ method: "GET", url: `/v1/datasets/${dataset.id}` });
  assert.equal(one.statusCode, 200, one.body);
  assert.deepEqual(
    ownEntries(one.json().counts),
    NAMES.map((n) => [n, 3]),
  );

  const { events, close } = await startTrainingWorker(config);
  t.after(async () => {
    await close();
    await redis.stop();
  });

  const posted = await app.inject({
    method: "POST",
    url: "/v1/jobs",
    payload: {
      datasetId: dataset.id,
      baseWeights: "none",
      unfrozenLayers: 0,
      classes: ["toString", "__proto__", "constructor", "hasOwnProperty"],
      epochs: 1,
      batchSize: 4,
      imageSize: 32,
      validationSplit: 0.34,
      head: { pooling: "avg", denseUnits: 8, dropout: 0.1 },
      seed: 3,
    },
  });
  assert.equal(posted.statusCode, 202, posted.body);
  const jobId = posted.json().id as string;
  const [finished] = await nextEvent<[{ jobId: string; failedReason?: string }]>(
    events,
    "completed",
    ({ jobId: id }) => id === jobId,
    240_000,
  ).catch(async (error) => {
    const job = await app.inject({ method: "GET", url: `/v1/jobs/${jobId}` });
    throw new Error(`${(error as Error).message}: ${job.body}`);
  });
  assert.equal(finished.jobId, jobId);

  const job = await app.inject({ method: "GET", url: `/v1/jobs/${jobId}` });
  assert.equal(job.statusCode, 200, job.body);
  assert.equal(job.json().state, "completed", job.body);
  const modelId = job.json().modelId as string;
  const model = await app.inject({ method: "GET", url: `/v1/models/${modelId}` });
  assert.equal(model.statusCode, 200, model.body);
  assert.deepEqual(model.json().classes, ["toString", "__proto__", "constructor", "hasOwnProperty"]);

  const [a, b] = await smallImages(2);
  const body = multipartBody(a, {}, "a.png");
  const second = multipartBody(b, {}, "b.png");
  // Two image parts in one body: the second body's file part spliced before the first's closing boundary.
  const boundary = body.headers["content-type"].split("boundary=")[1];
  const secondBoundary = second.headers["content-type"].split("boundary=")[1];
  const payload = Buffer.concat([
    body.payload.subarray(0, body.payload.length - `--${boundary}--\r\n`.length),
    Buffer.from(second.payload.toString("latin1").replaceAll(secondBoundary, boundary), "latin1"),
  ]);
  const predicted = await app.inject({ method: "POST", url: `/v1/models/${modelId}/predict?k=4`, payload, headers: body.headers });
  assert.equal(predicted.statusCode, 200, predicted.body);
  const predictions = predicted.json().predictions as { file: string; top: { class: string; probability: number }[] }[];
  assert.deepEqual(
    predictions.map((p) => p.file),
    ["a.png", "b.png"],
  );
  for (const p of predictions) {
    assert.deepEqual(p.top.map((x) => x.class).sort(), NAMES);
    assert.ok(p.top.every((x) => typeof x.probability === "number" && x.probability >= 0 && x.probability <= 1));
    assert.ok(Math.abs(p.top.reduce((s, x) => s + x.probability, 0) - 1) < 1e-4);
  }
});
