// Jobs in tests: a ready dataset record to train on, the ImageNet file stand-in,
// a BullMQ worker whose processor the test writes (no training), and the real
// training worker with the queue's events to wait on.
import fs from "node:fs/promises";
import path from "node:path";
import { QueueEvents, Worker, type Job } from "bullmq";
import type { Config } from "../../src/config.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { datasetKeys, newDatasetId, type DatasetRecord } from "../../src/datasets/dataset-store.js";
import { TRAINING_JOB_NAME, TRAINING_QUEUE, type TrainingJobPayload, type TrainingQueue } from "../../src/jobs/training-queue.js";
import { createRedis, redisOptions } from "../../src/jobs/redis.js";
import { jobRedis, writeJobRecord, type JobRedis } from "../../src/jobs/job-records.js";
import type { JobSpec } from "../../src/jobs/job-spec.js";
import { createLogger } from "../../src/log.js";
import { createTrainingWorker } from "../../src/worker/training-worker.js";

/** Stores a ready dataset record for `tenant` with `counts` images per class (no image bytes: jobs never reach training here). */
export async function readyDataset(config: Config, tenant: string, counts: Record<string, number>): Promise<string> {
  const id = newDatasetId();
  const classes = Object.keys(counts).sort();
  const record: DatasetRecord = {
    id,
    name: "fixture",
    status: "ready",
    classes,
    counts,
    imageCount: Object.values(counts).reduce((a, b) => a + b, 0),
    split: "random",
    rejected: [],
    duplicates: { sameClass: [], conflicts: [] },
    bytes: 0,
    createdAt: new Date().toISOString(),
    subsetCounts: null,
  };
  await createLocalStorage(config.dataDir).put(datasetKeys(tenant, id).record, JSON.stringify(record));
  return id;
}

/** The API only checks that the ImageNet weights file exists. */
export async function placeImagenetWeights(config: Config): Promise<void> {
  await fs.mkdir(path.dirname(config.imagenetWeights), { recursive: true });
  await fs.writeFile(config.imagenetWeights, "stand-in");
}

export function fakeWorker(config: Config, processor: (job: Job<TrainingJobPayload>) => Promise<unknown>): Worker<TrainingJobPayload> {
  return new Worker<TrainingJobPayload>(TRAINING_QUEUE, processor, {
    connection: { url: config.redisUrl, ...redisOptions("consumer") },
    prefix: config.redisPrefix,
    concurrency: 1,
  });
}

/** Resolves with the first emission of `event` matching `accept`, or rejects after `ms`. */
export function nextEvent<T extends unknown[]>(
  emitter: { on(e: string, f: (...a: T) => void): unknown; off(e: string, f: (...a: T) => void): unknown },
  event: string,
  accept: (...args: T) => boolean = () => true,
  ms = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    const on = (...args: T) => {
      if (!accept(...args)) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(args);
    };
    emitter.on(event, on);
  });
}

/** Polls `check` every 10 ms until it holds, failing after `ms`: for states nothing notifies a test of. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The real training worker (sandboxed children on wasm) on `config`'s Redis and data dir, and the queue's events. */
export async function startTrainingWorker(config: Config): Promise<{ events: QueueEvents; close(): Promise<void> }> {
  const connection = { url: config.redisUrl, ...redisOptions("consumer") };
  const events = new QueueEvents(TRAINING_QUEUE, { connection, prefix: config.redisPrefix });
  await events.waitUntilReady();
  const records = createRedis(config.redisUrl, "consumer");
  const worker = createTrainingWorker({
    config,
    connection,
    db: jobRedis(records, config),
    log: createLogger("silent"),
    env: { REDIS_URL: config.redisUrl, DATA_DIR: config.dataDir, TFJS_BACKEND: "wasm", LOG_LEVEL: "silent" },
  });
  return {
    events,
    async close() {
      await worker.shutdown();
      records.disconnect();
      await events.close();
    },
  };
}

/** A job's record alone, without a queue entry: the worker's tests queue their jobs themselves. */
export async function createJobRecord(
  db: JobRedis,
  job: { jobId: string; tenant: string; spec: JobSpec; createdAt: string },
): Promise<void> {
  const multi = db.redis.multi();
  writeJobRecord({ hset: (key, data) => multi.hset(key, data), runCommand: (name, args) => multi.call(name, ...args) }, db, job);
  await multi.exec();
}

/** Queues a job whose record exists (the API does both in one transaction). */
export async function enqueueTrainingJob(queue: TrainingQueue, payload: TrainingJobPayload): Promise<void> {
  await queue.add(TRAINING_JOB_NAME, payload, { jobId: payload.jobId });
}
