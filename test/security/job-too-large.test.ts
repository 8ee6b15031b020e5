// A job spec whose training cannot fit in a worker's memory is refused at
// POST /v1/jobs (it used to be queued, kill its worker three times and hold
// the FIFO queue meanwhile).
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "../helpers/app.js";
import { readyDataset } from "../helpers/jobs.js";
import { assertStillServing, errorOf } from "../helpers/security.js";
import { assertDocumented } from "../helpers/openapi-check.js";

const GiB = 1024 ** 3;

async function setup(t: Parameters<typeof build>[0], env: Record<string, string> = {}) {
  const { app, config } = await build(t, { TFJS_BACKEND: "wasm", ...env });
  const datasetId = await readyDataset(config, "default", { cat: 10, dog: 10 });
  const post = (spec: Record<string, unknown>) =>
    app.inject({ method: "POST", url: "/v1/jobs", payload: { datasetId, baseWeights: "none", ...spec } });
  return { app, config, post };
}

test("a 512 px job with a Flatten head of 8192 units is refused with JOB_TOO_LARGE and the sizes that fit", async (t) => {
  const { app, config, post } = await setup(t);
  assert.equal(config.workerMemoryBytes, Math.floor(0.9 * 4 * GiB), "wasm's 4 GiB heap less a 10% margin is the default budget");
  const res = await post({ imageSize: 512, head: { pooling: "flatten", denseUnits: 8192 } });
  assert.equal(res.statusCode, 422, res.body);
  const error = errorOf(res);
  assert.equal(error.code, "JOB_TOO_LARGE");
  assert.equal(error.details.budgetBytes, config.workerMemoryBytes);
  // The Dense kernel alone (524288 x 8192 floats) is 16 GiB.
  assert.ok((error.details.estimateBytes as number) > 16 * GiB);
  assert.equal(error.details.largestBatchSize, 0, "no batch size fits at 512 px with this head");
  const largestImageSize = error.details.largestImageSize as number;
  assert.ok(largestImageSize >= 32 && largestImageSize < 512, `largestImageSize ${largestImageSize}`);
  // The sizes it names do fit, and one step larger does not.
  assert.equal((await post({ imageSize: largestImageSize, head: { pooling: "flatten", denseUnits: 8192 } })).statusCode, 202);
  assert.equal(
    errorOf(await post({ imageSize: largestImageSize + 32, head: { pooling: "flatten", denseUnits: 8192 } })).code,
    "JOB_TOO_LARGE",
  );
  assertDocumented({ statusCode: res.statusCode, body: res.body }, "POST", "/v1/jobs");
  await assertStillServing(app, config);
});

test("batchSize 1024 at 512 px is refused; the largest batch size it names is accepted", async (t) => {
  const { app, config, post } = await setup(t);
  const res = await post({ imageSize: 512, batchSize: 1024 });
  assert.equal(res.statusCode, 422, res.body);
  const error = errorOf(res);
  assert.equal(error.code, "JOB_TOO_LARGE");
  const largestBatchSize = error.details.largestBatchSize as number;
  const largestImageSize = error.details.largestImageSize as number;
  assert.ok(largestBatchSize >= 1 && largestBatchSize < 1024, `largestBatchSize ${largestBatchSize}`);
  assert.ok(largestImageSize >= 32 && largestImageSize < 512, `largestImageSize ${largestImageSize}`);
  assert.equal((await post({ imageSize: 512, batchSize: largestBatchSize })).statusCode, 202);
  assert.equal(errorOf(await post({ imageSize: 512, batchSize: largestBatchSize + 1 })).code, "JOB_TOO_LARGE");
  assert.equal((await post({ imageSize: largestImageSize, batchSize: 1024 })).statusCode, 202);
  await assertStillServing(app, config);
});

test("the tutorial's spec (224 px, batch 32, flatten/256) fits wasm's default budget", async (t) => {
  const { app, config, post } = await setup(t);
  const res = await post({});
  assert.equal(res.statusCode, 202, res.body);
  await assertStillServing(app, config);
});

test("WORKER_MEMORY_BYTES sets the budget; native backends default to 16 GiB", async (t) => {
  const small = await setup(t, { WORKER_MEMORY_BYTES: String(256 * 1024 ** 2) });
  const res = await small.post({ imageSize: 64, batchSize: 8 });
  assert.equal(errorOf(res).code, "JOB_TOO_LARGE");
  assert.equal(errorOf(res).details.budgetBytes, 256 * 1024 ** 2);
  const native = await setup(t, { TFJS_BACKEND: "tensorflow" });
  assert.equal(native.config.workerMemoryBytes, 16 * GiB);
  assert.equal((await native.post({ imageSize: 512, batchSize: 64 })).statusCode, 202);
});
