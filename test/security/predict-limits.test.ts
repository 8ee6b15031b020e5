// Predict decodes client images in the API process: the documented 32 images are accepted, a
// decompression bomb is refused from its header before a pixel is decoded, a request has a pixel
// budget, and decodes across requests share a few slots.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { selectBackend } from "../../src/backend/select-backend.js";
import { createSemaphore } from "../../src/api/semaphore.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { CAFFE_PREPROCESSING, saveTrainedModel } from "../../src/trained-models/model-store.js";
import { JOB_SPEC_DEFAULTS } from "../../src/jobs/job-spec.js";
import { build } from "../helpers/app.js";
import { filesUnder } from "../helpers/dataset-upload.js";
import { smallModel, SMALL_SIZE } from "../helpers/small-model.js";
import { hugePng, smallImages } from "./hostile-inputs.js";

await selectBackend("wasm");

const MiB = 1024 ** 2;
const metrics = { epoch: 1, loss: 0.5, accuracy: 0.75, valLoss: 0.6, valAccuracy: 0.5, seconds: 1, imagesPerSecond: 10 };

async function withModel(t: Parameters<typeof build>[0], env: Record<string, string> = {}) {
  const { app, config } = await build(t, { TFJS_BACKEND: "wasm", ...env });
  const model = smallModel(3);
  await saveTrainedModel(createLocalStorage(config.dataDir), {
    tenant: "default",
    modelId: "mdl_small",
    model,
    jobId: "job_small",
    datasetId: "ds_x",
    classes: ["blue", "red"],
    imageSize: SMALL_SIZE,
    preprocessing: CAFFE_PREPROCESSING,
    spec: { ...JOB_SPEC_DEFAULTS, datasetId: "ds_x" },
    metrics,
    history: [metrics],
    report: null,
    backend: "wasm",
  });
  model.dispose();
  return { app, config };
}

/** A multipart body with one `file` part per image. */
function imagesBody(images: Buffer[]) {
  const boundary = `----rf${randomBytes(8).toString("hex")}`;
  const parts = images.flatMap((image, i) => [
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${i}.png"\r\nContent-Type: image/png\r\n\r\n`),
    image,
    Buffer.from("\r\n"),
  ]);
  return {
    payload: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]),
    headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
  };
}

function predict(app: FastifyInstance, images: Buffer[]) {
  return app.inject({ method: "POST", url: "/v1/models/mdl_small/predict", ...imagesBody(images) });
}

async function assertReadyAndClean(app: FastifyInstance, dataDir: string): Promise<void> {
  assert.equal((await app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
  assert.deepEqual(
    (await filesUnder(dataDir)).filter((f) => f.startsWith(".tmp/")),
    [],
    "nothing left in DATA_DIR/.tmp",
  );
}

test("predict takes its documented 32 images in one request; 33 are 413 PAYLOAD_TOO_LARGE", async (t) => {
  const { app, config } = await withModel(t);
  const images = await smallImages(33, SMALL_SIZE);
  const res = await predict(app, images.slice(0, 32));
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.json().predictions.length, 32);
  const over = await predict(app, images);
  assert.equal(over.statusCode, 413, over.body);
  assert.equal(over.json().error.code, "PAYLOAD_TOO_LARGE");
  await assertReadyAndClean(app, config.dataDir);
});

test("a 12000x12000 PNG (~0.5 MB) is 413 PREDICT_IMAGE_TOO_LARGE from its header: RSS stays flat", async (t) => {
  const { app, config } = await withModel(t);
  const bomb = await hugePng();
  assert.ok(bomb.length < 2 * MiB);
  await predict(app, await smallImages(1, SMALL_SIZE)); // the model is loaded and the backend warm before measuring
  global.gc?.();
  const before = process.memoryUsage().rss;
  const res = await predict(app, [bomb, bomb, bomb]);
  const grown = process.memoryUsage().rss - before;
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(res.json().error.code, "PREDICT_IMAGE_TOO_LARGE");
  assert.deepEqual([res.json().error.details.width, res.json().error.details.height], [12000, 12000]);
  // Decoding it costs 576 MB (RGBA); refused from the header, only the upload's bytes are held.
  assert.ok(grown < 100 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB`);
  await assertReadyAndClean(app, config.dataDir);
});

test("a request's images together over MAX_PREDICT_PIXELS are 413 PREDICT_TOO_MANY_PIXELS", async (t) => {
  const pixels = SMALL_SIZE * SMALL_SIZE;
  const { app, config } = await withModel(t, { MAX_PREDICT_PIXELS: String(5 * pixels) });
  const images = await smallImages(6, SMALL_SIZE);
  assert.equal((await predict(app, images.slice(0, 5))).statusCode, 200);
  const res = await predict(app, images);
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(res.json().error.code, "PREDICT_TOO_MANY_PIXELS");
  assert.equal(res.json().error.details.limit, 5 * pixels);
  await assertReadyAndClean(app, config.dataDir);
});

test("the decode semaphore lets at most `limit` run at once, in arrival order", async () => {
  const slots = createSemaphore(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const releases: (() => void)[] = [];
  const task = (i: number) =>
    slots.run(async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      await new Promise<void>((resolve) => releases.push(resolve));
      running--;
    });
  const all = [0, 1, 2, 3, 4].map(task);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(slots.active, 2);
  assert.equal(slots.waiting, 3);
  while (order.length < 5 || releases.length > 0) {
    const release = releases.shift();
    if (release) release();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(all);
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(slots.active, 0);
});
