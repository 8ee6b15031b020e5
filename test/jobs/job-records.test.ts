import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { createRedis } from "../../src/jobs/redis.js";
import {
  appendEpochMetrics,
  markCancelled,
  readEpochMetrics,
  readJobRecord,
  setJobInfo,
  type JobRedis,
} from "../../src/jobs/job-records.js";
import { isCancelRequested, onCancel, requestCancel } from "../../src/jobs/cancel.js";
import { JOB_SPEC_DEFAULTS } from "../../src/jobs/job-spec.js";
import { createJobRecord } from "../helpers/jobs.js";

let server: TestRedis;
let redis: Redis;
let db: JobRedis;

before(async () => {
  server = await startRedis();
  redis = createRedis(server.url, "consumer");
  db = { redis, prefix: `t${randomUUID().slice(0, 8)}` };
});
after(async () => {
  redis.disconnect();
  await server.stop();
});

const spec = { ...JOB_SPEC_DEFAULTS, datasetId: "ds_1" };

function metrics(epoch: number, loss: number) {
  return { epoch, loss, accuracy: 0.5, valLoss: null, valAccuracy: null, seconds: 1, imagesPerSecond: 10 };
}

test("a job record round-trips with the worker's extras", async () => {
  await createJobRecord(db, { jobId: "job_a", tenant: "acme", spec, createdAt: "2026-01-01T00:00:00.000Z" });
  await setJobInfo(db, "job_a", { backend: "wasm", featureCache: true });
  await setJobInfo(db, "job_a", { modelId: "mdl_1" });
  const record = await readJobRecord(db, "job_a");
  assert.deepEqual(record, {
    jobId: "job_a",
    tenant: "acme",
    spec,
    createdAt: "2026-01-01T00:00:00.000Z",
    backend: "wasm",
    featureCache: true,
    modelId: "mdl_1",
  });
  assert.equal(await readJobRecord(db, "job_missing"), null);
});

test("epoch metrics come back in order, one entry per epoch, filtered by epoch", async () => {
  await appendEpochMetrics(db, "job_m", metrics(2, 0.8));
  await appendEpochMetrics(db, "job_m", metrics(1, 0.9));
  await appendEpochMetrics(db, "job_m", metrics(2, 0.7)); // a retry ran epoch 2 again
  await appendEpochMetrics(db, "job_m", metrics(10, 0.1));
  assert.deepEqual(
    (await readEpochMetrics(db, "job_m")).map((m) => [m.epoch, m.loss]),
    [
      [1, 0.9],
      [2, 0.7],
      [10, 0.1],
    ],
  );
  assert.deepEqual(
    (await readEpochMetrics(db, "job_m", 2)).map((m) => m.epoch),
    [10],
  );
});

test("a cancel request is seen by flag and by pub/sub in another connection", async () => {
  await createJobRecord(db, { jobId: "job_c", tenant: "acme", spec, createdAt: new Date().toISOString() });
  assert.equal(await isCancelRequested(db, "job_c"), false);
  const heard: string[] = [];
  let heardOne!: () => void;
  const got = new Promise<void>((resolve) => (heardOne = resolve));
  const producer = createRedis(server.url, "producer");
  const stopListening = await onCancel({ redis: producer, prefix: db.prefix }, (jobId) => {
    heard.push(jobId);
    heardOne();
  });
  await requestCancel(db, "job_c");
  await got;
  await stopListening();
  producer.disconnect();
  assert.deepEqual(heard, ["job_c"]);
  assert.equal(await isCancelRequested(db, "job_c"), true);
  await markCancelled(db, "job_c", new Date("2026-01-02T00:00:00Z"));
  await markCancelled(db, "job_c", new Date("2026-01-03T00:00:00Z"));
  assert.equal((await readJobRecord(db, "job_c"))?.cancelledAt, "2026-01-02T00:00:00.000Z");
});
