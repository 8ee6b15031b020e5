// Listing, reading and deleting datasets; tenant isolation; aborted uploads.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { build } from "../helpers/app.js";
import { classFolders, incompressible, makeTar, makeZip, multipartBody } from "../helpers/dataset-archives.js";
import { filesUnder, uploadArchive } from "../helpers/dataset-upload.js";

test("GET /v1/datasets pages newest first with a cursor", async (t) => {
  const { app } = await build(t);
  const archive = await makeZip(await classFolders(["a", "b"], 2));
  const ids: string[] = [];
  for (const name of ["one", "two", "three"]) ids.push((await uploadArchive(app, archive, { name })).json().id);

  const first = await app.inject({ method: "GET", url: "/v1/datasets?limit=2" });
  assert.equal(first.statusCode, 200);
  assert.deepEqual(
    first.json().items.map((d: { name: string }) => d.name),
    ["three", "two"],
  );
  assert.equal(first.json().nextCursor, ids[1]);
  const second = await app.inject({ method: "GET", url: `/v1/datasets?limit=2&cursor=${first.json().nextCursor}` });
  assert.deepEqual(
    second.json().items.map((d: { name: string }) => d.name),
    ["one"],
  );
  assert.equal(second.json().nextCursor, null);
  assert.equal(second.json().items[0].subsetCounts, undefined);

  const bad = await app.inject({ method: "GET", url: "/v1/datasets?limit=0" });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error.code, "VALIDATION_FAILED");
});

test("DELETE answers 204, then 404; 409 while a job uses the dataset", async (t) => {
  const inUse = new Set<string>();
  const { app, config } = await build(t, {}, { isDatasetInUse: async (_tenant, id) => inUse.has(id) });
  const id = (await uploadArchive(app, await makeZip(await classFolders(["a", "b"], 2)))).json().id;

  inUse.add(id);
  const busy = await app.inject({ method: "DELETE", url: `/v1/datasets/${id}` });
  assert.equal(busy.statusCode, 409);
  assert.equal(busy.json().error.code, "DATASET_IN_USE");
  assert.equal((await app.inject({ method: "GET", url: `/v1/datasets/${id}` })).statusCode, 200);

  inUse.delete(id);
  const gone = await app.inject({ method: "DELETE", url: `/v1/datasets/${id}` });
  assert.equal(gone.statusCode, 204);
  assert.deepEqual(await filesUnder(config.dataDir), []);
  for (const method of ["GET", "DELETE"] as const) {
    const res = await app.inject({ method, url: `/v1/datasets/${id}` });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, "DATASET_NOT_FOUND");
  }
  assert.equal((await app.inject({ method: "GET", url: "/v1/datasets/..%2F..%2Fetc" })).json().error.code, "DATASET_NOT_FOUND");
});

test("datasets belong to the key's tenant: another tenant gets 404 and an empty list", async (t) => {
  const { app } = await build(t, { API_KEYS: "acme:key-a,globex:key-g" });
  const acme = { authorization: "Bearer key-a" };
  const globex = { authorization: "Bearer key-g" };
  const created = await uploadArchive(app, await makeZip(await classFolders(["a", "b"], 2)), {}, acme);
  assert.equal(created.statusCode, 201, created.body);
  const id = created.json().id;

  assert.equal((await app.inject({ method: "GET", url: `/v1/datasets/${id}`, headers: acme })).statusCode, 200);
  assert.equal((await app.inject({ method: "GET", url: `/v1/datasets/${id}`, headers: globex })).statusCode, 404);
  assert.equal((await app.inject({ method: "DELETE", url: `/v1/datasets/${id}`, headers: globex })).statusCode, 404);
  assert.deepEqual((await app.inject({ method: "GET", url: "/v1/datasets", headers: globex })).json(), { items: [], nextCursor: null });
  assert.equal((await app.inject({ method: "GET", url: "/v1/datasets", headers: acme })).json().items.length, 1);
  const anonymous = await uploadArchive(app, await makeZip(await classFolders(["a", "b"], 2)));
  assert.equal(anonymous.statusCode, 401);
});

test("an upload aborted mid-stream over real HTTP leaves no file behind", async (t) => {
  const { app, config } = await build(t);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as AddressInfo;
  const archive = await makeTar([...(await classFolders(["a", "b"], 2)), { path: "a/pad.bin", data: incompressible(4 * 1024 * 1024) }]);
  const body = multipartBody(archive);

  // The server has the scratch file open once the first half arrived; then the client vanishes.
  const closed = new Promise<void>((resolve) => app.server.once("connection", (socket) => socket.once("close", () => resolve())));
  const req = http.request({
    port,
    method: "POST",
    path: "/v1/datasets",
    headers: { ...body.headers, "content-length": body.payload.length },
  });
  req.on("error", () => {});
  req.write(body.payload.subarray(0, body.payload.length / 2));
  await waitFor(async () => (await filesUnder(config.dataDir)).length > 0, "the upload to start writing");
  req.destroy();
  await closed;
  await waitFor(async () => (await filesUnder(config.dataDir)).length === 0, "the scratch files to be removed");
});

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
