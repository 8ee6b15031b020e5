import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { UnrecoverableError } from "bullmq";
import { startRedis } from "../helpers/redis.js";
import { testConfig } from "../helpers/app.js";
import { storeDataset, smallSpec } from "../helpers/training-fixtures.js";
import { smallModel } from "../helpers/small-model.js";
import { writeKerasWeightsFile } from "../helpers/keras-h5.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { saveWeightsRecord, weightsKeys } from "../../src/weights/weights-store.js";
import { createRedis } from "../../src/queue/redis.js";
import { jobRedis, readEpochMetrics, readJobRecord, createJobRecord } from "../../src/queue/job-records.js";
import type { JobProgress } from "../../src/queue/training-queue.js";
import type { JobSpec } from "../../src/queue/job-spec.js";
import { createLogger } from "../../src/log.js";
import { runTraining, type TrainingDeps } from "../../src/worker/run-training.js";
import { processTrainingJob } from "../../src/worker/training-processor.js";
import { listCheckpoints } from "../../src/worker/checkpoints.js";
import { getModelRecord, modelKey } from "../../src/models/model-store.js";
import { STOP_REASON } from "../../src/worker/stop-reasons.js";

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

test("a job stopped after epoch 2 resumes from its checkpoint: 3 epochs of metrics in all, then the model and its report", { timeout: 240_000 }, async () => {
  const spec = smallSpec(dataset.id, { keepCheckpoints: 1 });
  await createJobRecord(db, { jobId: "job_resume", tenant: TENANT, spec, createdAt: new Date().toISOString() });
  const stop = new AbortController();
  const first = await runTraining(
    deps,
    fakeJob("job_resume", spec, (p) => {
      if (p.checkpoint?.epoch === 2) stop.abort(STOP_REASON.shutdown);
    }),
    stop.signal,
  );
  assert.deepEqual(first, { status: "stopped", reason: "shutdown", epochsDone: 2 });
  assert.deepEqual((await readEpochMetrics(db, "job_resume")).map((m) => m.epoch), [1, 2]);

  const progress: JobProgress[] = [];
  const second = await runTraining(deps, fakeJob("job_resume", spec, (p) => progress.push(p)));
  assert.deepEqual(second, { status: "completed", modelId: "mdl_resume" });
  // Only epoch 3 ran again.
  assert.deepEqual([...new Set(progress.filter((p) => p.batches > 0).map((p) => p.epoch))], [3]);
  assert.ok(progress.every((p) => p.fraction >= 2 / 3 || p.batches === 0));
  const metrics = await readEpochMetrics(db, "job_resume");
  assert.deepEqual(metrics.map((m) => m.epoch), [1, 2, 3]);

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
  assert.equal(validationCount, report.classes.reduce((n, c) => n + c.support, 0));
  assert.ok(validationCount >= 3);
  assert.deepEqual(JSON.parse((await storage.get(modelKey(TENANT, "mdl_resume", "labels.json"))).toString()), ["cat", "dog", "fox"]);
  assert.ok((await storage.stat(modelKey(TENANT, "mdl_resume", "model.h5")))!.size > 1_000_000);
  assert.equal((await readJobRecord(db, "job_resume"))?.modelId, "mdl_resume");
});

test("weights that are not ResNet-50 fail the job without retry, with the code and message recorded", { timeout: 120_000 }, async () => {
  const weightsId = "wts_00000000-0000-4000-8000-000000000001";
  const dir = await storage.scratchDir("weights");
  const file = path.join(dir, "weights.h5");
  const model = smallModel(1);
  await writeKerasWeightsFile(model, file);
  model.dispose();
  // As if the stored file had been swapped after its upload was checked.
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
  await createJobRecord(db, { jobId: "job_badweights", tenant: TENANT, spec, createdAt: new Date().toISOString() });

  const error = await processTrainingJob(deps, fakeJob("job_badweights", spec), undefined, undefined).then(
    () => assert.fail("the job should fail"),
    (e: unknown) => e as UnrecoverableError & { code: string },
  );
  assert.ok(error instanceof UnrecoverableError);
  assert.equal(error.code, "WEIGHTS_MISMATCH");
  const recorded = (await readJobRecord(db, "job_badweights"))?.error;
  assert.equal(recorded?.code, "WEIGHTS_MISMATCH");
  assert.match(recorded!.message, /ResNet-50/);
  assert.deepEqual(await listCheckpoints(storage, TENANT, "job_badweights"), []);
});
