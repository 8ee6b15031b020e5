import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "../helpers/app.js";

test("the queue dashboard serves its page and shows the training queue, read-only", async (t) => {
  const { app } = await build(t);
  const page = await app.inject({ method: "GET", url: "/admin/queues" });
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers["content-type"]), /text\/html/);
  const api = await app.inject({ method: "GET", url: "/admin/queues/api/queues" });
  assert.equal(api.statusCode, 200);
  const queues = api.json().queues as { name: string; readOnlyMode: boolean }[];
  assert.deepEqual(
    queues.map((q) => [q.name, q.readOnlyMode]),
    [["training", true]],
  );
});

test("with ADMIN_KEYS the queue dashboard needs an admin key", async (t) => {
  const { app } = await build(t, { API_KEYS: "acme:k-1", ADMIN_KEYS: "ops:a-1" });
  for (const url of ["/admin/queues", "/admin/queues/api/queues"]) {
    const denied = await app.inject({ method: "GET", url });
    assert.equal(denied.statusCode, 401, url);
    assert.equal(denied.json().error.code, "UNAUTHORIZED");
  }
  const allowed = await app.inject({ method: "GET", url: "/admin/queues", headers: { authorization: "Bearer a-1" } });
  assert.equal(allowed.statusCode, 200);
});
