import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import supertest from "supertest";
import { UnrecoverableError } from "bullmq";
import { build } from "../helpers/app.js";
import { assertDocumented } from "../helpers/openapi-check.js";
import { fakeWorker, nextEvent, placeImagenetWeights, readyDataset } from "../helpers/jobs.js";
import { appendEpochMetrics, jobRedis, markCancelled, setJobInfo } from "../../src/jobs/job-records.js";
import { onCancel } from "../../src/jobs/cancel.js";
import type { JobProgress } from "../../src/jobs/training-queue.js";

interface SseEvent {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

/** Opens the event stream; `events` fills as they come, `ended` resolves when the server ends it. */
function openStream(base: string, jobId: string, headers: Record<string, string> = {}) {
  const events: SseEvent[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const heartbeatWaiters: (() => void)[] = [];
  let request!: http.ClientRequest;
  const ended = new Promise<number>((resolve, reject) => {
    request = http.get(`${base}/v1/jobs/${jobId}/events`, { headers }, (res) => {
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let cut = buffer.indexOf("\n\n"); cut >= 0; cut = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (block.startsWith(":")) {
            for (const w of heartbeatWaiters.splice(0)) w();
            continue;
          }
          const fields = Object.fromEntries(block.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]));
          events.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) });
          for (const w of waiters.filter((w) => events.length >= w.n)) w.resolve();
        }
      });
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    request.on("error", reject);
  });
  const count = (n: number, ms = 10_000) =>
    new Promise<void>((resolve, reject) => {
      if (events.length >= n) return resolve();
      const timer = setTimeout(() => reject(new Error(`only ${events.length} of ${n} events: ${JSON.stringify(events)}`)), ms);
      waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  const heartbeat = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no heartbeat")), 5_000);
      heartbeatWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  const close = () => {
    ended.catch(() => undefined);
    request.destroy();
  };
  return { events, ended, count, heartbeat, close };
}

async function setup(t: Parameters<typeof build>[0]) {
  const { app, config } = await build(t, {}, { events: { heartbeatMs: 50, progressIntervalMs: 0 } });
  await placeImagenetWeights(config);
  const datasetId = await readyDataset(config, "default", { cat: 10, dog: 10 });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return { app, config, datasetId, base, http: supertest(app.server), db: jobRedis(app.redis, config) };
}

const metrics = (epoch: number) => ({
  epoch,
  loss: 1 / epoch,
  accuracy: 0.5,
  valLoss: 1,
  valAccuracy: 0.5,
  seconds: 1,
  imagesPerSecond: 16,
});
const progress = (epoch: number, batch: number): JobProgress => ({
  epoch,
  epochs: 2,
  batch,
  batches: 2,
  fraction: ((epoch - 1) * 2 + batch) / 4,
});

test("SSE: state, progress, epoch and checkpoint events in order, then completed ends the stream; Last-Event-ID replays missed epochs", async (t) => {
  const { base, http, datasetId, config, db } = await setup(t);
  const job = (await http.post("/v1/jobs").send({ datasetId, epochs: 2 })).body;
  const stream = openStream(base, job.id);
  await stream.count(1);
  assert.deepEqual(stream.events[0], {
    id: "0.1",
    event: "state",
    data: { id: job.id, state: "queued", queuePosition: 1, attempts: 0, cancelRequested: false },
  });

  const worker = fakeWorker(config, async (j) => {
    for (const epoch of [1, 2]) {
      await j.updateProgress(progress(epoch, 1));
      await appendEpochMetrics(db, j.id!, metrics(epoch));
      await j.updateProgress({ ...progress(epoch, 2), metrics: metrics(epoch) });
      await j.updateProgress({ ...progress(epoch, 2), checkpoint: { epoch } });
    }
    await setJobInfo(db, j.id!, { modelId: "mdl_test", backend: "wasm", engine: "onnxruntime", stepEngine: "tfjs" });
    return { modelId: "mdl_test" };
  });
  assert.equal(await stream.ended, 200);
  await worker.close();
  assert.deepEqual(
    stream.events.map((e) => `${e.id} ${e.event}`),
    [
      "0.1 state",
      "0.2 state",
      "0.3 progress",
      "1.0 epoch",
      "1.1 checkpoint",
      "1.2 progress",
      "2.0 epoch",
      "2.1 checkpoint",
      "2.2 completed",
    ],
  );
  assert.equal(stream.events[1].data.state, "running");
  assert.deepEqual(stream.events[3].data, metrics(1));
  const final = stream.events.at(-1)!.data;
  assert.equal(final.state, "completed");
  assert.equal(final.modelId, "mdl_test");
  assertDocumented({ statusCode: 200, body: final }, "GET", "/v1/jobs/:id");
  // The job shows which engine computed the trunk and which ran the training steps.
  const read = await http.get(`/v1/jobs/${job.id}`);
  assert.equal(read.status, 200);
  assert.deepEqual([read.body.engine, read.body.stepEngine], ["onnxruntime", "tfjs"]);

  // A client that saw up to epoch 1 gets epoch 2 from the stored metrics, then the end.
  const replay = openStream(base, job.id, { "last-event-id": "1.1" });
  assert.equal(await replay.ended, 200);
  assert.deepEqual(
    replay.events.map((e) => `${e.id} ${e.event}`),
    ["2.0 epoch", "2.1 completed"],
  );
  const fresh = openStream(base, job.id);
  await fresh.ended;
  assert.deepEqual(
    fresh.events.map((e) => `${e.id} ${e.event}`),
    ["1.0 epoch", "2.0 epoch", "2.1 completed"],
  );

  const got = await http.get(`/v1/jobs/${job.id}`);
  assert.equal(got.body.state, "completed");
  assert.deepEqual(got.body.metrics, [metrics(1), metrics(2)]);
  assert.equal(got.body.attempts, 1);
  assert.equal(got.body.backend, "wasm");
  assert.ok(got.body.startedAt && got.body.finishedAt);
  assertDocumented(got, "GET", "/v1/jobs/:id");

  const late = await http.post(`/v1/jobs/${job.id}/cancel`);
  assert.equal(late.status, 409);
  assert.equal(late.body.error.code, "JOB_FINISHED");
});

test("SSE: heartbeats keep coming, and many clients connecting and leaving leave no listener behind", async (t) => {
  const { app, base, http, datasetId } = await setup(t);
  const job = (await http.post("/v1/jobs").send({ datasetId })).body;
  const watched = openStream(base, job.id);
  await watched.heartbeat();
  await watched.heartbeat();
  watched.close();
  for (let i = 0; i < 50; i++) {
    const s = openStream(base, job.id);
    await s.count(1);
    s.close();
  }
  const deadline = Date.now() + 5_000;
  // The server sees each close asynchronously: wait for the last one.
  while (app.jobEvents.listenerCount() > 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.equal(app.jobEvents.listenerCount(), 0);
});

test("cancel: a queued job is cancelled at once (200, then no-op 200); its stream ends with cancelled", async (t) => {
  const { base, http, datasetId } = await setup(t);
  const job = (await http.post("/v1/jobs").send({ datasetId })).body;
  const stream = openStream(base, job.id);
  await stream.count(1);
  const res = await http.post(`/v1/jobs/${job.id}/cancel`);
  assert.equal(res.status, 200);
  assertDocumented(res, "POST", "/v1/jobs/:id/cancel");
  assert.equal(res.body.state, "cancelled");
  assert.ok(res.body.finishedAt);
  await stream.ended;
  assert.deepEqual(
    stream.events.map((e) => e.event),
    ["state", "cancelled"],
  );
  const again = await http.post(`/v1/jobs/${job.id}/cancel`);
  assert.equal(again.status, 200);
  assert.equal(again.body.state, "cancelled");
  assert.equal((await http.get(`/v1/jobs/${job.id}`)).body.state, "cancelled");
});

test("cancel: a running job is told to stop across processes and becomes cancelled", async (t) => {
  const { http, datasetId, config, db } = await setup(t);
  const job = (await http.post("/v1/jobs").send({ datasetId })).body;
  const worker = fakeWorker(config, async (j) => {
    // Stands in for the training loop: stop at the next "batch" once a cancel is heard.
    await new Promise<void>((resolve) => {
      void onCancel(db, (id) => id === j.id && resolve()).then((stop) =>
        j.updateProgress(progress(1, 0)).then(() => worker.once("failed", () => void stop())),
      );
    });
    await markCancelled(db, j.id!);
    throw new UnrecoverableError("cancelled");
  });
  await nextEvent(worker, "progress");
  assert.equal((await http.get(`/v1/jobs/${job.id}`)).body.state, "running");
  const failed = nextEvent(worker, "failed");
  const res = await http.post(`/v1/jobs/${job.id}/cancel`);
  assert.equal(res.status, 202);
  assertDocumented(res, "POST", "/v1/jobs/:id/cancel");
  assert.equal(res.body.cancelRequested, true);
  await failed;
  const after = (await http.get(`/v1/jobs/${job.id}`)).body;
  assert.equal(after.state, "cancelled");
  assert.equal(after.error, null);
  assert.equal(after.attempts, 1, "a cancelled job is not retried");
  await worker.close();
});
