// Training children run client-supplied data: they get an allow-listed environment, never the
// worker's credentials.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import { createLogger } from "../../src/log.js";
import { jobRedis } from "../../src/jobs/job-records.js";
import { TRAINING_QUEUE } from "../../src/jobs/training-queue.js";
import { createTrainingWorker } from "../../src/worker/training-worker.js";
import { ORT_MALLOC_ENV } from "../../src/engine/onnx/ort-session.js";
import { testConfig } from "../helpers/app.js";
import { startRedis } from "../helpers/redis.js";

const echoProcessor = fileURLToPath(new URL("../worker/fixtures/echo-processor.ts", import.meta.url));

const SECRETS = {
  API_KEYS: "acme:secret-acme-key",
  ADMIN_KEYS: "ops:secret-admin-key",
  METRICS_TOKEN: "secret-metrics-token",
  WEBHOOK_SECRET: "secret-webhook",
  AWS_SECRET_ACCESS_KEY: "secret-aws",
};

async function environOf(pid: number): Promise<Map<string, string>> {
  const raw = await fs.readFile(`/proc/${pid}/environ`, "utf8");
  return new Map(
    raw
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

test("the training child's environment holds the settings it needs and none of the worker's secrets", { timeout: 60_000 }, async (t) => {
  const saved = { ...process.env };
  Object.assign(process.env, SECRETS, { UNRELATED_VARIABLE: "x" });
  t.after(() => {
    for (const name of [...Object.keys(SECRETS), "UNRELATED_VARIABLE"]) delete process.env[name];
    Object.assign(process.env, saved);
  });
  const redis = await startRedis();
  const config = await testConfig({ REDIS_URL: redis.url });
  const connections = [1, 2, 3].map(() => new Redis(redis.url, { maxRetriesPerRequest: null }));
  const queue = new Queue(TRAINING_QUEUE, { connection: connections[0], prefix: config.redisPrefix });
  const events = new QueueEvents(TRAINING_QUEUE, { connection: connections[1], prefix: config.redisPrefix });
  await events.waitUntilReady();
  const tw = createTrainingWorker({
    config,
    connection: connections[2],
    db: jobRedis(connections[2], config),
    log: createLogger("silent"),
    processorFile: echoProcessor,
    env: { REDIS_URL: redis.url, DATA_DIR: config.dataDir },
  });
  t.after(async () => {
    await tw.shutdown();
    await events.close();
    await queue.close();
    for (const c of connections) c.disconnect();
    await redis.stop();
    await fs.rm(config.dataDir, { recursive: true, force: true });
  });

  const job = await queue.add("train", { value: 1 });
  const { pid } = (await job.waitUntilFinished(events, 30_000)) as { pid: number };
  assert.notEqual(pid, process.pid);
  // BullMQ keeps the child for the next job, so its environment can be read from outside.
  const env = await environOf(pid);
  for (const name of [...Object.keys(SECRETS), "UNRELATED_VARIABLE"]) assert.equal(env.has(name), false, `${name} reached the child`);
  const all = [...env.values()].join("\n");
  for (const value of Object.values(SECRETS)) assert.equal(all.includes(value), false, "a secret's value reached the child");
  assert.equal(env.get("REDIS_URL"), redis.url);
  assert.equal(env.get("DATA_DIR"), config.dataDir);
  assert.ok(env.has("PATH"));
  // TRAINING_ENGINE is auto: the child may run the tail's step on ONNX Runtime, which needs glibc's settings from its start.
  assert.equal(config.trainingEngine, "auto");
  for (const [name, value] of Object.entries(ORT_MALLOC_ENV)) assert.equal(env.get(name), value, `${name} in the child`);
});
