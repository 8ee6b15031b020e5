import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import yauzl from "yauzl";
import { build } from "../helpers/app.js";
import { makeImage, multipartBody, multipartFiles } from "../helpers/dataset-archives.js";
import { smallModel, SMALL_SIZE } from "../helpers/small-model.js";
import { selectBackend } from "../../src/backend/select-backend.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { CAFFE_PREPROCESSING, MODEL_RECORD_FILE, modelKey, saveTrainedModel } from "../../src/trained-models/model-store.js";
import { assertDocumented } from "../helpers/openapi-check.js";
import { JOB_SPEC_DEFAULTS } from "../../src/jobs/job-spec.js";
import { decodeImageForModel } from "../../src/datasets/training-data.js";
import { createOrtSession } from "../../src/engine/onnx/ort-session.js";
import { ONNX_FILE } from "../../src/trained-models/onnx-file.js";

await selectBackend("wasm");

const CLASSES = ["blue", "red"];
const metrics = { epoch: 1, loss: 0.5, accuracy: 0.75, valLoss: 0.6, valAccuracy: 0.5, seconds: 1, imagesPerSecond: 10 };

async function withModel(t: { after(fn: () => Promise<void>): void }, env: Record<string, string> = {}, diverged = false) {
  const { app, config } = await build(t, env);
  const storage = createLocalStorage(config.dataDir);
  const model = smallModel(3);
  if (diverged) {
    // What a training run that blew up leaves behind.
    const nan = model.getWeights().map((w) => tf.fill(w.shape, NaN));
    model.setWeights(nan);
    tf.dispose(nan);
  }
  await saveTrainedModel(storage, {
    tenant: "default",
    modelId: "mdl_small",
    model,
    jobId: "job_small",
    datasetId: "ds_x",
    classes: CLASSES,
    imageSize: SMALL_SIZE,
    preprocessing: CAFFE_PREPROCESSING,
    spec: { ...JOB_SPEC_DEFAULTS, datasetId: "ds_x" },
    metrics,
    history: [metrics],
    report: null,
    backend: "wasm",
  });
  return { app, storage, model };
}

function zipEntries(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) =>
    yauzl.fromBuffer(bytes, { lazyEntries: false }, (err, zip) => {
      if (err) return reject(err);
      const names: string[] = [];
      zip.on("entry", (e: yauzl.Entry) => names.push(e.fileName));
      zip.on("end", () => resolve(names.sort()));
      zip.on("error", reject);
    }),
  );
}

test("the models list pages like every list: {items, nextCursor}, newest first, limit and cursor", async (t) => {
  const { app, storage, model } = await withModel(t);
  model.dispose();
  // A second, newer model: its record is all the list reads.
  const record = JSON.parse((await storage.get(modelKey("default", "mdl_small", MODEL_RECORD_FILE))).toString("utf8"));
  const newer = { ...record, id: "mdl_newer", createdAt: new Date(Date.parse(record.createdAt) + 1000).toISOString() };
  await storage.put(modelKey("default", "mdl_newer", MODEL_RECORD_FILE), JSON.stringify(newer));
  const first = await app.inject({ url: "/v1/models?limit=1" });
  assert.equal(first.statusCode, 200);
  assertDocumented({ statusCode: first.statusCode, body: first.json() }, "GET", "/v1/models");
  assert.deepEqual(
    first.json().items.map((m: { id: string }) => m.id),
    ["mdl_newer"],
  );
  assert.equal(typeof first.json().nextCursor, "string");
  const second = (await app.inject({ url: `/v1/models?limit=1&cursor=${first.json().nextCursor}` })).json();
  assert.deepEqual(
    second.items.map((m: { id: string }) => m.id),
    ["mdl_small"],
  );
  assert.equal(second.nextCursor, null);
  const bad = await app.inject({ url: "/v1/models?cursor=bm9wZQ" });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error.code, "INVALID_CURSOR");
  assert.equal((await app.inject({ url: "/v1/models?limit=0" })).statusCode, 400);
});

