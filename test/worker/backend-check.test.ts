// A worker whose TFJS_BACKEND cannot load refuses to start (exit 1, a fatal
// log line with the reason) and takes no job; a loadable backend is reported.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/app.js";
import { startService } from "../helpers/processes.js";
import { checkBackend } from "../../src/worker/backend-check.js";
import { TRAINING_QUEUE } from "../../src/jobs/training-queue.js";
import { AppError } from "../../src/errors.js";

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const tfjsNodeMissing = !installed("@tensorflow/tfjs-node");

test("checkBackend('wasm') reports wasm, loaded in a child process", { timeout: 60_000 }, async () => {
  assert.deepEqual(await checkBackend("wasm"), { name: "wasm", skipped: [] });
});

test("a worker with TFJS_BACKEND=tensorflow and no tfjs-node exits 1 with BACKEND_UNAVAILABLE and leaves the queued job alone", {
  timeout: 90_000,
  skip: tfjsNodeMissing ? false : "@tensorflow/tfjs-node is installed here, so the tensorflow backend loads",
}, async (t) => {
  const redis = await startRedis();
  const dataDir = await tempDir("rf-backend-check-");
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(TRAINING_QUEUE, { connection, prefix: "rf" });
  t.after(async () => {
    await queue.close();
    connection.disconnect();
    await redis.stop();
  });
  const job = await queue.add("train", { jobId: "job_x" });

  const worker = startService("worker", "src/worker.ts", {
    REDIS_URL: redis.url,
    DATA_DIR: dataDir,
    TFJS_BACKEND: "tensorflow",
    LOG_LEVEL: "info",
  });
  const code = await new Promise<number | null>((resolve) => worker.child.once("exit", (c) => resolve(c)));
  assert.equal(code, 1, worker.output);
  const lines = worker.output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const fatal = lines.find((l) => l.level === 60);
  assert.ok(fatal, worker.output);
  assert.equal(fatal.code, "BACKEND_UNAVAILABLE");
  assert.equal(fatal.requested, "tensorflow");
  assert.match(String(fatal.reason), /@tensorflow\/tfjs-node/);
  assert.ok(!lines.some((l) => l.msg === "worker started"), "the worker must not start consuming");
  assert.equal(await queue.getJobState(job.id!), "waiting");
  assert.equal((await queue.getJob(job.id!))?.attemptsMade, 0);
});

test("checkBackend rejects a backend that cannot load with BACKEND_UNAVAILABLE", {
  timeout: 60_000,
  skip: tfjsNodeMissing ? false : "@tensorflow/tfjs-node is installed here",
}, async () => {
  await assert.rejects(checkBackend("tensorflow"), (err: unknown) => err instanceof AppError && err.code === "BACKEND_UNAVAILABLE");
});
