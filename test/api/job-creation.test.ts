// Creating a job is all or nothing: the record, the tenant index, the uses
// sets, the queue entry and the Idempotency-Key's final value are one MULTI,
// and a crash before it leaves the key usable within the claim time. Reading
// jobs never writes to Redis.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import supertest from "supertest";
import { build } from "../helpers/app.js";
import { fakeWorker, nextEvent, placeImagenetWeights, readyDataset } from "../helpers/jobs.js";
import { freePort, startRedis } from "../helpers/redis.js";
import { startService } from "../helpers/processes.js";
import { clientCommands } from "../helpers/redis-monitor.js";
import { IDEMPOTENCY_TTL_SECONDS } from "../../src/api/idempotency.js";

const TENANT = "default";

/** Every key of the service in this Redis, by kind (the idempotency keys aside). */
async function jobTraces(redis: Redis): Promise<{ records: string[]; index: string[]; uses: string[]; queued: string[] }> {
  const keys = async (pattern: string) => (await redis.keys(pattern)).sort();
  return {
    records: await keys("rf:job:*"),
    index: await keys("rf:tenant:*"),
    uses: await keys("rf:uses:*"),
    queued: await keys("rf:training:job_*"),
  };
}
const NOTHING = { records: [], index: [], uses: [], queued: [] };

/**
 * Every key but the request accounting (rate-limit counters, quota leases, which every request
 * updates by design) with its serialized value and whether it expires: equal before and after
 * means nothing of the jobs' state was written.
 */
async function jobState(redis: Redis): Promise<Map<string, string>> {
  const keys = (await redis.keys("*")).filter((k) => !k.includes(":rate-limit:") && !k.includes(":quota:")).sort();
  const state = new Map<string, string>();
  for (const key of keys) {
    const [dump, ttl] = await Promise.all([redis.dumpBuffer(key), redis.pttl(key)]);
    state.set(key, `${dump?.toString("base64")} ${ttl === -1 ? "persistent" : "expiring"}`);
  }
  return state;
}

test("a job that fails just before its transaction leaves no record, index, uses or queue entry, and its Idempotency-Key is free", async (t) => {
  let failNext = true;
  const { app, config } = await build(
    t,
    {},
    {
      beforeJobCommit: async () => {
        if (failNext) throw new Error("injected failure before commit");
      },
    },
  );
  await placeImagenetWeights(config);
  const datasetId = await readyDataset(config, TENANT, { cat: 10, dog: 10 });
  const http = supertest(app.server);

  const failed = await http.post("/v1/jobs").set("idempotency-key", "k1").send({ datasetId });
  assert.equal(failed.status, 500);
  assert.deepEqual(await jobTraces(app.redis), NOTHING);
  assert.deepEqual(await app.redis.keys("rf:idem:*"), []);

  failNext = false;
  const created = await http.post("/v1/jobs").set("idempotency-key", "k1").send({ datasetId });
  assert.equal(created.status, 202);
  const id = created.body.id as string;
  assert.deepEqual(await jobTraces(app.redis), {
    records: [`rf:job:${id}`],
    index: [`rf:tenant:${TENANT}:jobs`],
    uses: [`rf:uses:${TENANT}:dataset:${datasetId}`],
    queued: [`rf:training:${id}`],
  });
  assert.equal(await app.queue.getJobState(id), "waiting");
  assert.equal((await app.queue.getJob(id))?.opts.attempts, 3, "the queue's default job options apply");
  const [idemKey] = await app.redis.keys("rf:idem:*");
  assert.ok((await app.redis.ttl(idemKey)) > IDEMPOTENCY_TTL_SECONDS - 60, "the committed key lasts 24 h");
  assert.equal((await http.post("/v1/jobs").set("idempotency-key", "k1").send({ datasetId })).body.id, id);
});

