// The job read cache's own rules, on a real Redis: the prefixes it has Redis
// track cover every key the read uses, and a reply that an invalidation
// overtook is not kept. The race is made deterministic with a TCP proxy that
// holds Redis' replies to the data connection until the test lets them through.
import { after, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import net from "node:net";
import { createRedis, waitForRedis } from "../../src/jobs/redis.js";
import { jobRedis, setJobInfo } from "../../src/jobs/job-records.js";
import { readJob, readJobKeys } from "../../src/jobs/job-read.js";
import { createJobReadCache, trackedPrefixes } from "../../src/jobs/job-read-cache.js";
import { createTrainingQueue } from "../../src/jobs/training-queue.js";
import { JOB_SPEC_DEFAULTS } from "../../src/jobs/job-spec.js";
import { testConfig } from "../helpers/app.js";
import { createJobRecord, until } from "../helpers/jobs.js";
import { startRedis } from "../helpers/redis.js";

const server = await startRedis();
after(() => server.stop());

test("the tracked prefixes cover every key a job read uses, and neither starts the other", async () => {
  const config = await testConfig({ REDIS_URL: server.url });
  const redis = createRedis(config.redisUrl, "producer");
  try {
    const db = jobRedis(redis, config);
    const queue = createTrainingQueue(redis, config);
    const prefixes = trackedPrefixes(db, queue);
    for (const key of readJobKeys(db, queue, "job_00000000-0000-0000-0000-000000000000")) {
      assert.ok(
        prefixes.some((p) => key.startsWith(p)),
        `${key} is under none of ${prefixes}`,
      );
    }
    assert.equal(prefixes.length, 2);
    assert.ok(!prefixes[0].startsWith(prefixes[1]) && !prefixes[1].startsWith(prefixes[0]), `${prefixes} overlap`);
    await queue.close();
  } finally {
    redis.disconnect();
  }
});

/** A TCP proxy to `port` that, once `hold()` is called, keeps Redis' replies until `release()`; "held" when one is kept. */
async function holdingProxy(t: TestContext, port: number) {
  const events = new EventEmitter();
  let holding = false;
  const held: { socket: net.Socket; chunk: Buffer }[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    sockets.push(client, upstream);
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (!holding) return client.write(chunk);
      held.push({ socket: client, chunk });
      events.emit("held");
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ]) {
      a.on("close", () => b.destroy());
      a.on("error", () => b.destroy());
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    events,
    hold: () => (holding = true),
    release() {
      holding = false;
      for (const { socket, chunk } of held.splice(0)) socket.write(chunk);
    },
  };
}

test("a read whose job is invalidated before its reply arrives is not kept", async (t) => {
  const config = await testConfig({ REDIS_URL: server.url });
  const proxy = await holdingProxy(t, server.port);
  // The cache reads through the proxy; the other process writes to Redis directly.
  const data = createRedis(proxy.url, "producer");
  const other = createRedis(server.url, "producer");
  const queue = createTrainingQueue(other, config);
  const db = jobRedis(data, config);
  const cache = createJobReadCache({ redisUrl: server.url, db, queue, log: console, options: { maxAgeMs: 60_000 } });
  t.after(async () => {
    await cache.close();
    await queue.close();
    data.disconnect();
    other.disconnect();
  });
  assert.ok((await waitForRedis(data, 5_000)) && (await waitForRedis(other, 5_000)));
  const jobId = "job_00000000-0000-0000-0000-000000000001";
  await createJobRecord(jobRedis(other, config), {
    jobId,
    tenant: "acme",
    spec: { ...JOB_SPEC_DEFAULTS, datasetId: "ds_000000000000000000000", classes: ["a", "b"] } as never,
    createdAt: new Date().toISOString(),
  });
  // Loads the script, so the held read below is one EVALSHA (not a NOSCRIPT answer and a second try).
  await readJob(db, queue, "job_00000000-0000-0000-0000-000000000000", { metrics: false });
  await until(() => cache.isEnabled(), "the cache is enabled");

  proxy.hold();
  const reading = cache.read(jobId, { metrics: false });
  await once(proxy.events, "held"); // Redis has run the read: its reply is on its way
  const invalidated = once(cache.connection, "messageBuffer");
  await setJobInfo(jobRedis(other, config), jobId, { backend: "written-after-the-read" });
  await invalidated;
  proxy.release();

  assert.equal((await reading)?.record.backend, undefined, "the held read ran before the write");
  const next = await cache.read(jobId, { metrics: false });
  assert.equal(next?.record.backend, JSON.stringify("written-after-the-read"), "the cache kept the overtaken reply");
});
