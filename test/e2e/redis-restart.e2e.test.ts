// A Redis with AOF (appendfsync always) killed with kill -9 and started again
// in the middle of a job: nothing the service keeps in Redis is lost. Real
// processes: redis-server, the API and a worker, driven over HTTP.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { Redis } from "ioredis";
import { freePort } from "../helpers/redis.js";
import { tempDir } from "../helpers/app.js";
import { startService, type ServiceProcess, e2eServiceEnv } from "../helpers/processes.js";
import { datasetZip } from "../helpers/training-fixtures.js";
import { startRedisServer, type RedisServer } from "../../src/launcher/redis-server.js";

const AOF_ALWAYS = ["--appendfsync", "always"];

/** Every key under the service's prefix with its value, except BullMQ's short-lived locks and markers. */
async function snapshot(redis: Redis): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const key of (await redis.keys("rf:*")).sort()) {
    if (/:lock$|:stalled-check$|:marker$|:events$|:meta$|:id$/.test(key)) continue;
    const type = await redis.type(key);
    const value =
      type === "hash"
        ? await redis.hgetall(key)
        : type === "string"
          ? await redis.get(key)
          : type === "zset"
            ? await redis.zrange(key, "0", "-1")
            : type === "set"
              ? (await redis.smembers(key)).sort()
              : type === "list"
                ? await redis.lrange(key, 0, -1)
                : type;
    out.set(key, value);
  }
  return out;
}

test("kill -9 of an AOF Redis during a job, then a restart: no job, record, metric or Idempotency-Key is lost, and the jobs complete", {
  timeout: 600_000,
}, async (t) => {
  const redisDir = await tempDir("rf-aof-");
  const dataDir = await tempDir("rf-aof-data-");
  const redisPort = await freePort();
  let redisServer: RedisServer = await startRedisServer(redisDir, redisPort, AOF_ALWAYS);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = e2eServiceEnv(redisServer.url, dataDir, port);
  const services: ServiceProcess[] = [startService("api", "src/server.ts", env), startService("worker", "src/worker.ts", env)];
  const [api, worker] = services;
  const client = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  t.after(async () => {
    client.disconnect();
    await Promise.all(services.map((s) => s.stop()));
    await redisServer.stop();
    await fs.rm(redisDir, { recursive: true, force: true });
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  await api.waitFor(/Server listening/);
  await worker.waitFor(/worker started/);

  const call = async (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
    const response = await fetch(`${base}${url}`, init);
    return { status: response.status, body: await response.json() };
  };
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(await datasetZip(6))]), "dataset.zip");
  const dataset = await call("POST", "/v1/datasets", form);
  assert.equal(dataset.status, 201);
  const spec = {
    datasetId: dataset.body.id,
    baseWeights: "none",
    unfrozenLayers: 0,
    epochs: 3,
    batchSize: 2,
    imageSize: 32,
    validationSplit: 0.34,
    seed: 7,
  };
  const running = await call("POST", "/v1/jobs", spec, { "idempotency-key": "running" });
  const waiting = await call("POST", "/v1/jobs", { ...spec, seed: 8 }, { "idempotency-key": "waiting" });
  assert.equal(running.status, 202);
  assert.equal(waiting.status, 202);

  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 240_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs} ms\n${worker.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200)); // polls the API: its answers are the events this test waits for
    }
  };
  await until("epoch 1 of the running job", async () => (await call("GET", `/v1/jobs/${running.body.id}`)).body.metrics.length >= 1);

  const before = await snapshot(client);
  process.kill(redisServer.pid, "SIGKILL");
  await redisServer.stop();
  redisServer = await startRedisServer(redisDir, redisPort, AOF_ALWAYS);
  await until("the client back on the restarted Redis", async () => (await client.ping()) === "PONG", 30_000);
  const after = await snapshot(client);
  for (const [key, value] of before) {
    if (/:metrics$/.test(key) || /^rf:training:job_/.test(key) || /^rf:training:(active|wait|completed|failed|delayed)$/.test(key)) {
      assert.ok(after.has(key), `${key} was lost`);
    } else if (/:rate-limit:/.test(key)) {
      // The API sends its rate-limit counts every 50 ms: one may still grow between the snapshot and the kill.
      assert.ok(Number(after.get(key)) >= Number(value), `${key} went down across the restart: ${value} -> ${after.get(key)}`);
    } else {
      assert.deepEqual(after.get(key), value, `${key} changed across the restart`);
    }
  }
  for (const id of [running.body.id, waiting.body.id]) assert.ok(after.has(`rf:job:${id}`) && after.has(`rf:training:${id}`), id);
  assert.ok(before.has(`rf:job:${running.body.id}:metrics`));

  // The Idempotency-Keys still answer their jobs (once the API's connection is back: 503 until then).
  await until("the API ready again", async () => (await fetch(`${base}/readyz`)).status === 200, 30_000);
  const again = await call("POST", "/v1/jobs", { ...spec, seed: 8 }, { "idempotency-key": "waiting" });
  assert.equal(again.status, 200);
  assert.equal(again.body.id, waiting.body.id);

  for (const id of [running.body.id, waiting.body.id]) {
    await until(`job ${id} completed`, async () => (await call("GET", `/v1/jobs/${id}`)).body.state === "completed");
    const job = (await call("GET", `/v1/jobs/${id}`)).body;
    assert.deepEqual(
      job.metrics.map((m: { epoch: number }) => m.epoch),
      [1, 2, 3],
    );
  }
  const list = await call("GET", "/v1/jobs");
  assert.deepEqual(list.body.items.map((j: { id: string }) => j.id).sort(), [running.body.id, waiting.body.id].sort());
});