test("models are listed and read in their tenant only; unknown ids are MODEL_NOT_FOUND", async (t) => {
  const { app, model } = await withModel(t, { API_KEYS: "default:key-a,other:key-b" });
  model.dispose();
  const owner = { authorization: "Bearer key-a" };
  const other = { authorization: "Bearer key-b" };
  assert.deepEqual((await app.inject({ url: "/v1/models", headers: other })).json(), { items: [], nextCursor: null });
  assert.equal((await app.inject({ url: "/v1/models/mdl_small", headers: other })).json().error.code, "MODEL_NOT_FOUND");
  assert.equal((await app.inject({ url: "/v1/models/mdl_small/download?format=keras", headers: other })).statusCode, 404);
  const list = await app.inject({ url: "/v1/models", headers: owner });
  assert.equal(list.statusCode, 200);
  assert.deepEqual(
    list.json().items.map((m: { id: string }) => m.id),
    ["mdl_small"],
  );
  assert.equal(list.json().items[0].history, undefined);
  const one = await app.inject({ url: "/v1/models/mdl_small", headers: owner });
  assert.equal(one.statusCode, 200);
  assert.deepEqual(one.json().classes, CLASSES);
  assert.deepEqual(one.json().history, [metrics]);
  assert.equal(one.json().preprocessing.mode, "caffe");
  const missing = await app.inject({ url: "/v1/models/mdl_nope", headers: owner });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().error.code, "MODEL_NOT_FOUND");
});

test("downloads: the Keras file with its Content-Length, the TF.js zip with model.json, shards and labels.json", async (t) => {
  const { app, storage, model } = await withModel(t);
  model.dispose();
  const keras = await app.inject({ url: "/v1/models/mdl_small/download?format=keras" });
  assert.equal(keras.statusCode, 200);
  assert.equal(keras.headers["content-type"], "application/x-hdf5");
  assert.equal(Number(keras.headers["content-length"]), keras.rawPayload.length);
  assert.ok(keras.rawPayload.equals(await storage.get(modelKey("default", "mdl_small", "model.h5"))));
  const zip = await app.inject({ url: "/v1/models/mdl_small/download?format=tfjs" });
  assert.equal(zip.statusCode, 200);
  assert.equal(zip.headers["content-type"], "application/zip");
  assert.equal(Number(zip.headers["content-length"]), zip.rawPayload.length);
  assert.deepEqual(await zipEntries(zip.rawPayload), ["group1-shard1of1.bin", "labels.json", "model.json"]);
  const bad = await app.inject({ url: "/v1/models/mdl_small/download?format=pytorch" });
  assert.equal(bad.statusCode, 400);
});

