import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { build, tempDir } from "../helpers/app.js";

test("GET /healthz answers ok", async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ method: "GET", url: "/healthz" });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: "ok" });
});

test("an unknown route is a coded 404", async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ method: "GET", url: "/nope" });
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().error.code, "ROUTE_NOT_FOUND");
});

test("with API_KEYS a /v1 route needs a key but /healthz does not", async (t) => {
  const { app } = await build(t, { API_KEYS: "acme:secret-1" });
  assert.equal((await app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
  const denied = await app.inject({ method: "GET", url: "/v1/anything" });
  assert.equal(denied.statusCode, 401);
  assert.equal(denied.json().error.code, "UNAUTHORIZED");
  const wrong = await app.inject({ method: "GET", url: "/v1/anything", headers: { authorization: "Bearer nope" } });
  assert.equal(wrong.statusCode, 401);
});

test("GET /readyz is ready when Redis answers and storage is writable", async (t) => {
  const { app } = await build(t);
  const res = await app.inject({ method: "GET", url: "/readyz" });
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().status, "ready");
  assert.deepEqual(res.json().checks, { redis: "ok", storage: "ok" });
});

test("GET /readyz is 503 naming redis when Redis is down", async (t) => {
  const { app, redis } = await build(t);
  await redis!.stop();
  const res = await app.inject({ method: "GET", url: "/readyz" });
  assert.equal(res.statusCode, 503);
  assert.equal(res.json().status, "not ready");
  assert.match(res.json().checks.redis, /^failed: /);
  assert.equal(res.json().checks.storage, "ok");
});

test("GET /readyz is 503 naming storage when DATA_DIR cannot be written", async (t) => {
  const file = path.join(await tempDir(), "not-a-directory");
  await fs.writeFile(file, "");
  const { app } = await build(t, { DATA_DIR: file });
  const res = await app.inject({ method: "GET", url: "/readyz" });
  assert.equal(res.statusCode, 503);
  assert.equal(res.json().checks.redis, "ok");
  assert.match(res.json().checks.storage, /^failed: /);
});
