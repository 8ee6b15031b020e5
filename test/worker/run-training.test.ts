import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { UnrecoverableError } from "bullmq";
import * as tf from "@tensorflow/tfjs";
import { startRedis } from "../helpers/redis.js";
import { testConfig } from "../helpers/app.js";
import { storeDataset, smallSpec } from "../helpers/training-fixtures.js";
import { smallModel } from "../helpers/small-model.js";
import { writeKerasWeightsFile } from "../helpers/keras-h5.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { saveWeightsRecord, weightsKeys } from "../../src/base-weights/weights-store.js";
import { createRedis } from "../../src/jobs/redis.js";
import { jobRedis, readEpochMetrics, readJobRecord } from "../../src/jobs/job-records.js";
import type { JobProgress } from "../../src/jobs/training-queue.js";
import type { JobSpec } from "../../src/jobs/job-spec.js";
import { createLogger } from "../../src/log.js";
import { runTraining, type TrainingDeps } from "../../src/worker/run-training.js";
import { processTrainingJob } from "../../src/worker/training-processor.js";
import { checkpointKey, listCheckpoints } from "../../src/training/checkpoints.js";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { getModelRecord, modelKey } from "../../src/trained-models/model-store.js";
import { STOP_REASON } from "../../src/worker/stop-reasons.js";
import { createJobRecord } from "../helpers/jobs.js";

const TENANT = "acme";
const redis = await startRedis();
const config = await testConfig({ REDIS_URL: redis.url });
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

function fakeJob(jobId: string, spec: JobSpec, onProgress: (p: JobProgress) => void = () => {}) {
  return {
    id: jobId,
    data: { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() },
    attemptsMade: 0,
    async updateProgress(p: JobProgress) {
      onProgress(p);
    },
    async moveToWait() {},
  };
}

/** Creates the job's record and trains it until its epoch-2 checkpoint is written, then stops it as a shutdown would. */
async function runTwoEpochsThenShutDown(jobId: string, spec: JobSpec): Promise<void> {
  await createJobRecord(db, { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() });
  const stop = new AbortController();
  const first = await runTraining(
    deps,
    fakeJob(jobId, spec, (p) => {
      if (p.checkpoint?.epoch === 2) stop.abort(STOP_REASON.shutdown);
    }),
    stop.signal,
  );
  assert.deepEqual(first, { status: "stopped", reason: "shutdown", epochsDone: 2 });
}

test("a job stopped after epoch 2 resumes from its checkpoint: 3 epochs of metrics in all, then the model and its report", {
  timeout: 240_000,
}, async () => {
  const spec = smallSpec(dataset.id, { keepCheckpoints: 1 });
  await runTwoEpochsThenShutDown("job_resume", spec);
  assert.deepEqual(
    (await readEpochMetrics(db, "job_resume")).map((m) => m.epoch),
    [1, 2],
  );

  const progress: JobProgress[] = [];
  const second = await runTraining(
    deps,
    fakeJob("job_resume", spec, (p) => progress.push(p)),
  );
  assert.deepEqual(second, { status: "completed", modelId: "mdl_resume" });
  // Only epoch 3 ran again.
  assert.deepEqual([...new Set(progress.filter((p) => p.batches > 0).map((p) => p.epoch))], [3]);
  assert.ok(progress.every((p) => p.fraction >= 2 / 3 || p.batches === 0));
  const metrics = await readEpochMetrics(db, "job_resume");
  assert.deepEqual(
    metrics.map((m) => m.epoch),
    [1, 2, 3],
  );

  // keepCheckpoints 1: the last one, plus the best by val_loss when that is another.
  const kept = (await listCheckpoints(storage, TENANT, "job_resume")).map((c) => c.epoch);
  const best = metrics.reduce((b, m) => (m.valLoss! < b.valLoss! ? m : b)).epoch;
  assert.deepEqual(kept, [...new Set([best, 3])].sort());

  const record = await getModelRecord(storage, TENANT, "mdl_resume");
  assert.ok(record);
  assert.deepEqual(record.classes, ["cat", "dog", "fox"]);
  assert.equal(record.imageSize, 32);
  assert.equal(record.preprocessing.mode, "caffe");
  assert.deepEqual(record.history, metrics);
  assert.equal(record.backend, "wasm");
  const report = record.report!;
  const validationCount = report.confusionMatrix.flat().reduce((a, b) => a + b, 0);
  assert.equal(
    validationCount,
    report.classes.reduce((n, c) => n + c.support, 0),
  );
  assert.ok(validationCount >= 3);
  assert.deepEqual(JSON.parse((await storage.get(modelKey(TENANT, "mdl_resume", "labels.json"))).toString()), ["cat", "dog", "fox"]);
  assert.ok((await storage.stat(modelKey(TENANT, "mdl_resume", "model.h5")))!.size > 1_000_000);
  assert.equal((await readJobRecord(db, "job_resume"))?.modelId, "mdl_resume");
});

/**
 * Stores `model`'s weights as an uploaded Keras weights file with a record,
 * bypassing the upload check (as if the file had been swapped after it), and
 * fails the job `jobId` that trains on it; returns the error BullMQ would get.
 */
