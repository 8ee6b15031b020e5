// Webhooks against a real HTTP receiver: every event of a job arrives signed
// (Standard Webhooks) and in order, a delivery the receiver fails is retried
// with the same id, and private addresses are refused unless allowed.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import supertest from "supertest";
import { UnrecoverableError } from "bullmq";
import { build } from "../helpers/app.js";
import { startRedis } from "../helpers/redis.js";
import { fakeWorker, readyDataset } from "../helpers/jobs.js";
import { assertDocumented } from "../helpers/openapi-check.js";
import { createLogger } from "../../src/log.js";
import { jobRedis, setJobInfo } from "../../src/jobs/job-records.js";
import { createJobWebhooks, createWebhookQueue } from "../../src/webhooks/webhook-queue.js";
import { createWebhookWorker, postWebhook } from "../../src/webhooks/webhook-delivery.js";
import { emitTrainingWebhooks } from "../../src/webhooks/training-webhooks.js";
import { isPrivateAddress } from "../../src/webhooks/webhook-address.js";
import { signWebhook, verifyWebhook } from "../../src/webhooks/webhook-signing.js";

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  status: number;
}

/** An HTTP receiver that records every request and answers `answer(request number, body)`. */
async function receiver(t: { after(fn: () => Promise<void>): void }, answer: (n: number, body: string) => number) {
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      const status = answer(received.length, body);
      received.push({
        id: String(req.headers["webhook-id"]),
        timestamp: String(req.headers["webhook-timestamp"]),
        signature: String(req.headers["webhook-signature"]),
        body,
        status,
      });
      res.writeHead(status).end();
      for (const w of waiters) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    /** Resolves once `done(received)` holds; rejects after `ms`. */
    until(done: (r: Received[]) => boolean, ms = 20_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `receiver: condition not met within ${ms} ms; got ${received.map((r) => `${JSON.parse(r.body).type}:${r.status}`).join(", ")}`,
              ),
            ),
          ms,
        );
        const check = () => {
          if (!done(received)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

async function setup(t: Parameters<typeof build>[0], processor: Parameters<typeof fakeWorker>[1]) {
  const redis = await startRedis();
  // After hooks run in order: the app closes (build's hook), then the workers, then Redis.
  const { app, config } = await build(t, { REDIS_URL: redis.url, WEBHOOK_ALLOW_PRIVATE: "1", WEBHOOK_RETRY_BACKOFF_MS: "100" });
  const datasetId = await readyDataset(config, "default", { cat: 4, dog: 4 });
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const db = jobRedis(connection, config);
  const log = createLogger("silent");
  const training = fakeWorker(config, processor);
  const queue = createWebhookQueue(connection, config);
  emitTrainingWebhooks(training, { webhooks: createJobWebhooks({ queue, db }), db, log });
  const deliveries = createWebhookWorker({ config, connection, db, log });
  t.after(async () => {
    await training.close();
    await deliveries.close();
    await queue.close();
    connection.disconnect();
    await redis.stop();
  });
  const httpClient = supertest(app.server);
  const secret = (await httpClient.get("/v1/webhook-secret")).body.secret as string;
  return { http: httpClient, datasetId, secret, db };
}

test("every event of a job reaches the receiver signed and in order; a delivery answered 500 is retried with the same id", {
  timeout: 60_000,
}, async (t) => {
  const {
    http: api,
    datasetId,
    secret,
    db,
  } = await setup(t, async (job) => {
    await setJobInfo(db, job.data.jobId, { modelId: "mdl_fixture" });
    return { modelId: "mdl_fixture" };
  });
  let failedOnce = false;
  const hook = await receiver(t, (_n, body) => {
    if (JSON.parse(body).type === "job.completed" && !failedOnce) {
      failedOnce = true;
      return 500;
    }
    return 204;
  });

  const secretRes = await api.get("/v1/webhook-secret");
  assertDocumented(secretRes, "GET", "/v1/webhook-secret");
  const created = await api.post("/v1/jobs").send({ datasetId, baseWeights: "none", webhook: { url: hook.url } });
  assert.equal(created.status, 202, created.text);
  const jobId = created.body.id;
  assert.deepEqual(created.body.spec.webhook.events, ["job.queued", "job.running", "job.completed", "job.failed", "job.cancelled"]);

  await hook.until((r) => r.some((x) => x.status === 204 && JSON.parse(x.body).type === "job.completed"));

  for (const r of hook.received) {
    assert.ok(verifyWebhook(secret, r, r.body), `signature of ${r.id}`);
    assert.ok(!verifyWebhook(secret, r, r.body.replace(jobId, "job_other")), "a changed body fails verification");
    assert.ok(Math.abs(Number(r.timestamp) - Date.now() / 1000) < 60);
  }
  const events = hook.received.map((r) => ({ ...JSON.parse(r.body), status: r.status, id: r.id }));
  assert.deepEqual(
    events.map((e) => [e.type, e.status]),
    [
      ["job.queued", 204],
      ["job.running", 204],
      ["job.completed", 500],
      ["job.completed", 204],
    ],
  );
  assert.equal(events[2].id, events[3].id, "a retry is the same message");
  assert.equal(new Set(events.map((e) => e.id)).size, 3);
  for (const e of events) assert.equal(e.data.jobId, jobId);
  assert.equal(events[3].data.modelId, "mdl_fixture");
  assert.deepEqual(
    events.map((e) => e.data.state),
    ["queued", "running", "completed", "completed"],
  );

  const log = await api.get(`/v1/jobs/${jobId}/webhook-deliveries`);
  assertDocumented(log, "GET", "/v1/jobs/:id/webhook-deliveries");
  assert.deepEqual(
    log.body.items.map((a: { type: string; attempt: number; ok: boolean; statusCode: number }) => [a.type, a.attempt, a.ok, a.statusCode]),
    [
      ["job.queued", 1, true, 204],
      ["job.running", 1, true, 204],
      ["job.completed", 1, false, 500],
      ["job.completed", 2, true, 204],
    ],
  );
});

test("a job that fails sends job.failed with its error, and only the events the spec asks for", { timeout: 60_000 }, async (t) => {
  const {
    http: api,
    datasetId,
    secret,
    db,
  } = await setup(t, async (job) => {
    await setJobInfo(db, job.data.jobId, { error: { code: "TRAINING_DIVERGED", message: "loss NaN" } });
    throw new UnrecoverableError("loss NaN");
  });
  const hook = await receiver(t, () => 200);
  const created = await api.post("/v1/jobs").send({ datasetId, baseWeights: "none", webhook: { url: hook.url, events: ["job.failed"] } });
  assert.equal(created.status, 202, created.text);
  await hook.until((r) => r.length >= 1);
  const [only] = hook.received;
  assert.ok(verifyWebhook(secret, only, only.body));
  const event = JSON.parse(only.body);
  assert.equal(event.type, "job.failed");
  assert.deepEqual(event.data.error, { code: "TRAINING_DIVERGED", message: "loss NaN" });
});

test("webhook URLs on private, loopback and link-local addresses are refused with WEBHOOK_URL_REFUSED", async (t) => {
  const { app, config } = await build(t);
  const datasetId = await readyDataset(config, "default", { cat: 4, dog: 4 });
  for (const url of [
    "http://127.0.0.1:9/x",
    "http://localhost/x",
    "http://169.254.169.254/latest",
    "http://10.1.2.3/",
    "http://[::1]/",
    "http://192.168.0.10/",
  ]) {
    const res = await supertest(app.server).post("/v1/jobs").send({ datasetId, baseWeights: "none", webhook: { url } });
    assert.equal(res.status, 422, url);
    assert.equal(res.body.error.code, "WEBHOOK_URL_REFUSED", url);
    assertDocumented(res, "POST", "/v1/jobs");
  }
  const notHttp = await supertest(app.server)
    .post("/v1/jobs")
    .send({ datasetId, baseWeights: "none", webhook: { url: "file:///etc/passwd" } });
  assert.equal(notHttp.status, 400);
  assert.equal(notHttp.body.error.code, "VALIDATION_FAILED");
  for (const address of ["127.0.0.1", "::1", "::ffff:10.0.0.1", "fe80::1", "172.20.1.1", "100.64.0.1", "0.0.0.0"])
    assert.ok(isPrivateAddress(address), address);
  for (const address of ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1"]) assert.ok(!isPrivateAddress(address), address);
});

test("at delivery, the address actually connected to is checked: a name resolving to loopback is refused", async (t) => {
  let hits = 0;
  const hook = await receiver(t, () => {
    hits++;
    return 200;
  });
  const port = new URL(hook.url).port;
  const delivery = { eventId: "msg_x", body: "{}" };
  await assert.rejects(postWebhook({ ...delivery, url: `http://localhost:${port}/hook` }, "whsec_AAAA", false), {
    code: "WEBHOOK_URL_REFUSED",
  });
  await assert.rejects(postWebhook({ ...delivery, url: `http://127.0.0.1:${port}/hook` }, "whsec_AAAA", false), {
    code: "WEBHOOK_URL_REFUSED",
  });
  assert.equal(hits, 0);
  assert.equal(await postWebhook({ ...delivery, url: `http://localhost:${port}/hook` }, "whsec_AAAA", true), 200);
  assert.equal(hits, 1);
});

test("signatures follow the Standard Webhooks example", () => {
  // The example of the Standard Webhooks specification (its reference libraries' test vector).
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const body = '{"test": 2432232314}';
  assert.equal(signWebhook(secret, id, 1614265330, body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
});