test("kill -9 of the API between the Idempotency-Key claim and the job's transaction: nothing half-written, the key works again", {
  timeout: 120_000,
}, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const { app, config } = await build(t, { REDIS_URL: redis.url });
  await placeImagenetWeights(config);
  const datasetId = await readyDataset(config, TENANT, { cat: 10, dog: 10 });

  const port = await freePort();
  const dying = startService("api", "test/api/fixtures/api-dies-before-commit.ts", {
    REDIS_URL: redis.url,
    DATA_DIR: config.dataDir,
    PORT: String(port),
    LOG_LEVEL: "info",
    API_KEYS: "",
  });
  t.after(() => dying.stop(1000));
  await dying.waitFor(/Server listening/);
  // tsx runs the API in a child of its own and reports its SIGKILL as exit code 137.
  const exited = new Promise((resolve) => dying.child.once("exit", (code, signal) => resolve(signal ?? code)));
  const post = () =>
    fetch(`http://127.0.0.1:${port}/v1/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "k1" },
      body: JSON.stringify({ datasetId }),
    });
  await assert.rejects(post(), "the API died while answering");
  assert.ok(["SIGKILL", 137].includes((await exited) as string | number));

  assert.deepEqual(await jobTraces(app.redis), NOTHING);
  const [claim] = await app.redis.keys("rf:idem:*");
  assert.ok((await app.redis.ttl(claim)) <= 2, "only the short claim is left");

  // Another API process: the key answers 409 until the claim runs out, then creates the job.
  const http = supertest(app.server);
  const deadline = Date.now() + 15_000;
  let res = await http.post("/v1/jobs").set("idempotency-key", "k1").send({ datasetId });
  while (res.status === 409 && Date.now() < deadline) {
    assert.equal(res.body.error.code, "IDEMPOTENCY_KEY_IN_USE");
    await nextTick(100);
    res = await http.post("/v1/jobs").set("idempotency-key", "k1").send({ datasetId });
  }
  assert.equal(res.status, 202, res.text);
  assert.equal((await jobTraces(app.redis)).records.length, 1);
});

test("a creation slower than the claim keeps its Idempotency-Key (renewed), then commits it for 24 h", { timeout: 60_000 }, async (t) => {
  let reached!: () => void;
  const atSeam = new Promise<void>((r) => (reached = r));
  let proceed!: () => void;
  const gate = new Promise<void>((r) => (proceed = r));
  const { app, config } = await build(
    t,
    {},
    {
      idempotencyClaimSeconds: 1,
      beforeJobCommit: async () => {
        reached();
        await gate;
      },
    },
  );
  await placeImagenetWeights(config);
  const datasetId = await readyDataset(config, TENANT, { cat: 10, dog: 10 });
  const http = supertest(app.server);

  const first = http
    .post("/v1/jobs")
    .set("idempotency-key", "slow")
    .send({ datasetId })
    .then((r) => r);
  await atSeam;
  // Time itself is what is tested: three claim lengths pass while the request is held.
  await nextTick(3000);
  const meanwhile = await http.post("/v1/jobs").set("idempotency-key", "slow").send({ datasetId });
  assert.equal(meanwhile.status, 409);
  assert.equal(meanwhile.body.error.code, "IDEMPOTENCY_KEY_IN_USE");
  proceed();
  assert.equal((await first).status, 202);
  const [key] = await app.redis.keys("rf:idem:*");
  assert.ok((await app.redis.ttl(key)) > IDEMPOTENCY_TTL_SECONDS - 60);
  assert.equal((await jobTraces(app.redis)).records.length, 1);
});

/** A pause between polls of a state this test cannot be notified of (a key's TTL running out in Redis). */
function nextTick(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** An app with a ready dataset, `post(seed)` to create a job on it, and one job already completed by a worker. */
async function withCompletedJob(t: Parameters<typeof build>[0]) {
  const { app, config } = await build(t);
  await placeImagenetWeights(config);
  const datasetId = await readyDataset(config, TENANT, { cat: 10, dog: 10 });
  const http = supertest(app.server);
  const post = async (seed: number) => (await http.post("/v1/jobs").send({ datasetId, seed })).body.id as string;
  const completed = await post(1);
  const worker = fakeWorker(config, async () => ({ modelId: "mdl_x" }));
  await nextEvent(worker, "completed");
  await worker.close();
  return { app, config, http, post, completed };
}

test("GET /v1/jobs, /v1/jobs/{id}, its checkpoints and events write nothing to Redis, whatever the jobs' states", {
  timeout: 60_000,
}, async (t) => {
  const { app, http, post, completed } = await withCompletedJob(t);

  const cancelled = await post(2);
  assert.equal((await http.post(`/v1/jobs/${cancelled}/cancel`)).status, 200);
  const queued = await post(3);
  const expired = await post(4);
  await app.redis.del(`rf:job:${expired}`); // its record expired; the index still lists it
  // The API's own listener gives finished jobs their expiry; wait for it before counting.
  for (const id of [completed, cancelled]) {
    const deadline = Date.now() + 10_000;
    while ((await app.redis.ttl(`rf:job:${id}`)) === -1 && Date.now() < deadline) await nextTick(50);
  }

  const before = await jobState(app.redis);
  const reads = [
    "/v1/jobs",
    "/v1/jobs?state=completed",
    "/v1/jobs?limit=1",
    ...[completed, cancelled, queued, expired].map((id) => `/v1/jobs/${id}`),
    `/v1/jobs/${completed}/checkpoints`,
    `/v1/jobs/${completed}/events`,
    `/v1/jobs/${cancelled}/events`,
  ];
  const statuses = [];
  for (const url of reads) statuses.push((await http.get(url)).status);
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 404, 200, 200, 200]);
  assert.deepEqual(await jobState(app.redis), before, "a GET wrote to Redis");
  // The next job created takes the expired one out of the index.
  await post(5);
  assert.equal(await app.redis.zscore(`rf:tenant:${TENANT}:jobs`, expired), null);
});

test("GET /v1/jobs/{id} reads a job in one Redis command, whatever its state", { timeout: 60_000 }, async (t) => {
  const { app, http, post, completed } = await withCompletedJob(t);
  const queued = await post(2);

  for (const id of [completed, queued]) {
    let body: Record<string, unknown> = {};
    const commands = await clientCommands(app.redis, async () => {
      const res = await http.get(`/v1/jobs/${id}`);
      assert.equal(res.status, 200);
      body = res.body;
    });
    // The script reads BullMQ's job hash and lists itself: what it finds must be what BullMQ's own API says.
    const bullJob = (await app.queue.getJob(id))!;
    const iso = (ms?: number) => (ms ? new Date(ms).toISOString() : null);
    assert.deepEqual(
      { state: body.state, attempts: body.attempts, startedAt: body.startedAt, finishedAt: body.finishedAt },
      id === completed
        ? {
            state: "completed",
            attempts: bullJob.attemptsStarted,
            startedAt: iso(bullJob.processedOn),
            finishedAt: iso(bullJob.finishedOn),
          }
        : { state: "queued", attempts: 0, startedAt: null, finishedAt: null },
    );
    assert.equal(await bullJob.getState(), id === completed ? "completed" : "waiting");
    assert.equal(body.queuePosition, id === completed ? null : 1);
    assert.equal(bullJob.attemptsStarted, id === completed ? 1 : 0);
    // Background connections (BullMQ's event listeners) may block-read meanwhile; the GET's own commands mention the job.
    const theGets = commands.filter((args) => args.some((a) => a.includes(id)));
    assert.equal(theGets.length, 1, `GET sent ${JSON.stringify(commands)}`);
    // Besides its one read, a GET may only count itself against the rate limit (every request does).
    const rateLimit = (args: string[]) => args.some((a) => a.includes(":rate-limit:"));
    const blocking = (args: string[]) => /^x?read|^bzpopmin$|^blmove$|^brpoplpush$/i.test(args[0]);
    assert.deepEqual(
      commands.filter((args) => !blocking(args) && !rateLimit(args) && !args.some((a) => a.includes(id))),
      [],
      "a GET sent commands not about its job",
    );
  }
});
