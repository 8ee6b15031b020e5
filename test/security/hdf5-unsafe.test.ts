// HDF5 weights files are read only from themselves: a dataset with external storage, an external link,
// or a virtual dataset is refused at upload and again where the engine opens a file, and no host byte
// ever reaches a model.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { FastifyInstance } from "fastify";
import { AppError } from "../../src/errors.js";
import { loadModelWeights, openWeightsFile } from "../../src/weight-files/index.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { newWeightsId, saveWeightsRecord, weightsKeys, type WeightsRecord } from "../../src/base-weights/weights-store.js";
import { build, tempDir } from "../helpers/app.js";
import { classFolders, makeZip, multipartBody } from "../helpers/dataset-archives.js";
import { filesUnder, uploadArchive } from "../helpers/dataset-upload.js";
import { nextEvent, startTrainingWorker } from "../helpers/jobs.js";
import { writeKerasWeightsFile } from "../helpers/keras-h5.js";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { startRedis } from "../helpers/redis.js";
import {
  HOST_MARKER,
  h5ExternalStorage,
  h5VirtualDataset,
  hostMarkerBytes,
  writeH5ExternalGroupLink,
  writeH5ExternalLink,
  writeH5InternalSoftLink,
  writeH5Secret,
  writeResNetWithExternalLink,
} from "./hostile-inputs.js";

/** Each hostile file, written into `dir` beside its "host" files (a marker file and an HDF5 secret). */
async function hostileFiles(dir: string): Promise<Record<string, { file: string; dataset: string }>> {
  const marker = path.join(dir, "host-file.bin");
  await fs.writeFile(marker, hostMarkerBytes());
  await writeH5Secret(path.join(dir, "secret.h5"));
  const files = {
    externalStorage: { file: path.join(dir, "external-storage.h5"), dataset: "/dense/dense/kernel:0" },
    virtualDataset: { file: path.join(dir, "virtual-dataset.h5"), dataset: "/dense/dense/kernel:0" },
    externalLink: { file: path.join(dir, "external-link.h5"), dataset: "/dense/dense/kernel:0" },
    externalGroupLink: { file: path.join(dir, "external-group-link.h5"), dataset: "/dense" },
  };
  await fs.writeFile(files.externalStorage.file, await h5ExternalStorage(marker));
  await fs.writeFile(files.virtualDataset.file, await h5VirtualDataset());
  await writeH5ExternalLink(files.externalLink.file, path.join(dir, "secret.h5"));
  await writeH5ExternalGroupLink(files.externalGroupLink.file, path.join(dir, "secret.h5"));
  return files;
}

function isUnsafe(dataset: string) {
  return (error: unknown) => {
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.code, "WEIGHTS_UNSAFE", error.message);
    assert.equal((error.details as { dataset: string }).dataset, dataset);
    return true;
  };
}

/** The model a weights file with one Dense(2) layer on 4 inputs fills. */
function denseModel(): tf.LayersModel {
  const input = tf.input({ shape: [4] });
  const output = tf.layers.dense({ units: 2, name: "dense", kernelInitializer: "zeros" }).apply(input) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output });
}

function holdsMarker(model: tf.LayersModel): boolean {
  return model.layers.some((layer) =>
    layer.getWeights().some((w) => {
      const data = w.dataSync() as Float32Array;
      return Buffer.from(data.buffer, data.byteOffset, data.byteLength).includes(HOST_MARKER.subarray(0, 8));
    }),
  );
}

test("the engine refuses every file that reads outside itself, and no host byte reaches the model", async (t) => {
  const dir = await tempDir("rf-h5-unsafe-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  for (const [kind, { file, dataset }] of Object.entries(await hostileFiles(dir))) {
    await assert.rejects(openWeightsFile(file), isUnsafe(dataset), kind);
    const model = denseModel();
    await assert.rejects(loadModelWeights(model, file), isUnsafe(dataset), kind);
    assert.equal(holdsMarker(model), false, `${kind}: host bytes reached the model`);
    model.dispose();
  }
});

