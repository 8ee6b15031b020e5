import { test } from "node:test";
import assert from "node:assert/strict";
import type * as tf from "@tensorflow/tfjs";
import { createModelCache } from "../../src/trained-models/model-cache.js";

function fakeModel(name: string, disposed: string[]): tf.LayersModel {
  return { name, dispose: () => disposed.push(name) } as unknown as tf.LayersModel;
}

test("the cache loads a model once, evicts the least recently used past capacity and disposes it", async () => {
  const disposed: string[] = [];
  const cache = createModelCache(2);
  const load = (name: string) => async () => fakeModel(name, disposed);
  const a = await cache.get("a", load("a"));
  assert.equal(await cache.get("a", load("a-again")), a);
  await cache.get("b", load("b"));
  await cache.get("a", load("a-again"));
  await cache.get("c", load("c"));
  assert.equal(cache.loads, 3);
  assert.equal(cache.has("a"), true);
  assert.equal(cache.has("b"), false);
  assert.equal(cache.has("c"), true);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(disposed, ["b"]);
});

test("concurrent callers share one load, and a failed load is retried by the next call", async () => {
  const cache = createModelCache(1);
  let loads = 0;
  const slow = async () => {
    loads += 1;
    await new Promise((r) => setImmediate(r));
    return fakeModel("m", []);
  };
  const [x, y] = await Promise.all([cache.get("m", slow), cache.get("m", slow)]);
  assert.equal(x, y);
  assert.equal(loads, 1);
  await assert.rejects(
    cache.get("bad", async () => Promise.reject(new Error("boom"))),
    /boom/,
  );
  await new Promise((r) => setImmediate(r));
  assert.equal(cache.has("bad"), false);
  assert.equal((await cache.get("bad", async () => fakeModel("bad", []))).name, "bad");
});
