import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker, type Job } from "bullmq";
import type { FastifyInstance } from "fastify";
import { build } from "../helpers/app.js";
import { createRedis, redisOptions, waitForRedis } from "../../src/jobs/redis.js";
import { createTrainingQueue, TRAINING_QUEUE, type JobProgress, type TrainingJobPayload } from "../../src/jobs/training-queue.js";
import type { Config } from "../../src/config.js";
import { classFolders, makeZip, multipartBody } from "../helpers/dataset-archives.js";

async function metrics(app: FastifyInstance): Promise<string> {
  const res = await app.inject({ method: "GET", url: "/metrics" });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  return res.body;
}

/** Scrapes until `pattern` shows up: the API learns of worker events asynchronously. */
async function metricsMatching(app: FastifyInstance, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const body = await metrics(app);
    if (pattern.test(body)) return body;
    if (Date.now() > deadline) assert.fail(`no ${pattern} in /metrics within ${timeoutMs} ms:\n${body}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The queue as jobs' producer sees it, on its own connection. */
async function producer(t: { after(fn: () => Promise<void>): void }, config: Config) {
  const redis = createRedis(config.redisUrl, "producer");
  redis.on("error", () => {}); // the app's Redis may be stopped first when the test ends
  const queue = createTrainingQueue(redis, config);
  t.after(async () => {
    await queue.close();
    redis.disconnect();
  });
  assert.ok(await waitForRedis(redis, 5000));
  return queue;
}

const payload = (jobId: string) => ({
  jobId,
  tenant: "default",
  spec: {} as TrainingJobPayload["spec"],
  createdAt: new Date().toISOString(),
});

test("/metrics times HTTP requests by route pattern and status", async (t) => {
  const { app } = await build(t);
  await app.inject({ method: "GET", url: "/healthz" });
  await app.inject({ method: "GET", url: "/healthz" });
  await app.inject({ method: "GET", url: "/no/such/route" });
  const body = await metrics(app);
  assert.match(body, /^http_request_duration_seconds_count\{method="GET",route="\/healthz",status_code="200"\} 2$/m);
  assert.match(body, /^http_request_duration_seconds_count\{method="GET",route="unmatched",status_code="404"\} 1$/m);
  assert.match(body, /^# TYPE http_request_duration_seconds histogram$/m);
  assert.match(body, /^process_cpu_seconds_total /m);
  assert.match(body, /^# TYPE upload_bytes_total counter$/m);
});

test("/metrics counts the bytes of accepted uploads by route, and not refused ones", async (t) => {
  const { app } = await build(t);
  const good = multipartBody(await makeZip(await classFolders(["cat", "dog"], 2)));
  assert.equal((await app.inject({ method: "POST", url: "/v1/datasets", ...good })).statusCode, 201);
  const bad = multipartBody(Buffer.from("not an archive"));
  assert.equal((await app.inject({ method: "POST", url: "/v1/datasets", ...bad })).statusCode >= 400, true);
  const body = await metrics(app);
  assert.match(body, new RegExp(`^upload_bytes_total\\{route="/v1/datasets"\\} ${good.payload.length}$`, "m"));
});

test("/metrics reports the training queue's depth by state, read at scrape time", async (t) => {
  const { app, config } = await build(t);
  const queue = await producer(t, config);
  await queue.add("train", payload("job_a"), { jobId: "job_a" });
  await queue.add("train", payload("job_b"), { jobId: "job_b" });
  await queue.add("train", payload("job_c"), { jobId: "job_c", delay: 60_000 });
  const body = await metrics(app);
  assert.match(body, /^training_queue_jobs\{state="waiting"\} 2$/m);
  assert.match(body, /^training_queue_jobs\{state="delayed"\} 1$/m);
  assert.match(body, /^training_queue_jobs\{state="active"\} 0$/m);
  assert.match(body, /^training_queue_jobs\{state="failed"\} 0$/m);
});

test("/metrics still answers when Redis is down, without queue depth", async (t) => {
  const { app, redis } = await build(t);
  await redis!.stop();
  await app.inject({ method: "GET", url: "/healthz" });
  const body = await metrics(app);
  assert.doesNotMatch(body, /^training_queue_jobs\{/m);
  assert.match(body, /^http_request_duration_seconds_count\{method="GET",route="\/healthz",status_code="200"\} 1$/m);
});

test("epoch metrics, backend and feature cache reported by a worker reach /metrics once per epoch, and so does the job's duration", async (t) => {
  const { app, config } = await build(t);
  const queue = await producer(t, config);
  await metrics(app); // the app's queue events subscription is live before the job runs
  const worker = new Worker<TrainingJobPayload>(
    TRAINING_QUEUE,
    async (job: Job<TrainingJobPayload>) => {
      const epoch = (n: number, seconds: number, imagesPerSecond: number): JobProgress => ({
        epoch: n,
        epochs: 2,
        batch: 4,
        batches: 4,
        fraction: n / 2,
        backend: "wasm",
        featureCache: true,
        metrics: { epoch: n, loss: 1, accuracy: 0.5, valLoss: null, valAccuracy: null, seconds, imagesPerSecond },
      });
      await job.updateProgress({ epoch: 1, epochs: 2, batch: 1, batches: 4, fraction: 0.1, backend: "wasm", featureCache: true });
      await job.updateProgress(epoch(1, 3, 40));
      await job.updateProgress({ ...epoch(1, 3, 40), checkpoint: { epoch: 1 } }); // the same epoch again: not counted twice
      await job.updateProgress(epoch(2, 0.5, 240));
      return { modelId: "m" };
    },
    { connection: { url: config.redisUrl, ...redisOptions("consumer") }, prefix: config.redisPrefix },
  );
  worker.on("error", () => {});
  t.after(() => worker.close());
  await queue.add("train", payload("job_w"), { jobId: "job_w" });

  const body = await metricsMatching(app, /^training_job_duration_seconds_count\{outcome="completed"\} 1$/m);
  assert.match(body, /^training_epochs_total\{backend="wasm",feature_cache="true"\} 2$/m);
  assert.match(body, /^training_epoch_duration_seconds_count\{backend="wasm",feature_cache="true"\} 2$/m);
  assert.match(body, /^training_epoch_duration_seconds_sum\{backend="wasm",feature_cache="true"\} 3\.5$/m);
  assert.match(body, /^training_images_per_second\{backend="wasm",feature_cache="true"\} 240$/m);
  await worker.close();
});
