import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "../helpers/app.js";

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
