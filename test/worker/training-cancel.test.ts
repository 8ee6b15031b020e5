// The worker with the real training processor in its sandboxed child, on a
// real Redis, at 32 px: a cancel relayed over pub/sub stops the job at a batch
// boundary, keeping its checkpoints. (kill -9 of the child: test/e2e.)
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { QueueEvents } from "bullmq";
import { startRedis } from "../helpers/redis.js";
import { testConfig } from "../helpers/app.js";
import { storeDataset, smallSpec } from "../helpers/training-fixtures.js";
import { createLogger } from "../../src/log.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { createRedis } from "../../src/jobs/redis.js";
import { jobRedis, readEpochMetrics, readJobRecord } from "../../src/jobs/job-records.js";
import { onCancel, requestCancel } from "../../src/jobs/cancel.js";
import { createTrainingQueue, TRAINING_QUEUE, type JobProgress } from "../../src/jobs/training-queue.js";
import type { JobSpec } from "../../src/jobs/job-spec.js";
import { createTrainingWorker } from "../../src/worker/training-worker.js";
import { STOP_REASON } from "../../src/worker/stop-reasons.js";
import { listCheckpoints } from "../../src/training/checkpoints.js";
import { CANCELLED_MESSAGE } from "../../src/worker/training-processor.js";
import { createJobRecord, enqueueTrainingJob } from "../helpers/jobs.js";

const TENANT = "default";
const redis = await startRedis();
const env = { REDIS_URL: redis.url, WORKER_LOCK_DURATION_MS: "3000", WORKER_STALLED_INTERVAL_MS: "1000", RETRY_BACKOFF_MS: "100" };
const config = await testConfig(env);
const storage = createLocalStorage(config.dataDir);
// BullMQ leaves connections it is given open: the test closes them.
const connections = [1, 2, 3, 4].map(() => createRedis(redis.url, "consumer"));
const db = jobRedis(connections[0], config);
const queue = createTrainingQueue(connections[1], config);
const events = new QueueEvents(TRAINING_QUEUE, { connection: connections[2], prefix: config.redisPrefix });
const training = createTrainingWorker({
  config,
  connection: connections[3],
  db,
  log: createLogger("silent"),
  env: { ...env, DATA_DIR: config.dataDir, LOG_LEVEL: "silent" },
});
const stopListening = await onCancel(db, (jobId) => training.stopJob(jobId, STOP_REASON.cancel));
const dataset = await storeDataset(storage, config, TENANT);

test.after(async () => {
  await stopListening();
  await training.shutdown();
  await events.close();
  await queue.close();
  for (const c of connections) c.disconnect();
  await redis.stop();
  await fs.rm(config.dataDir, { recursive: true, force: true });
});

async function submit(jobId: string, spec: JobSpec): Promise<void> {
  const createdAt = new Date().toISOString();
  await createJobRecord(db, { jobId, tenant: TENANT, spec, createdAt });
  await enqueueTrainingJob(queue, { jobId, tenant: TENANT, spec, createdAt });
}

/** Calls `act` on the job's progress updates until it returns true. */
function onProgress(jobId: string, act: (p: JobProgress) => boolean | Promise<boolean>): Promise<void> {
  return new Promise((resolve, reject) => {
    const listener = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
      if (id !== jobId) return;
      Promise.resolve(act(data as JobProgress)).then((done) => {
        if (!done) return;
        events.off("progress", listener);
        resolve();
      }, reject);
    };
    events.on("progress", listener);
  });
}

test("a cancel stops the running job at a batch boundary, records it cancelled and keeps its checkpoints", {
  timeout: 180_000,
}, async () => {
  const jobId = "job_cancelled";
  const cancelled = onProgress(jobId, async (p) => {
    if (p.checkpoint?.epoch !== 1) return false;
    await requestCancel(db, jobId);
    return true;
  });
  await submit(jobId, smallSpec(dataset.id, { epochs: 20 }));
  await cancelled;
  const job = (await queue.getJob(jobId))!;
  await assert.rejects(job.waitUntilFinished(events, 120_000), new RegExp(CANCELLED_MESSAGE));
  const finished = (await queue.getJob(jobId))!;
  assert.equal(finished.attemptsMade, 1);
  assert.ok((await readJobRecord(db, jobId))?.cancelledAt);
  const epochs = (await readEpochMetrics(db, jobId)).length;
  assert.ok(epochs >= 1 && epochs <= 2, `${epochs} epochs ran`);
  assert.ok((await listCheckpoints(storage, TENANT, jobId)).length >= 1);
});
