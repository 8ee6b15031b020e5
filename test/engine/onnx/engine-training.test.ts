// A job trained on each engine: the frozen trunk and the tail's training steps
// computed by TF.js or by ONNX Runtime, with the feature cache and without it.
// Without dropout (whose masks each engine draws its own way) both give the
// same metrics; on ONNX Runtime the job learns and saves the weights it trained.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { startRedis } from "../../helpers/redis.js";
import { testConfig } from "../../helpers/app.js";
import { storeDataset, smallSpec } from "../../helpers/training-fixtures.js";
import { createLocalStorage } from "../../../src/storage/local-storage.js";
import { createRedis } from "../../../src/jobs/redis.js";
import * as tf from "@tensorflow/tfjs";
import { jobRedis, readEpochMetrics, readJobRecord, type JobRecord } from "../../../src/jobs/job-records.js";
import type { JobSpec } from "../../../src/jobs/job-spec.js";
import { getModelRecord, modelKey, type ModelRecord } from "../../../src/trained-models/model-store.js";
import { buildTransferModel } from "../../../src/network/transfer-model.js";
import { loadModelWeights } from "../../../src/weight-files/index.js";
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

interface Trained {
  metrics: EpochMetrics[];
  record: JobRecord | null;
  model: ModelRecord | null;
  /** The saved model's weights (model.h5), read back into a fresh model. */
  savedWeights: Float32Array[];
  /** The weights the job started from (the spec's seed, no base weights). */
  startWeights: Float32Array[];
}

/** Trains `spec` on the same dataset bytes, in its own DATA_DIR so no feature cache is shared. */
async function trainWith(env: Record<string, string>, jobId: string, overrides: Partial<JobSpec>): Promise<Trained> {
  const config = await testConfig({ REDIS_URL: redis.url, ...env });
  dirs.push(config.dataDir);
  const storage = createLocalStorage(config.dataDir);
  const db = jobRedis(connection, config);
  const dataset = await storeDataset(storage, config, TENANT);
  const spec = smallSpec(dataset.id, overrides);
  await createJobRecord(db, { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() });
  const job = {
    id: jobId,
    data: { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() },
    attemptsMade: 0,
    updateProgress: async () => {},
  };
  const outcome = await runTraining({ config, storage, db, log: createLogger("silent") }, job);
  assert.equal(outcome.status, "completed");
  const record = await readJobRecord(db, jobId);
  const fresh = buildTransferModel({
    imageSize: spec.imageSize,
    numClasses: 3,
    head: spec.head,
    unfrozenLayers: spec.unfrozenLayers,
    seed: spec.seed,
  });
  const startWeights = fresh.model.getWeights().map((w) => w.dataSync() as Float32Array);
  await loadModelWeights(fresh.model, await storage.localPath(modelKey(TENANT, record!.modelId!, "model.h5")));
  const savedWeights = fresh.model.getWeights().map((w) => w.dataSync() as Float32Array);
  fresh.model.dispose();
  tf.disposeVariables();
  return {
    metrics: await readEpochMetrics(db, jobId),
    record,
    model: await getModelRecord(storage, TENANT, record!.modelId!),
    savedWeights,
    startWeights,
  };
}

/** unfrozenLayers 8: trainable convolutions and BatchNormalization, and a cut of two tensors. */
const NO_DROPOUT: Partial<JobSpec> = { unfrozenLayers: 8, epochs: 2, head: { pooling: "flatten", denseUnits: 8, dropout: 0 } };

/** The largest relative difference of loss and valLoss over the epochs (for the test's diagnostics). */
function largestDifference(actual: EpochMetrics[], expected: EpochMetrics[]): number {
  return Math.max(
    ...actual.flatMap((m, i) =>
      (["loss", "valLoss"] as const).map((key) => Math.abs(m[key]! - expected[i][key]!) / Math.abs(expected[i][key]!)),
    ),
  );
}

