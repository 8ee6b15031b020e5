// Per-tenant quotas (active jobs, open event streams, uploads in flight,
// stored bytes) and the request rate limit: one tenant cannot take the
// service from the others. Quotas and the rate limit are counted in Redis, so
// they hold across API replicas.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { build } from "../helpers/app.js";
import { readyDataset } from "../helpers/jobs.js";
import { classFolders, incompressible, makeZip, multipartBody } from "../helpers/dataset-archives.js";
import { uploadArchive } from "../helpers/dataset-upload.js";
import { assertStillServing, errorOf } from "../helpers/security.js";
import { assertDocumented } from "../helpers/openapi-check.js";

const KEYS = { API_KEYS: "acme:key-acme,globex:key-globex", TFJS_BACKEND: "wasm" };
const acme = { authorization: "Bearer key-acme" };
const globex = { authorization: "Bearer key-globex" };
const SMALL_JOB = { baseWeights: "none", imageSize: 32, batchSize: 2 };

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: "127.0.0.1" });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Retries `check` until it passes (a slot is given back when its connection has closed on the server side). */
async function eventually(check: () => Promise<void>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test("MAX_ACTIVE_JOBS_PER_TENANT: the next job is 429 QUOTA_EXCEEDED until one ends; other tenants are not affected", async (t) => {
  const { app, config } = await build(t, { ...KEYS, MAX_ACTIVE_JOBS_PER_TENANT: "2" });
  const acmeData = await readyDataset(config, "acme", { cat: 4, dog: 4 });
  const globexData = await readyDataset(config, "globex", { cat: 4, dog: 4 });
  const post = (headers: Record<string, string>, datasetId: string) =>
    app.inject({ method: "POST", url: "/v1/jobs", headers, payload: { datasetId, ...SMALL_JOB } });

  const first = await post(acme, acmeData);
  assert.equal(first.statusCode, 202, first.body);
  assert.equal((await post(acme, acmeData)).statusCode, 202);
  const third = await post(acme, acmeData);
  assert.equal(third.statusCode, 429, third.body);
  assert.deepEqual(errorOf(third), { ...errorOf(third), code: "QUOTA_EXCEEDED", details: { quota: "activeJobs", limit: 2, current: 2 } });
  assertDocumented({ statusCode: third.statusCode, body: third.body }, "POST", "/v1/jobs");
  assert.equal((await post(globex, globexData)).statusCode, 202, "globex has its own quota");

  // A cancelled job no longer counts.
  assert.equal((await app.inject({ method: "POST", url: `/v1/jobs/${first.json().id}/cancel`, headers: acme })).statusCode, 200);
  assert.equal((await post(acme, acmeData)).statusCode, 202);
  await assertStillServing(app, config);
});

test("MAX_EVENT_STREAMS_PER_TENANT: one more event stream is 429 QUOTA_EXCEEDED; a closed stream gives its slot back", async (t) => {
  const { app, config } = await build(t, { ...KEYS, MAX_EVENT_STREAMS_PER_TENANT: "3" });
  const datasetId = await readyDataset(config, "acme", { cat: 4, dog: 4 });
  const job = (await app.inject({ method: "POST", url: "/v1/jobs", headers: acme, payload: { datasetId, ...SMALL_JOB } })).json();
  const base = await listen(app);
  const url = `${base}/v1/jobs/${job.id}/events`;
  const open: AbortController[] = [];
  for (let i = 0; i < 3; i++) {
    const abort = new AbortController();
    const res = await fetch(url, { headers: acme, signal: abort.signal });
    assert.equal(res.status, 200);
    open.push(abort);
  }
  const refused = await fetch(url, { headers: acme });
  assert.equal(refused.status, 429);
  const body = (await refused.json()) as { error: { code: string; details: unknown } };
  assert.equal(body.error.code, "QUOTA_EXCEEDED");
  assert.deepEqual(body.error.details, { quota: "eventStreams", limit: 3, current: 3 });

  open.shift()!.abort();
  await eventually(async () => {
    const again = await fetch(url, { headers: acme, signal: AbortSignal.timeout(5000) });
    assert.equal(again.status, 200);
    await again.body?.cancel();
  });
  for (const abort of open) abort.abort();
  await assertStillServing(app, config);
});

test("MAX_UPLOADS_PER_TENANT: a second upload while one is in flight is 429 QUOTA_EXCEEDED", async (t) => {
  const { app, config } = await build(t, { ...KEYS, MAX_UPLOADS_PER_TENANT: "1" });
  const base = await listen(app);
  const port = Number(new URL(base).port);
  const upload = multipartBody(await makeZip(await classFolders(["a", "b"], 2)));
  // The first upload: headers and half of its body, then it waits.
  const slow = net.connect(port, "127.0.0.1");
  slow.on("error", () => {});
  const answer = new Promise<string>((resolve) => {
    let received = "";
    slow.on("data", (d) => (received += d.toString()));
    slow.on("close", () => resolve(received));
  });
  slow.write(
    `POST /v1/datasets HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer key-acme\r\nConnection: close\r\n` +
      `Content-Type: ${upload.headers["content-type"]}\r\nContent-Length: ${upload.payload.length}\r\n\r\n`,
  );
  slow.write(upload.payload.subarray(0, 100));
  // Once the first upload holds its slot (a lease in Redis), the second one is refused.
  const slots = `${config.redisPrefix}:quota:uploads:acme`;
  await eventually(async () => assert.equal(await app.redis.zcard(slots), 1), 30_000);

  const second = await fetch(`${base}/v1/datasets`, { method: "POST", headers: { ...acme, ...upload.headers }, body: upload.payload });
  assert.equal(second.status, 429);
  const error = ((await second.json()) as { error: { code: string; details: unknown } }).error;
  assert.equal(error.code, "QUOTA_EXCEEDED");
  assert.deepEqual(error.details, { quota: "uploads", limit: 1, current: 1 });
  const other = await fetch(`${base}/v1/datasets`, { method: "POST", headers: { ...globex, ...upload.headers }, body: upload.payload });
  assert.equal(other.status, 201, "globex has its own quota");

  // write, not end: a half-closed request is aborted by Node before its handler finishes.
  slow.write(upload.payload.subarray(100));
  assert.match(await answer, /^HTTP\/1\.1 201/);
  await eventually(async () => {
    const after = await fetch(`${base}/v1/datasets`, { method: "POST", headers: { ...acme, ...upload.headers }, body: upload.payload });
    assert.equal(after.status, 201);
  });
  await assertStillServing(app, config);
});

test("MAX_STORED_BYTES_PER_TENANT: an upload that would pass it is 507 STORAGE_FULL before it is read", async (t) => {
  const { app, config } = await build(t, { ...KEYS, MAX_STORED_BYTES_PER_TENANT: "200000" });
  const small = await makeZip(await classFolders(["a", "b"], 2));
  assert.equal((await uploadArchive(app, small, {}, acme)).statusCode, 201);
  const big = await uploadArchive(app, incompressible(250_000), {}, acme);
  assert.equal(big.statusCode, 507, big.body);
  const error = errorOf(big);
  assert.equal(error.code, "STORAGE_FULL");
  assert.equal(error.details.quota, "storedBytes");
  assert.equal(error.details.limit, 200000);
  assert.ok((error.details.current as number) > 0);
  assertDocumented({ statusCode: big.statusCode, body: big.body }, "POST", "/v1/datasets");
  assert.equal((await uploadArchive(app, small, {}, globex)).statusCode, 201, "globex has its own quota");
  await assertStillServing(app, config);
});

test("RATE_LIMIT_MAX: the next request of a tenant is 429 TOO_MANY_REQUESTS, across API replicas sharing Redis; probes are exempt", async (t) => {
  const env = { ...KEYS, RATE_LIMIT_MAX: "5", RATE_LIMIT_WINDOW_MS: "60000" };
  const first = await build(t, env);
  const second = await build(t, { ...env, REDIS_URL: first.config.redisUrl });
  const get = (app: FastifyInstance, headers: Record<string, string>) => app.inject({ method: "GET", url: "/v1/jobs", headers });
  for (let i = 0; i < 3; i++) assert.equal((await get(first.app, acme)).statusCode, 200);
  for (let i = 0; i < 2; i++) assert.equal((await get(second.app, acme)).statusCode, 200);
  const limited = await get(second.app, acme);
  assert.equal(limited.statusCode, 429, limited.body);
  const error = errorOf(limited);
  assert.equal(error.code, "TOO_MANY_REQUESTS");
  assert.equal(error.details.limit, 5);
  assert.ok((error.details.retryAfterSeconds as number) > 0);
  assertDocumented({ statusCode: limited.statusCode, body: limited.body }, "GET", "/v1/jobs");
  assert.equal((await get(first.app, acme)).statusCode, 429, "the other replica counts the same requests");
  assert.equal((await get(first.app, globex)).statusCode, 200, "globex has its own budget");
  for (let i = 0; i < 10; i++) assert.equal((await first.app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
  await assertStillServing(first.app, first.config);
});