test("a soft link to a dataset inside the same file is read like the dataset itself", async (t) => {
  const dir = await tempDir("rf-h5-soft-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "soft-link.h5");
  await writeH5InternalSoftLink(file);
  const model = denseModel();
  await loadModelWeights(model, file);
  assert.deepEqual(Array.from(model.layers[1].getWeights()[0].dataSync()), new Array(8).fill(0.25));
  model.dispose();
});

async function uploadWeights(app: FastifyInstance, bytes: Buffer) {
  const body = multipartBody(bytes, {}, "weights.h5");
  return app.inject({ method: "POST", url: "/v1/weights", payload: body.payload, headers: body.headers });
}

test("POST /v1/weights refuses them with 422 WEIGHTS_UNSAFE naming the dataset; the API stays ready and keeps no file", async (t) => {
  const { app, config } = await build(t);
  const dir = await tempDir("rf-h5-upload-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  for (const [kind, { file, dataset }] of Object.entries(await hostileFiles(dir))) {
    const res = await uploadWeights(app, await fs.readFile(file));
    assert.equal(res.statusCode, 422, `${kind}: ${res.body}`);
    assert.equal(res.json().error.code, "WEIGHTS_UNSAFE", kind);
    assert.equal(res.json().error.details.dataset, dataset, kind);
    assert.equal((await app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
  }
  // The hostile files reach out to host files beside them in `dir`: an upload lands in scratch,
  // where a relative name finds nothing, so the external storage one also points at an absolute path.
  const absolute = await uploadWeights(app, await h5ExternalStorage("/proc/self/environ"));
  assert.equal(absolute.statusCode, 422, absolute.body);
  assert.equal(absolute.json().error.code, "WEIGHTS_UNSAFE");
  assert.doesNotMatch(absolute.body, /API_KEYS|PATH=/);
  const kept = (await filesUnder(config.dataDir)).filter((f) => f.startsWith(".tmp/") || f.startsWith("tenants/"));
  assert.deepEqual(kept, [], "a refused upload leaves nothing in DATA_DIR/.tmp or storage");
});

test("a ResNet-50-shaped file whose first kernel links to another tenant's weights file is 422 WEIGHTS_UNSAFE (it was accepted)", async (t) => {
  const { app, config } = await build(t);
  const dir = await tempDir("rf-h5-resnet-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  // The victim: a file laid out like a stored upload, whose conv1 kernel the attacker's file links to.
  const victim = path.join(dir, "victim.h5");
  const resnet = buildResNet50({ imageSize: 32, seed: 2 });
  await writeKerasWeightsFile(resnet, victim);
  resnet.dispose();
  const attack = path.join(dir, "attack.h5");
  await writeResNetWithExternalLink(attack, victim);
  const res = await uploadWeights(app, await fs.readFile(attack));
  assert.equal(res.statusCode, 422, res.body.slice(0, 500));
  assert.equal(res.json().error.code, "WEIGHTS_UNSAFE");
  assert.equal(res.json().error.details.dataset, "/conv1_conv/conv1_conv/kernel:0");
  const kept = (await filesUnder(config.dataDir)).filter((f) => f.startsWith(".tmp/") || f.startsWith("tenants/"));
  assert.deepEqual(kept, []);
});

test("a hostile file planted in storage as a job's base weights fails the job with WEIGHTS_UNSAFE, without retries", {
  timeout: 180_000,
}, async (t) => {
  // Our own Redis, stopped after the worker (build() would stop its own before this test's hooks run).
  const redis = await startRedis();
  const { app, config } = await build(t, { REDIS_URL: redis.url, TFJS_BACKEND: "wasm" });
  const storage = createLocalStorage(config.dataDir);
  const dir = await tempDir("rf-h5-planted-");
  const marker = path.join(dir, "host-file.bin");
  await fs.writeFile(marker, hostMarkerBytes());
  const planted = path.join(dir, "planted.h5");
  await fs.writeFile(planted, await h5ExternalStorage(marker));
  const record: WeightsRecord = {
    id: newWeightsId(),
    format: "keras-h5",
    matchedLayers: 106,
    ignoredLayers: [],
    fileName: "planted.h5",
    bytes: (await fs.stat(planted)).size,
    createdAt: new Date().toISOString(),
  };
  await storage.putFile(weightsKeys("default", record.id, record.format).file, planted);
  await saveWeightsRecord(storage, "default", record);

  const dataset = await uploadArchive(app, await makeZip(await classFolders(["a", "b"], 2)));
  assert.equal(dataset.statusCode, 201, dataset.body);
  const { events, close } = await startTrainingWorker(config);
  t.after(async () => {
    await close();
    await redis.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const posted = await app.inject({
    method: "POST",
    url: "/v1/jobs",
    payload: {
      datasetId: dataset.json().id,
      baseWeights: record.id,
      unfrozenLayers: 0,
      epochs: 1,
      batchSize: 2,
      imageSize: 32,
      validationSplit: 0,
    },
  });
  assert.equal(posted.statusCode, 202, posted.body);
  const jobId = posted.json().id as string;
  await nextEvent(events, "failed", ({ jobId: id }: { jobId: string }) => id === jobId, 150_000);
  const job = (await app.inject({ method: "GET", url: `/v1/jobs/${jobId}` })).json();
  assert.equal(job.state, "failed");
  assert.equal(job.error.code, "WEIGHTS_UNSAFE", JSON.stringify(job.error));
  assert.equal(job.attempts, 1, "a client's file is not retried");
  assert.equal(JSON.stringify(job).includes(HOST_MARKER.toString("latin1")), false);
});