async function failJobOnWeights(weightsId: string, jobId: string, model: tf.LayersModel): Promise<UnrecoverableError & { code?: string }> {
  const dir = await storage.scratchDir("weights");
  const file = path.join(dir, "weights.h5");
  await writeKerasWeightsFile(model, file);
  await storage.putFile(weightsKeys(TENANT, weightsId, "keras-h5").file, file);
  await saveWeightsRecord(storage, TENANT, {
    id: weightsId,
    format: "keras-h5",
    matchedLayers: 106,
    ignoredLayers: [],
    fileName: "weights.h5",
    bytes: 1,
    createdAt: new Date().toISOString(),
  });
  const spec = smallSpec(dataset.id, { baseWeights: weightsId });
  await createJobRecord(db, { jobId, tenant: TENANT, spec, createdAt: new Date().toISOString() });
  const error = await processTrainingJob(deps, fakeJob(jobId, spec), undefined, undefined).then(
    () => assert.fail("the job should fail"),
    (e: unknown) => e as UnrecoverableError & { code?: string },
  );
  assert.ok(error instanceof UnrecoverableError);
  return error;
}

test("weights that are not ResNet-50 fail the job without retry, with the code and message recorded", { timeout: 120_000 }, async () => {
  const model = smallModel(1);
  const error = await failJobOnWeights("wts_00000000-0000-4000-8000-000000000001", "job_badweights", model);
  model.dispose();
  assert.equal(error.code, "WEIGHTS_MISMATCH");
  const recorded = (await readJobRecord(db, "job_badweights"))?.error;
  assert.equal(recorded?.code, "WEIGHTS_MISMATCH");
  assert.match(recorded!.message, /ResNet-50/);
  assert.deepEqual(await listCheckpoints(storage, TENANT, "job_badweights"), []);
});

/** The weight shards (everything but model.json) of a TF.js model directory in storage, by file name. */
async function shards(prefix: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const { key } of await storage.list(prefix)) {
    if (key.endsWith(".bin") && !key.endsWith("optimizer.bin")) out.set(path.basename(key), await storage.get(key));
  }
  return out;
}

test("early stopping with restoreBest after a resume puts back the best epoch's weights from its checkpoint, which pruning kept", {
  timeout: 240_000,
}, async () => {
  // A learning rate so small that val_accuracy cannot change: epoch 1 stays the best, and patience 2 stops the job after epoch 3.
  const spec = smallSpec(dataset.id, {
    epochs: 6,
    learningRate: 1e-9,
    keepCheckpoints: 1,
    earlyStopping: { monitor: "val_accuracy", patience: 2, minDelta: 0, restoreBest: true },
  });
  await runTwoEpochsThenShutDown("job_bestresume", spec);
  const second = await runTraining(deps, fakeJob("job_bestresume", spec));
  assert.deepEqual(second, { status: "completed", modelId: "mdl_bestresume" });

  const metrics = await readEpochMetrics(db, "job_bestresume");
  assert.deepEqual(
    metrics.map((m) => m.epoch),
    [1, 2, 3],
    "stopped early after epoch 3",
  );
  assert.ok(
    metrics.every((m) => m.valAccuracy === metrics[0].valAccuracy),
    "epoch 1 is the best",
  );
  // keepCheckpoints 1 keeps the last; the best by val_loss and the best for early stopping stay too.
  const kept = (await listCheckpoints(storage, TENANT, "job_bestresume")).map((c) => c.epoch);
  assert.ok(kept.includes(1) && kept.includes(3), `kept ${kept}`);

  const saved = await shards(modelKey(TENANT, "mdl_bestresume"));
  const best = await shards(checkpointKey(TENANT, "job_bestresume", 1));
  const last = await shards(checkpointKey(TENANT, "job_bestresume", 3));
  assert.ok(saved.size > 0);
  assert.deepEqual([...saved.keys()], [...best.keys()]);
  for (const [file, bytes] of saved) assert.ok(bytes.equals(best.get(file)!), `${file} is epoch 1's`);
  assert.ok(
    [...saved].some(([file, bytes]) => !bytes.equals(last.get(file)!)),
    "the last epoch's weights differ from the best's",
  );
});

test("a loss that turns NaN fails the job without retry, with TRAINING_DIVERGED and where it happened", { timeout: 120_000 }, async () => {
  const base = buildResNet50({ imageSize: 32, seed: 5 });
  // One poisoned weight in the last block: every output, and so the loss, is NaN from the first batch.
  const layer = base.getLayer("conv5_block3_3_conv");
  const [kernel, bias] = layer.getWeights();
  const poisoned = kernel.dataSync().slice();
  poisoned[0] = Number.NaN;
  layer.setWeights([tf.tensor(poisoned, kernel.shape), bias]);
  await failJobOnWeights("wts_00000000-0000-4000-8000-000000000002", "job_nan", base);
  base.dispose();
  const recorded = (await readJobRecord(db, "job_nan"))?.error;
  assert.equal(recorded?.code, "TRAINING_DIVERGED");
  assert.match(recorded!.message, /NaN in epoch 1, batch 1/);
  assert.deepEqual(await listCheckpoints(storage, TENANT, "job_nan"), []);
  assert.equal(await getModelRecord(storage, TENANT, "mdl_nan"), null);
});
