// A job trained on each engine: the frozen trunk computed by TF.js or by
// ONNX Runtime, with the feature cache and without it, gives the same metrics.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { startRedis } from "../../helpers/redis.js";
import { testConfig } from "../../helpers/app.js";
import { storeDataset, smallSpec } from "../../helpers/training-fixtures.js";
import { createLocalStorage } from "../../../src/storage/local-storage.js";
import { createRedis } from "../../../src/queue/redis.js";
import { jobRedis, readEpochMetrics, readJobRecord } from "../../../src/queue/job-records.js";
import type { EpochMetrics } from "../../../src/training/epoch-metrics.js";
import { createLogger } from "../../../src/log.js";
import { runTraining } from "../../../src/worker/run-training.js";
import { createJobRecord } from "../../helpers/jobs.js";

const TENANT = "acme";
const redis = await startRedis();
const connection = createRedis(redis.url, "consumer");
const dirs: string[] = [];

test.after(async () => {
  connection.disconnect();
  await redis.stop();
  for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
});

/** Trains the same spec on the same dataset bytes, in its own DATA_DIR so no feature cache is shared. */
async function trainWith(env: Record<string, string>, jobId: string): Promise<{ metrics: EpochMetrics[]; engine: unknown }> {
  const config = await testConfig({ REDIS_URL: redis.url, ...env });
  dirs.push(config.dataDir);
  const storage = createLocalStorage(config.dataDir);
  const db = jobRedis(connection, config);
  const dataset = await storeDataset(storage, config, TENANT);
  // unfrozenLayers 8: the cut carries two tensors.
  const spec = smallSpec(dataset.id, { unfrozenLayers: 8, epochs: 2, head: { pooling: "flatten", denseUnits: 8, dropout: 0.2 } });
  await createJobRecord(db, { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() });
  const job = { id: jobId, data: { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() }, attemptsMade: 0, updateProgress: async () => {} };
  const outcome = await runTraining({ config, storage, db, log: createLogger("silent") }, job);
  assert.equal(outcome.status, "completed");
  return { metrics: await readEpochMetrics(db, jobId), engine: (await readJobRecord(db, jobId))?.engine };
}

function assertSameMetrics(actual: EpochMetrics[], expected: EpochMetrics[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((m, i) => {
    for (const key of ["loss", "accuracy", "valLoss", "valAccuracy"] as const) {
      const a = m[key] as number;
      const e = expected[i][key] as number;
      assert.ok(Math.abs(a - e) <= 1e-4 * Math.max(1, Math.abs(e)), `epoch ${m.epoch} ${key}: onnxruntime ${a}, tfjs ${e}`);
    }
  });
}

for (const featureCache of ["on", "off"]) {
  test(`a job gives the same per-epoch metrics on onnxruntime as on tfjs within 1e-4 (FEATURE_CACHE=${featureCache}), and its record names the engine`, { timeout: 300_000 }, async () => {
    const tfjs = await trainWith({ TRAINING_ENGINE: "tfjs", FEATURE_CACHE: featureCache }, `job_tfjs_${featureCache}`);
    const ort = await trainWith({ TRAINING_ENGINE: "onnxruntime", FEATURE_CACHE: featureCache }, `job_ort_${featureCache}`);
    assert.equal(tfjs.engine, "tfjs");
    assert.equal(ort.engine, "onnxruntime");
    assertSameMetrics(ort.metrics, tfjs.metrics);
  });
}

test("TRAINING_ENGINE=auto picks onnxruntime on the wasm backend", { timeout: 300_000 }, async () => {
  const { engine } = await trainWith({ TRAINING_ENGINE: "auto", TFJS_BACKEND: "wasm" }, "job_auto");
  assert.equal(engine, "onnxruntime");
});
