// Every file a resume reads is checked before it is trained on: a damaged
// checkpoint (weights, Adam state, manifest) is skipped for the one before it,
// or for a fresh start; a damaged decoded-image or feature cache is rebuilt.
// Either way the job completes with the metrics of an undamaged run.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { startRedis } from "../helpers/redis.js";
import { testConfig } from "../helpers/app.js";
import { storeDataset, smallSpec } from "../helpers/training-fixtures.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { createRedis } from "../../src/jobs/redis.js";
import { jobRedis, readEpochMetrics } from "../../src/jobs/job-records.js";
import type { EpochMetrics } from "../../src/training/epoch-metrics.js";
import type { JobProgress } from "../../src/jobs/training-queue.js";
import type { JobSpec } from "../../src/jobs/job-spec.js";
import { createLogger } from "../../src/log.js";
import { runTraining, type TrainingDeps } from "../../src/worker/run-training.js";
import { checkpointKey, checkpointProblem, listCheckpoints, MANIFEST_FILE, OPTIMIZER_FILE } from "../../src/training/checkpoints.js";
import { STOP_REASON } from "../../src/worker/stop-reasons.js";
import { datasetKeys } from "../../src/datasets/dataset-store.js";
import { storageKeys } from "../../src/storage/keys.js";
import { createJobRecord } from "../helpers/jobs.js";

const TENANT = "acme";
const redis = await startRedis();
const config = await testConfig({ REDIS_URL: redis.url, FEATURE_CACHE: "on" });
const storage = createLocalStorage(config.dataDir);
const connection = createRedis(redis.url, "consumer");
const db = jobRedis(connection, config);
const deps: TrainingDeps = { config, storage, db, log: createLogger("silent") };
const dataset = await storeDataset(storage, config, TENANT);

test.after(async () => {
  connection.disconnect();
  await redis.stop();
  await fs.rm(config.dataDir, { recursive: true, force: true });
});

// Trainable conv and BN layers and Adam moments that matter: a wrong resume shows in the metrics.
const spec: JobSpec = smallSpec(dataset.id, {
  unfrozenLayers: 10,
  learningRate: 1e-3,
  epochs: 3,
  seed: 3,
  head: { pooling: "flatten", denseUnits: 16, dropout: 0.5 },
});

function fakeJob(jobId: string, onProgress: (p: JobProgress) => void = () => {}) {
  return {
    id: jobId,
    data: { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() },
    attemptsMade: 0,
    async updateProgress(p: JobProgress) {
      onProgress(p);
    },
  };
}

function learned(metrics: EpochMetrics[]) {
  return metrics.map(({ epoch, loss, accuracy, valLoss, valAccuracy }) => ({ epoch, loss, accuracy, valLoss, valAccuracy }));
}

/** Runs the job to completion; returns the epochs it trained (those with batch progress or metrics). */
async function runToEnd(jobId: string): Promise<number[]> {
  const epochs = new Set<number>();
  const outcome = await runTraining(
    deps,
    fakeJob(jobId, (p) => p.metrics && epochs.add(p.metrics.epoch)),
  );
  assert.equal(outcome.status, "completed");
  return [...epochs].sort();
}

/** Trains the job until its epoch-2 checkpoint is stored, then stops it as a shutdown would. */
async function stopAfterEpoch2(jobId: string): Promise<void> {
  await createJobRecord(db, { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() });
  const stop = new AbortController();
  const outcome = await runTraining(
    deps,
    fakeJob(jobId, (p) => p.checkpoint?.epoch === 2 && stop.abort(STOP_REASON.shutdown)),
    stop.signal,
  );
  assert.deepEqual(outcome, { status: "stopped", reason: "shutdown", epochsDone: 2 });
  assert.deepEqual(
    (await listCheckpoints(storage, TENANT, jobId)).map((c) => c.epoch),
    [1, 2],
  );
}

async function flipByte(file: string): Promise<void> {
  const bytes = await fs.readFile(file);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  await fs.writeFile(file, bytes);
}

async function truncateHalf(file: string): Promise<void> {
  await fs.truncate(file, Math.floor((await fs.stat(file)).size / 2));
}

const localPath = (key: string) => storage.localPath(key);
const weightShard = async (jobId: string, epoch: number) =>
  localPath((await storage.list(checkpointKey(TENANT, jobId, epoch))).find((o) => /group1-shard1of\d+\.bin$/.test(o.key))!.key);

await createJobRecord(db, { jobId: "job_reference", tenant: TENANT, spec, createdAt: new Date().toISOString() });
assert.deepEqual(await runToEnd("job_reference"), [1, 2, 3]);
const reference = learned(await readEpochMetrics(db, "job_reference"));