function assertCloseMetrics(actual: EpochMetrics[], expected: EpochMetrics[], tolerance: number): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((m, i) => {
    for (const key of ["loss", "valLoss"] as const) {
      const a = m[key] as number;
      const e = expected[i][key] as number;
      assert.ok(Math.abs(a - e) <= tolerance * Math.max(1, Math.abs(e)), `epoch ${m.epoch} ${key}: onnxruntime ${a}, tfjs ${e}`);
    }
  });
}

for (const featureCache of ["on", "off"]) {
  test(`without dropout a job's per-epoch loss and valLoss on onnxruntime are tfjs's within 1e-3 (FEATURE_CACHE=${featureCache}); the record names the engines`, {
    timeout: 300_000,
  }, async (t) => {
    const tfjs = await trainWith({ TRAINING_ENGINE: "tfjs", FEATURE_CACHE: featureCache }, `job_tfjs_${featureCache}`, NO_DROPOUT);
    const ort = await trainWith({ TRAINING_ENGINE: "onnxruntime", FEATURE_CACHE: featureCache }, `job_ort_${featureCache}`, NO_DROPOUT);
    assert.equal(tfjs.record?.engine, "tfjs");
    assert.equal(tfjs.record?.stepEngine, "tfjs");
    assert.equal(ort.record?.engine, "onnxruntime");
    assert.equal(ort.record?.stepEngine, "onnxruntime");
    t.diagnostic(`largest relative difference of loss/valLoss: ${largestDifference(ort.metrics, tfjs.metrics).toExponential(2)}`);
    assertCloseMetrics(ort.metrics, tfjs.metrics, 1e-3);
  });
}

for (const featureCache of ["on", "off"]) {
  test(`on onnxruntime a job with dropout trains its tail on ONNX Runtime, learns, and saves the weights it trained (FEATURE_CACHE=${featureCache})`, {
    timeout: 300_000,
  }, async () => {
    const spec: Partial<JobSpec> = {
      unfrozenLayers: 10,
      epochs: 3,
      learningRate: 1e-3,
      head: { pooling: "flatten", denseUnits: 16, dropout: 0.3 },
    };
    const ort = await trainWith({ TRAINING_ENGINE: "onnxruntime", FEATURE_CACHE: featureCache }, `job_learn_${featureCache}`, spec);
    assert.equal(ort.record?.stepEngine, "onnxruntime");
    assert.equal(ort.record?.featureCache, featureCache === "on");
    assert.deepEqual(
      ort.metrics.map((m) => m.epoch),
      [1, 2, 3],
    );
    for (const m of ort.metrics)
      for (const key of ["loss", "accuracy", "valLoss", "valAccuracy"] as const) assert.ok(Number.isFinite(m[key]), `${key} ${m[key]}`);
    assert.ok(ort.metrics[2].loss < ort.metrics[0].loss, `loss ${ort.metrics.map((m) => m.loss)}`);
    // The report is TF.js's evaluation of the saved weights; valAccuracy is ONNX Runtime's of its own.
    assert.equal(ort.model?.report?.accuracy, ort.metrics[2].valAccuracy);
    // The saved file holds trained weights: the head and the trainable convolutions moved, the frozen trunk did not.
    const moved = ort.savedWeights.filter((w, i) => w.some((v, j) => v !== ort.startWeights[i][j])).length;
    assert.ok(moved > 0 && moved < ort.savedWeights.length, `${moved} of ${ort.savedWeights.length} weights moved`);
  });
}

test("TRAINING_ENGINE=auto picks onnxruntime on the wasm backend", { timeout: 300_000 }, async () => {
  const { record } = await trainWith({ TRAINING_ENGINE: "auto", TFJS_BACKEND: "wasm" }, "job_auto", NO_DROPOUT);
  assert.equal(record?.engine, "onnxruntime");
  assert.equal(record?.stepEngine, "onnxruntime");
});
