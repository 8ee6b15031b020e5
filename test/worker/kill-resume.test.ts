// kill -9 of the real sandboxed training child in epoch 2, with trainable
// convolutions and BatchNormalization (unfrozenLayers 10): the retried attempt
// resumes from the epoch-1 checkpoint and must continue exactly as an
// uninterrupted run of the same spec: with the tail's steps on ONNX Runtime,
// on the feature-cache path and without it, and on TF.js.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import { startRedis } from "../helpers/redis.js";
import { testConfig } from "../helpers/app.js";
import { descendants } from "../helpers/processes.js";
import { storeDataset, smallSpec } from "../helpers/training-fixtures.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { createLogger } from "../../src/log.js";
import { createTrainingWorker } from "../../src/worker/training-worker.js";
import { createTrainingQueue, TRAINING_QUEUE, type JobProgress } from "../../src/jobs/training-queue.js";
import { jobRedis, readEpochMetrics, readJobRecord } from "../../src/jobs/job-records.js";
import type { EpochMetrics } from "../../src/training/epoch-metrics.js";
import type { JobSpec } from "../../src/jobs/job-spec.js";
import { createJobRecord, enqueueTrainingJob } from "../helpers/jobs.js";

const TENANT = "acme";
const redis = await startRedis();
// A killed attempt is retried at once.
const config = await testConfig({ REDIS_URL: redis.url, RETRY_BACKOFF_MS: "100" });
const storage = createLocalStorage(config.dataDir);
const connections = [1, 2, 3, 4].map(() => new Redis(redis.url, { maxRetriesPerRequest: null }));
const db = jobRedis(connections[0], config);
const queue = createTrainingQueue(connections[1], config);
const events = new QueueEvents(TRAINING_QUEUE, { connection: connections[2], prefix: config.redisPrefix });
await events.waitUntilReady();
const dataset = await storeDataset(storage, config, TENANT);

test.after(async () => {
  await events.close();
  await queue.close();
  for (const c of connections) c.disconnect();
  await redis.stop();
  await fs.rm(config.dataDir, { recursive: true, force: true });
});

/** The reproduction's recipe, small: trainable conv and BN layers, Adam moments that matter at 1e-3. */
const spec: JobSpec = smallSpec(dataset.id, {
  unfrozenLayers: 10,
  learningRate: 1e-3,
  epochs: 3,
  batchSize: 4,
  seed: 3,
  head: { pooling: "flatten", denseUnits: 16, dropout: 0.5 },
});

/** What an uninterrupted and a resumed run must share: everything but the clock. */
function learned(metrics: EpochMetrics[]) {
  return metrics.map(({ epoch, loss, accuracy, valLoss, valAccuracy }) => ({ epoch, loss, accuracy, valLoss, valAccuracy }));
}

/** The sandboxed children BullMQ forked under this process. */
function trainingChildPids(): number[] {
  return descendants(process.pid)
    .filter((p) => /bullmq.*classes[/\\]main\.js/.test(p.args))
    .map((p) => p.pid);
}

async function enqueue(jobId: string): Promise<void> {
  const payload = { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() };
  await createJobRecord(db, payload);
  await enqueueTrainingJob(queue, payload);
}

async function finished(jobId: string) {
  const job = await queue.getJob(jobId);
  assert.ok(job);
  await job.waitUntilFinished(events, 240_000);
  return (await queue.getJob(jobId))!;
}

const RUNS = [
  { engine: "onnxruntime", featureCache: "on" },
  { engine: "onnxruntime", featureCache: "off" },
  { engine: "tfjs", featureCache: "on" },
] as const;

for (const { engine, featureCache } of RUNS) {
  test(`TRAINING_ENGINE=${engine} FEATURE_CACHE=${featureCache}: a training child killed in epoch 2 resumes to per-epoch metrics identical to an uninterrupted run`, {
    timeout: 480_000,
  }, async (t) => {
    const env = {
      REDIS_URL: redis.url,
      DATA_DIR: config.dataDir,
      LOG_LEVEL: "silent",
      FEATURE_CACHE: featureCache,
      TRAINING_ENGINE: engine,
    };
    const tw = createTrainingWorker({
      config,
      connection: connections[3],
      db: jobRedis(connections[3], config),
      log: createLogger("silent"),
      env,
    });
    t.after(() => tw.shutdown());

    await enqueue(`job_straight_${engine}_${featureCache}`);
    const straight = await finished(`job_straight_${engine}_${featureCache}`);
    assert.equal(straight.attemptsMade, 1);

    const jobId = `job_killed_${engine}_${featureCache}`;
    const afterKill: JobProgress[] = [];
    let killed: number | undefined;
    const onProgress = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
      if (id !== jobId) return;
      const progress = data as JobProgress;
      if (killed !== undefined) afterKill.push(progress);
      // Epoch 1's metrics are sent after its checkpoint is written, as epoch 2 starts.
      if (killed === undefined && progress.metrics?.epoch === 1) {
        const pids = trainingChildPids();
        assert.equal(pids.length, 1, `training children: ${pids.join(", ")}`);
        killed = pids[0];
        process.kill(killed, "SIGKILL");
      }
    };
    events.on("progress", onProgress);
    t.after(() => events.off("progress", onProgress));
    await enqueue(jobId);
    const resumed = await finished(jobId);

    assert.ok(killed, "the job never reported epoch 1's metrics");
    assert.equal(resumed.attemptsMade, 2, "one killed attempt, then the resumed one");
    assert.ok(!afterKill.some((p) => p.metrics?.epoch === 1), "the retry ran epoch 1 again instead of resuming from its checkpoint");
    assert.equal(resumed.returnvalue && typeof resumed.returnvalue, "object");
    for (const id of [straight.id!, jobId]) assert.equal((await readJobRecord(db, id))?.stepEngine, engine, `${id} stepped on ${engine}`);
    const reference = learned(await readEpochMetrics(db, straight.id!));
    assert.deepEqual(
      reference.map((m) => m.epoch),
      [1, 2, 3],
    );
    assert.ok(reference.every((m) => Number.isFinite(m.loss) && Number.isFinite(m.valLoss)));
    // Bit for bit: deepEqual compares numbers with Object.is.
    assert.deepEqual(learned(await readEpochMetrics(db, jobId)), reference);
  });
}
