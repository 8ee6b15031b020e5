// GET /v1/jobs/{id} through the job read cache: a repeated GET costs no Redis
// command, and whatever another connection writes (the record, the metrics,
// BullMQ's state) shows on the next GET once Redis' invalidation arrives. The
// cache's age bound is lengthened here, so only an invalidation can refresh an entry.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import supertest from "supertest";
import type { Job } from "bullmq";
import { build } from "../helpers/app.js";
import { fakeWorker, nextEvent, placeImagenetWeights, readyDataset, until } from "../helpers/jobs.js";
import { clientCommands } from "../helpers/redis-monitor.js";
import { createRedis } from "../../src/jobs/redis.js";
import { appendEpochMetrics, jobRedis, setJobInfo } from "../../src/jobs/job-records.js";
import { JOB_READ_CACHE_CONNECTION } from "../../src/jobs/job-read-cache.js";

const KEYS = { API_KEYS: "acme:key-acme,globex:key-globex" };
const acme = { authorization: "Bearer key-acme" };
const globex = { authorization: "Bearer key-globex" };
/** Longer than any wait here: an entry refreshed within it was invalidated. */
const LONG_AGE_MS = 60_000;

async function setup(t: TestContext) {
  const { app, config } = await build(t, KEYS, { jobReadCache: { maxAgeMs: LONG_AGE_MS } });
  await placeImagenetWeights(config);
  const datasetId = await readyDataset(config, "acme", { cat: 10, dog: 10 });
  const http = supertest(app.server);
  // Another process's connection: its writes reach the API only through Redis.
  const other = createRedis(config.redisUrl, "producer");
  // build's cleanup, registered first, stops Redis before this one runs: the reconnect errors meanwhile are expected.
  other.on("error", () => {});
  t.after(() => other.disconnect());
  await until(() => app.jobReadCache.isEnabled(), "the cache is enabled");
  const post = async (): Promise<string> => {
    const res = await http
      .post("/v1/jobs")
      .set(acme)
      .send({ datasetId, classes: ["cat", "dog"] });
    assert.equal(res.status, 202, res.text);
    return res.body.id;
  };
  const get = async (id: string, auth = acme) => http.get(`/v1/jobs/${id}`).set(auth);
  return { app, config, http, other, elsewhere: jobRedis(other, config), post, get };
}

/** The commands of a window that are about `id`, and those about nothing (rate-limit flushes and blocking reads aside). */
function split(commands: string[][], id: string): { about: string[][]; unrelated: string[][] } {
  const background = (args: string[]) => args.some((a) => a.includes(":rate-limit:")) || /^x?read|^bzpopmin$|^blmove$/i.test(args[0]);
  return {
    about: commands.filter((args) => args.some((a) => a.includes(id))),
    unrelated: commands.filter((args) => !background(args) && !args.some((a) => a.includes(id))),
  };
}

test("a second GET of a job sends no Redis command and answers the same", async (t) => {
  const { app, post, get } = await setup(t);
  const id = await post();
  const bodies: unknown[] = [];
  const windows = [];
  for (let i = 0; i < 2; i++) {
    windows.push(
      split(
        await clientCommands(app.redis, async () => {
          const res = await get(id);
          assert.equal(res.status, 200);
          bodies.push(res.body);
        }),
        id,
      ),
    );
  }
  assert.equal(windows[0].about.length, 1, "the first GET reads the job");
  assert.deepEqual(windows[1], { about: [], unrelated: [] }, "the second GET sent commands");
  assert.deepEqual(bodies[1], bodies[0]);
});

test("another tenant gets 404 for a job in the cache, without a Redis command", async (t) => {
  const { app, post, get } = await setup(t);
  const id = await post();
  assert.equal((await get(id)).status, 200);
  let status = 0;
  const commands = await clientCommands(app.redis, async () => {
    const res = await get(id, globex);
    status = res.status;
    assert.equal(res.body.error.code, "NOT_FOUND");
  });
  assert.equal(status, 404);
  assert.deepEqual(split(commands, id).about, []);
});

test("the record and the metrics written by another connection show on the next GET", async (t) => {
  const { post, get, elsewhere } = await setup(t);
  const id = await post();
  assert.equal((await get(id)).body.backend, null);
  assert.equal((await get(id)).body.backend, null);
  await setJobInfo(elsewhere, id, { backend: "written-elsewhere" });
  await until(async () => (await get(id)).body.backend === "written-elsewhere", "the record's change shows");

  assert.deepEqual((await get(id)).body.metrics, []);
  const metrics = { epoch: 1, loss: 0.5, accuracy: 0.75, valLoss: null, valAccuracy: null, seconds: 1, imagesPerSecond: 20 };
  await appendEpochMetrics(elsewhere, id, metrics);
  await until(async () => (await get(id)).body.metrics.length === 1, "the metrics show");
  assert.deepEqual((await get(id)).body.metrics, [metrics]);
});

test("BullMQ's state moves by a worker show on the next GET, queue positions included", async (t) => {
  const { config, post, get } = await setup(t);
  const first = await post();
  const second = await post();
  assert.deepEqual([(await get(first)).body.queuePosition, (await get(second)).body.queuePosition], [1, 2]);
  assert.equal((await get(second)).body.queuePosition, 2);

  let finish = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const worker = fakeWorker(config, async (job: Job) => {
    if (job.id === first) await finished;
  });
  try {
    await nextEvent(worker, "active", (job: Job) => job.id === first);
    await until(async () => (await get(first)).body.state === "running", "the first job shows running");
    // Taking the first job off the wait list moves the second one up.
    await until(async () => (await get(second)).body.queuePosition === 1, "the second job moves up");
    finish();
    await until(async () => (await get(first)).body.state === "completed", "the first job shows completed");
  } finally {
    finish();
    await worker.close();
  }
});

test("a killed cache connection: reads stay correct meanwhile, and the cache comes back with the connection", async (t) => {
  const { app, other, elsewhere, post, get } = await setup(t);
  const id = await post();
  await get(id);
  const cacheIds = async () => {
    const clients = String(await other.client("LIST")).split("\n");
    return clients.filter((line) => line.includes(` name=${JOB_READ_CACHE_CONNECTION} `)).map((line) => /^id=(\d+)/.exec(line)![1]);
  };
  const [before] = await cacheIds();
  assert.ok(before, "the cache's connection is in CLIENT LIST");

  const closed = nextEvent(app.jobReadCache.connection, "close");
  await other.client("KILL", "ID", before);
  await closed;
  assert.equal(app.jobReadCache.isEnabled(), false);
  await setJobInfo(elsewhere, id, { backend: "written-while-away" });
  assert.equal((await get(id)).body.backend, "written-while-away");

  await until(() => app.jobReadCache.isEnabled(), "the cache is enabled again");
  assert.notDeepEqual(await cacheIds(), [before]);
  assert.equal((await get(id)).body.backend, "written-while-away");
  const again = await clientCommands(app.redis, async () => void (await get(id)));
  assert.deepEqual(split(again, id).about, [], "the cache serves again");
  // And tracks again: a write after the reconnect shows.
  await setJobInfo(elsewhere, id, { backend: "written-after" });
  await until(async () => (await get(id)).body.backend === "written-after", "a write after the reconnect shows");
});