const damagedCheckpoints: { name: string; damage: (jobId: string) => Promise<void>; resumedAfter: number }[] = [
  { name: "a weight shard of epoch 2 with a flipped byte", damage: async (id) => flipByte(await weightShard(id, 2)), resumedAfter: 1 },
  {
    name: "epoch 2's Adam state cut in half",
    damage: async (id) => truncateHalf(await localPath(checkpointKey(TENANT, id, 2, OPTIMIZER_FILE))),
    resumedAfter: 1,
  },
  {
    name: "epoch 2's manifest cut in half",
    damage: async (id) => truncateHalf(await localPath(checkpointKey(TENANT, id, 2, MANIFEST_FILE))),
    resumedAfter: 1,
  },
  {
    name: "both checkpoints damaged",
    damage: async (id) => {
      await flipByte(await weightShard(id, 1));
      await truncateHalf(await localPath(checkpointKey(TENANT, id, 2, OPTIMIZER_FILE)));
    },
    resumedAfter: 0,
  },
];

for (const [i, { name, damage, resumedAfter }] of damagedCheckpoints.entries()) {
  test(`${name}: the resume skips it (${resumedAfter ? `from epoch ${resumedAfter}` : "a fresh start"}) and ends with the undamaged run's metrics`, {
    timeout: 240_000,
  }, async () => {
    const jobId = `job_damaged_${i}`;
    await stopAfterEpoch2(jobId);
    await damage(jobId);
    const trained = await runToEnd(jobId);
    assert.deepEqual(
      trained,
      [1, 2, 3].filter((e) => e > resumedAfter),
    );
    assert.deepEqual(learned(await readEpochMetrics(db, jobId)), reference);
    // The damaged checkpoints were replaced by good ones as the epochs ran again.
    const kept = await listCheckpoints(storage, TENANT, jobId);
    assert.deepEqual(
      kept.map((c) => c.epoch),
      [1, 2, 3],
    );
    for (const manifest of kept) assert.equal(await checkpointProblem(storage, TENANT, jobId, manifest), null);
  });
}

/** The two dataset caches training reads: decoded pixels and frozen-trunk features. */
async function cacheFiles(): Promise<string[]> {
  const features = (await storage.list(storageKeys.datasetFeatures(TENANT, dataset.id))).filter((o) => o.key.endsWith(".bin"));
  assert.equal(features.length, 1);
  return [await localPath(datasetKeys(TENANT, dataset.id).decoded(spec.imageSize)), await localPath(features[0].key)];
}

for (const [name, damage] of [
  ["a flipped byte", flipByte],
  ["cut in half", truncateHalf],
] as const) {
  test(`decoded-image and feature caches with ${name} are rebuilt before training, which ends with the undamaged run's metrics`, {
    timeout: 240_000,
  }, async () => {
    const files = await cacheFiles();
    const good = await Promise.all(files.map((f) => fs.readFile(f)));
    for (const file of files) await damage(file);
    const jobId = `job_cache_${name.replace(/\W/g, "_")}`;
    await createJobRecord(db, { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() });
    await runToEnd(jobId);
    assert.deepEqual(learned(await readEpochMetrics(db, jobId)), reference);
    const rebuilt = await Promise.all(files.map((f) => fs.readFile(f)));
    for (const [i, bytes] of rebuilt.entries()) assert.ok(bytes.equals(good[i]), `${files[i]} was not rebuilt`);
  });
}

test("torn records of the caches (the decoded cache's digest, the feature cache's meta) make them rebuilt, not a failed job", {
  timeout: 240_000,
}, async () => {
  const features = (await storage.list(storageKeys.datasetFeatures(TENANT, dataset.id))).filter((o) => o.key.endsWith(".json"));
  assert.equal(features.length, 1);
  const records = [await localPath(datasetKeys(TENANT, dataset.id).decodedDigest(spec.imageSize)), await localPath(features[0].key)];
  for (const record of records) await truncateHalf(record);
  const jobId = "job_cache_torn_records";
  await createJobRecord(db, { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() });
  await runToEnd(jobId);
  assert.deepEqual(learned(await readEpochMetrics(db, jobId)), reference);
  // Whole again: the decoded cache's digest is the record itself, the feature cache's sits in its meta.
  const [decodedDigest, featureMeta] = await Promise.all(records.map(async (r) => JSON.parse(await fs.readFile(r, "utf8"))));
  assert.match(decodedDigest.sha256, /^[0-9a-f]{64}$/);
  assert.match(featureMeta.digest.sha256, /^[0-9a-f]{64}$/);
});
