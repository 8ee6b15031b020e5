import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { chooseRedis, REDIS_MISSING_MESSAGE, type RedisProbes } from "../../src/launcher/choose-redis.js";
import { DEFAULT_REDIS_URL } from "../../src/config.js";
import { freePort, onPath, pingRedis } from "../../src/launcher/redis-server.js";
import { startRedis } from "../helpers/redis.js";

function probes(defaultAnswers: boolean, hasRedisServer: boolean): RedisProbes & { pinged: number } {
  const p = {
    pinged: 0,
    async defaultAnswers() {
      p.pinged++;
      return defaultAnswers;
    },
    hasRedisServer: () => hasRedisServer,
  };
  return p;
}

test("REDIS_URL wins without probing anything", async () => {
  const p = probes(true, true);
  const choice = await chooseRedis({ REDIS_URL: "redis://cache:6380/2" }, "/data", p);
  assert.deepEqual(choice, { kind: "configured", url: "redis://cache:6380/2" });
  assert.equal(p.pinged, 0);
});

test("a Redis answering on the default port comes next", async () => {
  assert.deepEqual(await chooseRedis({}, "/data", probes(true, true)), { kind: "running", url: DEFAULT_REDIS_URL });
});

test("an empty REDIS_URL counts as unset", async () => {
  assert.deepEqual(await chooseRedis({ REDIS_URL: "" }, "/data", probes(true, false)), { kind: "running", url: DEFAULT_REDIS_URL });
});

test("with nothing answering but redis-server on the PATH, a private one lives under DATA_DIR/redis", async () => {
  assert.deepEqual(await chooseRedis({}, "/srv/rf", probes(false, true)), { kind: "private", dir: path.join("/srv/rf", "redis") });
});

test("with no Redis at all the answer is one line naming the Debian package and docker compose", async () => {
  const choice = await chooseRedis({}, "/data", probes(false, false));
  assert.equal(choice.kind, "missing");
  assert.equal(choice.kind === "missing" && choice.message, REDIS_MISSING_MESSAGE);
  assert.doesNotMatch(REDIS_MISSING_MESSAGE, /\n/);
  assert.match(REDIS_MISSING_MESSAGE, /apt-get install redis-server/);
  assert.match(REDIS_MISSING_MESSAGE, /docker compose up -d redis/);
});

test("pingRedis tells a live Redis from a closed port", async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  assert.equal(await pingRedis("127.0.0.1", redis.port), true);
  assert.equal(await pingRedis("127.0.0.1", await freePort()), false);
});

test("onPath finds executables on the given PATH only", () => {
  assert.equal(onPath("node", path.dirname(process.execPath)), true);
  assert.equal(onPath("node", "/nonexistent-dir"), false);
  assert.equal(onPath("redis-server", ""), false);
});
