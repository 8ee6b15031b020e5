// GET /v1/jobs/{id}/checkpoints pages like every list: {items, nextCursor},
// epoch ascending, with limit and cursor.
import { test } from "node:test";
import assert from "node:assert/strict";
import supertest from "supertest";
import { build } from "../helpers/app.js";
import { assertDocumented } from "../helpers/openapi-check.js";
import { placeImagenetWeights, readyDataset } from "../helpers/jobs.js";
import { smallModel } from "../helpers/small-model.js";
import { selectBackend } from "../../src/backend/select-backend.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { writeCheckpoint } from "../../src/training/checkpoints.js";
import type { EpochMetrics } from "../../src/training/epoch-metrics.js";

await selectBackend("wasm");

const metrics = (epoch: number): EpochMetrics => ({
  epoch,
  loss: 1 / epoch,
  accuracy: 0.5,
  valLoss: null,
  valAccuracy: null,
  seconds: 1,
  imagesPerSecond: 1,
});

test("a job's checkpoints come in pages of `limit`, epoch ascending; a bad cursor is INVALID_CURSOR", async (t) => {
  const { app, config } = await build(t);
  await placeImagenetWeights(config);
  const datasetId = await readyDataset(config, "default", { cat: 10, dog: 10 });
  const http = supertest(app.server);
  const jobId = (await http.post("/v1/jobs").send({ datasetId })).body.id as string;
  const storage = createLocalStorage(config.dataDir);
  const model = smallModel(3);
  t.after(() => model.dispose());
  const history: EpochMetrics[] = [];
  for (const epoch of [1, 2, 3]) {
    history.push(metrics(epoch));
    const optimizerState = { kind: "adam" as const, iterations: 0, accBeta1: 0.9, accBeta2: 0.999, moments: [] };
    await writeCheckpoint(storage, { tenant: "default", jobId, model, optimizerState, metrics: [...history], seed: 1 });
  }

  const first = await http.get(`/v1/jobs/${jobId}/checkpoints?limit=2`);
  assert.equal(first.status, 200);
  assertDocumented(first, "GET", "/v1/jobs/:id/checkpoints");
  assert.deepEqual(
    first.body.items.map((c: { epoch: number }) => c.epoch),
    [1, 2],
  );
  const second = await http.get(`/v1/jobs/${jobId}/checkpoints?limit=2&cursor=${first.body.nextCursor}`);
  assert.deepEqual(
    second.body.items.map((c: { epoch: number }) => c.epoch),
    [3],
  );
  assert.equal(second.body.nextCursor, null);
  const all = await http.get(`/v1/jobs/${jobId}/checkpoints`);
  assert.deepEqual(
    all.body.items.map((c: { epoch: number }) => c.epoch),
    [1, 2, 3],
  );
  assert.equal(all.body.nextCursor, null);
  const bad = await http.get(`/v1/jobs/${jobId}/checkpoints?cursor=bm9wZQ`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "INVALID_CURSOR");
});
