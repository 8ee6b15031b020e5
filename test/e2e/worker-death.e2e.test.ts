// kill -9 of a worker process mid-job: its training child stops too (an orphan
// would train on and write the same checkpoints as the retried attempt), and
// a new worker resumes the job to completion. Real processes, over HTTP.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { freePort, startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/app.js";
import { descendants, startService, type ServiceProcess, e2eServiceEnv } from "../helpers/processes.js";
import { datasetZip } from "../helpers/training-fixtures.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("kill -9 of the worker: its training child exits, and a new worker completes the job with each epoch once", {
  timeout: 600_000,
}, async (t) => {
  const redis = await startRedis();
  const dataDir = await tempDir("rf-worker-death-");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = e2eServiceEnv(redis.url, dataDir, port);
  const services: ServiceProcess[] = [];
  t.after(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const api = startService("api", "src/server.ts", env);
  const first = startService("worker", "src/worker.ts", env);
  services.push(api, first);
  await api.waitFor(/Server listening/);
  await first.waitFor(/worker started/);

  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(await datasetZip(6))]), "dataset.zip");
  const dataset = await (await fetch(`${base}/v1/datasets`, { method: "POST", body: form })).json();
  const spec = {
    datasetId: dataset.id,
    baseWeights: "none",
    unfrozenLayers: 0,
    epochs: 4,
    batchSize: 2,
    imageSize: 32,
    validationSplit: 0.34,
    seed: 7,
  };
  const posted = await fetch(`${base}/v1/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(spec),
  });
  assert.equal(posted.status, 202);
  const { id } = await posted.json();
  const job = async () => (await fetch(`${base}/v1/jobs/${id}`)).json();
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs} ms\n${first.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200)); // polling the API and the process table: there is no event to wait on
    }
  };

  await until("epoch 1 done", async () => (await job()).metrics.length >= 1, 240_000);
  const child = descendants(first.child.pid!).find((p) => /bullmq.*main\.js/.test(p.args));
  assert.ok(child, "the worker has no training child");
  // tsx runs the worker as its child: kill that node process, the training child's parent.
  const workerPid = descendants(first.child.pid!).find((p) => /src\/worker\.ts/.test(p.args))?.pid ?? first.child.pid!;
  process.kill(workerPid, "SIGKILL");
  await until("the orphaned training child exited", async () => !alive(child.pid), 30_000);

  const second = startService("worker", "src/worker.ts", env);
  services.push(second);
  await until("the job completed", async () => (await job()).state === "completed", 300_000);
  const done = await job();
  assert.deepEqual(
    done.metrics.map((m: { epoch: number }) => m.epoch),
    [1, 2, 3, 4],
  );
});
