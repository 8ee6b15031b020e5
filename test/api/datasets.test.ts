import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { build } from "../helpers/app.js";
import { classFolders, makeImage, makeTar, makeTgz, makeZip, multipartBody } from "../helpers/dataset-archives.js";

async function upload(app: FastifyInstance, archive: Buffer, fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
  const body = multipartBody(archive, fields);
  return app.inject({ method: "POST", url: "/v1/datasets", payload: body.payload, headers: { ...body.headers, ...headers } });
}

/** Every regular file under a directory (empty directories do not count). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() || entry.isSymbolicLink()) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

test("a zip of class folders becomes a dataset with the documented shape", async (t) => {
  const { app, config } = await build(t);
  const entries = await classFolders(["cats", "dogs"], 3);
  const res = await upload(app, await makeZip(entries), { name: "pets" });
  assert.equal(res.statusCode, 201, res.body);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ["bytes", "classes", "counts", "createdAt", "duplicates", "id", "imageCount", "name", "rejected", "split", "status"]);
  assert.match(body.id, /^ds_/);
  assert.equal(body.name, "pets");
  assert.equal(body.status, "ready");
  assert.deepEqual(body.classes, ["cats", "dogs"]);
  assert.deepEqual(body.counts, { cats: 3, dogs: 3 });
  assert.equal(body.imageCount, 6);
  assert.equal(body.split, "random");
  assert.deepEqual(body.rejected, []);
  assert.deepEqual(body.duplicates, { sameClass: [], conflicts: [] });
  assert.equal(body.bytes, entries.reduce((n, e) => n + e.data!.length, 0));

  const got = await app.inject({ method: "GET", url: `/v1/datasets/${body.id}` });
  assert.equal(got.statusCode, 200);
  assert.deepEqual(got.json(), body);
  const stored = (await filesUnder(config.dataDir)).map((f) => path.relative(config.dataDir, f)).sort();
  assert.equal(stored.filter((f) => f.includes("/images/")).length, 6);
  assert.ok(stored.includes(`tenants/default/datasets/${body.id}/dataset.json`));
  assert.equal(stored.filter((f) => f.startsWith(".tmp")).length, 0);
});

test("tar and tar.gz are recognised by content, whatever the file is called", async (t) => {
  const { app } = await build(t);
  const entries = await classFolders(["a", "b"], 2, "top/", "jpeg");
  for (const archive of [await makeTar(entries), await makeTgz(entries)]) {
    const body = multipartBody(archive, {}, "misleading.zip");
    const res = await app.inject({ method: "POST", url: "/v1/datasets", payload: body.payload, headers: body.headers });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().counts, { a: 2, b: 2 });
    assert.equal(res.json().name, "misleading");
  }
});
