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
import { loadModelWeights, openWeightsFile } from "../../src/model/weights/index.js";
import { build, tempDir } from "../helpers/app.js";
import { multipartBody } from "../helpers/dataset-archives.js";
import { filesUnder } from "../helpers/dataset-upload.js";
import {
  HOST_MARKER,
  h5ExternalStorage,
  h5VirtualDataset,
  hostMarkerBytes,
  writeH5ExternalGroupLink,
  writeH5ExternalLink,
  writeH5InternalSoftLink,
  writeH5Secret,
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