/** The ONNX download, run in ONNX Runtime, gives predict's probabilities within 1e-5; the second download is the stored file. */
async function onnxDownloadMatchesPredict(t: { after(fn: () => Promise<void>): void }, engine: "tfjs" | "onnxruntime") {
  const { app, storage, model } = await withModel(t, { TRAINING_ENGINE: engine });
  model.dispose();
  const res = await app.inject({ url: "/v1/models/mdl_small/download?format=onnx" });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.headers["content-type"], "application/octet-stream");
  assert.equal(Number(res.headers["content-length"]), res.rawPayload.length);
  assert.ok(res.rawPayload.equals(await storage.get(modelKey("default", "mdl_small", ONNX_FILE))));

  const images = [await makeImage(3), await makeImage(4), await makeImage(5)];
  const boundary = "----onnx";
  const payload = Buffer.concat([
    ...images.map((image, i) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="img${i}.png"\r\nContent-Type: image/png\r\n\r\n`,
        ),
        image,
        Buffer.from("\r\n"),
      ]),
    ),
    Buffer.from(`--${boundary}--\r\n`),
  ]);
  const predicted = await app.inject({
    method: "POST",
    url: "/v1/models/mdl_small/predict?k=2",
    payload,
    headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
  });
  assert.equal(predicted.statusCode, 200, predicted.body);

  const inputs = await Promise.all(images.map((image) => decodeImageForModel(image, SMALL_SIZE)));
  const batch = tf.stack(inputs);
  const session = await createOrtSession(new Uint8Array(res.rawPayload));
  const { predictions } = await session.run({ [session.inputNames[0]]: { data: batch.dataSync() as Float32Array, dims: batch.shape } });
  await session.release();
  tf.dispose([batch, ...inputs]);
  assert.deepEqual(predictions.dims, [3, CLASSES.length]);
  (predicted.json().predictions as { top: { class: string; probability: number }[] }[]).forEach((p, i) => {
    for (const { class: name, probability } of p.top) {
      const onnx = predictions.data[i * CLASSES.length + CLASSES.indexOf(name)];
      assert.ok(Math.abs(onnx - probability) <= 1e-5, `image ${i} ${name}: onnx ${onnx}, predict ${probability}`);
    }
  });

  // Derived once: the TF.js files are no longer needed for the next download.
  await storage.delete(modelKey("default", "mdl_small", "model.json"));
  const again = await app.inject({ url: "/v1/models/mdl_small/download?format=onnx" });
  assert.equal(again.statusCode, 200);
  assert.ok(again.rawPayload.equals(res.rawPayload));
}

test("the ONNX download, run in ONNX Runtime, gives predict's probabilities (on TF.js) within 1e-5; the second download is the stored file", (t) =>
  onnxDownloadMatchesPredict(t, "tfjs"));

// On this engine predict runs the very file the download serves, from the model cache's warm session.
test("the ONNX download gives predict's probabilities (on onnxruntime) within 1e-5", (t) => onnxDownloadMatchesPredict(t, "onnxruntime"));

for (const engine of ["tfjs", "onnxruntime"]) {
  test(`predict on ${engine} gives each image its top-k classes as the TF.js model computes them, and a second call uses the loaded model`, async (t) => {
    const { app, storage, model } = await withModel(t, { TRAINING_ENGINE: engine });
    const images = [await makeImage(1), await makeImage(2)];
    const body = () => multipartFiles(images.map((bytes, i) => ({ bytes, filename: `img${i}.png` })));
    const first = await app.inject({ method: "POST", url: "/v1/models/mdl_small/predict?k=1", ...body() });
    assert.equal(first.statusCode, 200, first.body);
    const inputs = await Promise.all(images.map((image) => decodeImageForModel(image, SMALL_SIZE)));
    const expected = tf.tidy(() => model.predict(tf.stack(inputs)) as tf.Tensor2D).arraySync();
    tf.dispose(inputs);
    model.dispose();
    // Only the onnxruntime engine writes (and reads) the model's ONNX file.
    assert.equal(await storage.exists(modelKey("default", "mdl_small", ONNX_FILE)), engine === "onnxruntime");
    const predictions = first.json().predictions as { file: string; top: { class: string; probability: number }[] }[];
    assert.deepEqual(
      predictions.map((p) => p.file),
      ["img0.png", "img1.png"],
    );
    predictions.forEach((p, i) => {
      const best = expected[i].indexOf(Math.max(...expected[i]));
      assert.equal(p.top.length, 1);
      assert.equal(p.top[0].class, CLASSES[best]);
      assert.ok(Math.abs(p.top[0].probability - expected[i][best]) < 1e-6);
    });

    // The model files are gone, the record stays: only the cached model can answer.
    for (const object of await storage.list(modelKey("default", "mdl_small"))) {
      if (/\.(bin|json)$/.test(object.key) && !object.key.endsWith("model-record.json")) await storage.delete(object.key);
    }
    const second = await app.inject({ method: "POST", url: "/v1/models/mdl_small/predict?k=5", ...body() });
    assert.equal(second.statusCode, 200, second.body);
    assert.equal(second.json().predictions[0].top.length, 2);
    assert.equal(second.json().predictions[0].top[0].class, predictions[0].top[0].class);
  });
}

test("predict refuses a part that is not an image, and a request without images", async (t) => {
  const { app, model } = await withModel(t);
  model.dispose();
  const notImage = multipartBody(Buffer.from("not an image"), {}, "notes.txt");
  const bad = await app.inject({
    method: "POST",
    url: "/v1/models/mdl_small/predict",
    payload: notImage.payload,
    headers: notImage.headers,
  });
  assert.equal(bad.statusCode, 422);
  assert.equal(bad.json().error.code, "PREDICT_IMAGE_INVALID");
  const none = multipartBody(null);
  const empty = await app.inject({ method: "POST", url: "/v1/models/mdl_small/predict", payload: none.payload, headers: none.headers });
  assert.equal(empty.statusCode, 400);
  assert.equal(empty.json().error.code, "MISSING_FILE");
});

test("a model whose training diverged (NaN weights) makes predict answer 422 MODEL_OUTPUT_INVALID, not a 500", async (t) => {
  const { app, model } = await withModel(t, {}, true);
  model.dispose();
  const image = multipartBody(await makeImage(1), {}, "img.png");
  const res = await app.inject({ method: "POST", url: "/v1/models/mdl_small/predict", payload: image.payload, headers: image.headers });
  assert.equal(res.statusCode, 422);
  assert.equal(res.json().error.code, "MODEL_OUTPUT_INVALID");
});
