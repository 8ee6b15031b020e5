// The command line against a running API (in this process, listening on a
// free port) with a BullMQ worker whose processor reports two epochs: upload a
// directory, submit, watch to the end, download; the exit codes of errors; and
// a watch that outlives a restart of the API.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { build, tempDir } from "../helpers/app.js";
import { classFolders } from "../helpers/dataset-archives.js";
import { spawn } from "node:child_process";
import { fakeWorker, readyDataset } from "../helpers/jobs.js";
import { freePort, startRedis } from "../helpers/redis.js";
import { smallModel, SMALL_SIZE } from "../helpers/small-model.js";
import { runCliWithEnv } from "../helpers/cli.js";
import { selectBackend } from "../../src/backend/select-backend.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { CAFFE_PREPROCESSING, saveTrainedModel } from "../../src/trained-models/model-store.js";
import { appendEpochMetrics, jobRedis, setJobInfo } from "../../src/jobs/job-records.js";
import { WATCH_EXIT_CODES } from "../../src/cli/jobs-watch-command.js";

await selectBackend("wasm");

test("datasets upload DIR, jobs submit, jobs watch and models download against a running service, with --key and env", {
  timeout: 180_000,
}, async (t) => {
  const redis = await startRedis();
  // After hooks run in order: the app closes (build's hook), then the worker, then Redis.
  const { app, config } = await build(t, { API_KEYS: "acme:key-acme", REDIS_URL: redis.url });
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  const env = { RESNET_FINETUNE_URL: address, RESNET_FINETUNE_KEY: "key-acme" };
  const cli = (...args: string[]) => runCliWithEnv(args, env);
  const storage = createLocalStorage(config.dataDir);
  const db = jobRedis(app.redis, config);
  const worker = fakeWorker(config, async (job) => {
    const { jobId, tenant } = job.data;
    for (const epoch of [1, 2]) {
      await job.updateProgress({ epoch, epochs: 2, batch: 1, batches: 2, fraction: (epoch - 0.5) / 2 });
      const metrics = {
        epoch,
        loss: 1 / epoch,
        accuracy: 0.5 * epoch,
        valLoss: 1.1 / epoch,
        valAccuracy: 0.4 * epoch,
        seconds: 1,
        imagesPerSecond: 5,
      };
      await appendEpochMetrics(db, jobId, metrics);
      await job.updateProgress({ epoch, epochs: 2, batch: 2, batches: 2, fraction: epoch / 2, metrics });
    }
    const model = smallModel(2);
    const modelId = `mdl_${jobId.slice(4)}`;
    const metrics = { epoch: 2, loss: 0.5, accuracy: 1, valLoss: 0.55, valAccuracy: 0.8, seconds: 1, imagesPerSecond: 5 };
    await saveTrainedModel(storage, {
      tenant,
      modelId,
      model,
      jobId,
      datasetId: job.data.spec.datasetId,
      classes: ["cat", "dog"],
      imageSize: SMALL_SIZE,
      preprocessing: CAFFE_PREPROCESSING,
      spec: job.data.spec,
      metrics,
      history: [metrics],
      report: null,
      backend: "wasm",
    });
    model.dispose();
    await setJobInfo(db, jobId, { modelId });
    return { modelId };
  });
  const dir = await tempDir("rf-cli-");
  t.after(async () => {
    await worker.close();
    await redis.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  // A directory of class folders, as a user has it on disk.
  const images = path.join(dir, "pets");
  for (const entry of await classFolders(["cat", "dog"], 4)) {
    await fs.mkdir(path.dirname(path.join(images, entry.path)), { recursive: true });
    await fs.writeFile(path.join(images, entry.path), entry.data!);
  }
  const uploaded = await cli("datasets", "upload", images, "--name", "pets");
  assert.equal(uploaded.code, 0, uploaded.stderr);
  const dataset = JSON.parse(uploaded.stdout);
  assert.deepEqual([dataset.name, dataset.classes, dataset.imageCount], ["pets", ["cat", "dog"], 8]);

  const specFile = path.join(dir, "spec.json");
  await fs.writeFile(specFile, JSON.stringify({ baseWeights: "none", epochs: 2, imageSize: 32, validationSplit: 0.25 }));
  const submitted = await cli("jobs", "submit", "--dataset", dataset.id, "--spec", specFile);
  assert.equal(submitted.code, 0, submitted.stderr);
  const job = JSON.parse(submitted.stdout);
  assert.match(job.id, /^job_/);
  assert.equal(job.spec.epochs, 2);

  const watched = await cli("jobs", "watch", job.id);
  assert.equal(watched.code, WATCH_EXIT_CODES.completed, watched.stderr);
  const final = JSON.parse(watched.stdout);
  assert.equal(final.state, "completed");
  // Not a terminal: one line per epoch with its metrics.
  assert.match(watched.stderr, /epoch 1\/2 loss 1\.0000 acc 0\.5000 val_loss 1\.1000 val_acc 0\.4000/);
  assert.match(watched.stderr, /epoch 2\/2 loss 0\.5000 acc 1\.0000/);

  const out = path.join(dir, "model.h5");
  const downloaded = await cli("models", "download", final.modelId, "--format", "keras", "--out", out);
  assert.equal(downloaded.code, 0, downloaded.stderr);
  const result = JSON.parse(downloaded.stdout);
  assert.equal(result.file, out);
  assert.equal(result.bytes, (await fs.stat(out)).size);
  assert.equal((await fs.readFile(out)).subarray(0, 8).toString("latin1"), "\x89HDF\r\n\x1a\n");
  const tfjs = await runCliWithEnv(
    ["models", "download", final.modelId, "--format", "tfjs", "--out", path.join(dir, "m.zip"), "--url", address, "--key", "key-acme"],
    {},
  );
  assert.equal(tfjs.code, 0, tfjs.stderr);
  assert.equal((await fs.readFile(path.join(dir, "m.zip"))).subarray(0, 2).toString(), "PK");

  // Errors: the service's code on one stderr line; 2 for what the caller can fix, 1 when the service cannot be reached.
  const errorOf = (run: { code: number | null; stderr: string }) => ({
    exit: run.code,
    code: JSON.parse(run.stderr.trim().split("\n").pop()!).error.code,
  });
  assert.deepEqual(errorOf(await cli("jobs", "submit", "--dataset", "ds_nope")), { exit: 2, code: "DATASET_NOT_FOUND" });
  assert.deepEqual(errorOf(await cli("jobs", "watch", "job_00000000-0000-0000-0000-000000000000")), { exit: 2, code: "NOT_FOUND" });
  assert.deepEqual(errorOf(await cli("models", "download", final.modelId, "--format", "onnx")), { exit: 2, code: "VALIDATION_FAILED" });
  assert.deepEqual(
    errorOf(
      await runCliWithEnv(["jobs", "submit", "--dataset", dataset.id], { RESNET_FINETUNE_URL: address, RESNET_FINETUNE_KEY: "wrong" }),
    ),
    { exit: 2, code: "UNAUTHORIZED" },
  );
  assert.deepEqual(errorOf(await runCliWithEnv(["jobs", "watch", job.id], { RESNET_FINETUNE_URL: "http://127.0.0.1:9" })), {
    exit: 1,
    code: "SERVICE_UNREACHABLE",
  });
  await assert.rejects(fs.access(path.join(dir, "model.h5.part")));
  tf.disposeVariables();
});

test("jobs watch resumes when the API goes away and comes back, and ends with the job", { timeout: 120_000 }, async (t) => {
  const redis = await startRedis();
  const port = await freePort();
  const first = await build(t, { REDIS_URL: redis.url });
  await first.app.listen({ port, host: "127.0.0.1" });
  const datasetId = await readyDataset(first.config, "default", { cat: 4, dog: 4 });
  const created = await first.app.inject({ method: "POST", url: "/v1/jobs", payload: { datasetId, baseWeights: "none" } });
  assert.equal(created.statusCode, 202, created.body);
  const jobId = created.json().id;

  const watch = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "jobs", "watch", jobId, "--url", `http://127.0.0.1:${port}`], {
    env: { ...process.env, TFJS_BACKEND: "wasm" },
  });
  let stderr = "";
  let stdout = "";
  watch.stderr.on("data", (d) => (stderr += d));
  watch.stdout.on("data", (d) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => watch.on("close", resolve));
  let worker: ReturnType<typeof fakeWorker> | undefined;
  t.after(async () => {
    watch.kill();
    await worker?.close();
    await redis.stop();
  });
  const deadline = Date.now() + 60_000;
  while (!/state: queued/.test(stderr)) {
    assert.ok(Date.now() < deadline, `watch never showed the queued job: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // The API restarts: its streams end, the port is closed for a moment, then a new process answers.
  await first.app.close();
  const second = await build(t, { REDIS_URL: redis.url });
  await second.app.listen({ port, host: "127.0.0.1" });
  worker = fakeWorker(second.config, async () => ({ done: true }));

  assert.equal(await exited, WATCH_EXIT_CODES.completed, stderr);
  assert.equal(JSON.parse(stdout).state, "completed");
});
