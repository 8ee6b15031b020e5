// Answers the router and the docs' static files give on their own (before any route runs) come in the
// error shape with a code, and no error tells a client where the server keeps its files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "../helpers/app.js";
import { placeImagenetWeights, readyDataset } from "../helpers/jobs.js";

function assertErrorShape(body: string, status: number, actual: number, code: string) {
  assert.equal(actual, status, body);
  const parsed = JSON.parse(body);
  assert.equal(parsed.error.code, code, body);
  assert.equal(typeof parsed.error.message, "string");
  assert.ok("details" in parsed.error);
}

test("an over-long path parameter is 414 URI_TOO_LONG and a malformed URL 400, both in the error shape", async (t) => {
  const { app } = await build(t);
  for (const url of [`/v1/datasets/${"a".repeat(200)}`, `/v1/jobs/${"j".repeat(5000)}/events`]) {
    const res = await app.inject({ method: "GET", url });
    assertErrorShape(res.body, 414, res.statusCode, "URI_TOO_LONG");
    assert.ok(res.body.length < 1000, "the answer does not echo the URL");
  }
  const bad = await app.inject({ method: "GET", url: "/v1/datasets/%ZZ" });
  assertErrorShape(bad.body, 400, bad.statusCode, "VALIDATION_FAILED");
});

test("a docs asset path that tries to leave its folder is 403 PATH_FORBIDDEN in the error shape", async (t) => {
  const { app } = await build(t);
  for (const url of ["/docs/static/..%5c..%5cpackage.json", "/docs/static/foo/..%5C", "/docs/static//"]) {
    const res = await app.inject({ method: "GET", url });
    assertErrorShape(res.body, 403, res.statusCode, "PATH_FORBIDDEN");
  }
});

test("IMAGENET_WEIGHTS_MISSING names the setting, not the server's path", async (t) => {
  const { app, config } = await build(t);
  const datasetId = await readyDataset(config, "default", { cat: 4, dog: 4 });
  await placeImagenetWeights(config);
  const fs = await import("node:fs/promises");
  await fs.rm(config.imagenetWeights);
  const res = await app.inject({ method: "POST", url: "/v1/jobs", payload: { datasetId } });
  assertErrorShape(res.body, 422, res.statusCode, "IMAGENET_WEIGHTS_MISSING");
  assert.equal(res.json().error.details.setting, "IMAGENET_WEIGHTS");
  assert.ok(!res.body.includes(config.dataDir), "no server path in the answer");
});
