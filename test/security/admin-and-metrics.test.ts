// The queue dashboard shows every tenant's jobs: a tenant key must not open it.
// /metrics can be guarded by a token and names no tenant, job or dataset.
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "../helpers/app.js";
import { readyDataset } from "../helpers/jobs.js";
import { assertStillServing, errorOf } from "../helpers/security.js";
import { loadConfig } from "../../src/config.js";

const KEYS = { API_KEYS: "acme:key-acme,globex:key-globex", ADMIN_KEYS: "ops:key-admin" };
const DASHBOARD = ["/admin/queues", "/admin/queues/api/queues", "/admin/queues/api/redis/stats"];

test("a tenant key gets 403 ADMIN_KEY_REQUIRED from the dashboard and its JSON API; an admin key gets in", async (t) => {
  const { app, config } = await build(t, KEYS);
  for (const url of DASHBOARD) {
    const tenant = await app.inject({ method: "GET", url, headers: { authorization: "Bearer key-acme" } });
    assert.equal(tenant.statusCode, 403, url);
    assert.equal(errorOf(tenant).code, "ADMIN_KEY_REQUIRED", url);
    const anonymous = await app.inject({ method: "GET", url });
    assert.equal(anonymous.statusCode, 401, url);
    assert.equal(errorOf(anonymous).code, "UNAUTHORIZED", url);
  }
  const admin = await app.inject({ method: "GET", url: "/admin/queues/api/queues", headers: { authorization: "Bearer key-admin" } });
  assert.equal(admin.statusCode, 200);
  // An admin key is not a tenant key either.
  const v1 = await app.inject({ method: "GET", url: "/v1/jobs", headers: { authorization: "Bearer key-admin" } });
  assert.equal(v1.statusCode, 401);
  await assertStillServing(app, config);
});

test("with API_KEYS but no ADMIN_KEYS the dashboard is not served at all", async (t) => {
  const { app, config } = await build(t, { API_KEYS: KEYS.API_KEYS });
  for (const url of DASHBOARD) {
    const res = await app.inject({ method: "GET", url, headers: { authorization: "Bearer key-acme" } });
    assert.equal(res.statusCode, 404, url);
    assert.equal(errorOf(res).code, "ROUTE_NOT_FOUND", url);
  }
  await assertStillServing(app, config);
});

test("with authentication off the dashboard answers loopback clients only", async (t) => {
  const { app, config } = await build(t);
  const local = await app.inject({ method: "GET", url: "/admin/queues/api/queues", remoteAddress: "127.0.0.1" });
  assert.equal(local.statusCode, 200);
  const remote = await app.inject({ method: "GET", url: "/admin/queues/api/queues", remoteAddress: "203.0.113.9" });
  assert.equal(remote.statusCode, 403);
  assert.equal(errorOf(remote).code, "ADMIN_KEY_REQUIRED");
  await assertStillServing(app, config);
});

test("an admin key that is also a tenant's key is refused at start", () => {
  assert.throws(() => loadConfig({ API_KEYS: "acme:same", ADMIN_KEYS: "ops:same" }), /share a key/);
});

test("METRICS_TOKEN guards /metrics: 401 without it, 200 with it", async (t) => {
  const { app, config } = await build(t, { ...KEYS, METRICS_TOKEN: "scrape-me" });
  for (const authorization of [undefined, "Bearer key-acme", "Bearer key-admin", "Bearer wrong"]) {
    const res = await app.inject({ method: "GET", url: "/metrics", headers: authorization ? { authorization } : {} });
    assert.equal(res.statusCode, 401, String(authorization));
    assert.equal(errorOf(res).code, "UNAUTHORIZED");
  }
  const ok = await app.inject({ method: "GET", url: "/metrics", headers: { authorization: "Bearer scrape-me" } });
  assert.equal(ok.statusCode, 200);
  await assertStillServing(app, config);
});

test("/metrics names no tenant, job or dataset after tenants used the API", async (t) => {
  const { app, config } = await build(t, { ...KEYS, TFJS_BACKEND: "wasm" });
  const datasetId = await readyDataset(config, "acme", { cat: 4, dog: 4 });
  const created = await app.inject({
    method: "POST",
    url: "/v1/jobs",
    headers: { authorization: "Bearer key-acme" },
    payload: { datasetId, baseWeights: "none", imageSize: 32, batchSize: 2 },
  });
  assert.equal(created.statusCode, 202, created.body);
  const jobId = created.json().id as string;
  await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { authorization: "Bearer key-acme" } });
  await app.inject({ method: "GET", url: `/v1/datasets/${datasetId}`, headers: { authorization: "Bearer key-globex" } });
  const body = (await app.inject({ method: "GET", url: "/metrics" })).body;
  for (const secret of ["acme", "globex", jobId, datasetId, "tenant"]) assert.ok(!body.includes(secret), `/metrics mentions ${secret}`);
  await assertStillServing(app, config);
});
