// API throughput with autocannon on loopback: GET /v1/jobs/{id} and
// POST /v1/jobs of the real app (private Redis, a generated dataset uploaded
// through the API), next to a bare Fastify route in the same process.
import fs from "node:fs/promises";
import autocannon, { type Result } from "autocannon";
import Fastify, { type FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { tempDir } from "../../test/helpers/app.js";
import { classFolders, makeZip, multipartBody } from "../../test/helpers/dataset-archives.js";
import { startRedis } from "../../test/helpers/redis.js";
import type { Figure, SuiteOptions } from "./figure.js";

const CONNECTIONS = 10;
/** Rounds of the bare route and GET /v1/jobs/{id}, taken in turn so that both see the same load from the rest of the machine. */
const ROUNDS = 3;
const AUTH = { authorization: "Bearer key-bench" };

async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: "127.0.0.1", port: 0 });
}

interface Target {
  url: string;
  method?: "GET" | "POST";
  body?: unknown;
}

async function run(target: Target, duration: number): Promise<Result> {
  return autocannon({
    url: target.url,
    method: target.method ?? "GET",
    headers: { ...AUTH, ...(target.body ? { "content-type": "application/json" } : {}) },
    body: target.body ? JSON.stringify(target.body) : undefined,
    connections: CONNECTIONS,
    duration,
    // The load generator on its own thread, so it does not take the server's event loop.
    workers: 1,
  });
}

/** The round with the median requests/s as figures; `rounds` says how many there were and what failed. */
function figures(name: string, rounds: Result[], duration: number, backend: string): Figure[] {
  const result = [...rounds].sort((a, b) => a.requests.average - b.requests.average)[Math.floor(rounds.length / 2)];
  const bad = rounds.reduce((sum, r) => sum + r.non2xx + r.errors + r.timeouts, 0);
  const total = rounds.reduce((sum, r) => sum + r.requests.total, 0);
  const shape = rounds.length > 1 ? `median of ${rounds.length} rounds of ${duration} s` : `${duration} s`;
  // A figure of failing requests would flatter the route: say so instead of hiding it.
  const detail = `${CONNECTIONS} connections, ${shape}, ${total} requests${bad > 0 ? `, ${bad} NOT 2xx (figures invalid)` : ""}`;
  const base = { section: "api" as const, backend, threads: CONNECTIONS, detail };
  return [
    { ...base, name: `${name}: requests/s`, value: result.requests.average, unit: "req/s" },
    { ...base, name: `${name}: latency p50`, value: result.latency.p50, unit: "ms" },
    { ...base, name: `${name}: latency p99`, value: result.latency.p99, unit: "ms" },
  ];
}

/**
 * The bare route and the job read in turn, each warmed up first (the app's code paths are compiled in
 * the warm-up, not in the measured seconds): rounds of one, then the other, and the median of the
 * rounds' ratios, so that a burst of load from elsewhere on the machine falls on both.
 */
async function bareAndRead(bare: Target, read: Target, duration: number, backend: string): Promise<Figure[]> {
  await run(bare, 1);
  await run(read, 1);
  const bareRounds: Result[] = [];
  const readRounds: Result[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    bareRounds.push(await run(bare, duration));
    readRounds.push(await run(read, duration));
  }
  const ratios = readRounds.map((r, i) => r.requests.average / bareRounds[i].requests.average).sort((a, b) => a - b);
  const share: Figure = {
    section: "api",
    name: "GET /v1/jobs/{id}: share of the bare route's requests/s",
    value: ratios[Math.floor(ratios.length / 2)] * 100,
    unit: "%",
    backend,
    threads: CONNECTIONS,
    detail: `median of ${ROUNDS} rounds' ratios: ${ratios.map((r) => `${(r * 100).toFixed(0)}%`).join(", ")}`,
  };
  return [
    ...figures("bare Fastify GET", bareRounds, duration, backend),
    ...figures("GET /v1/jobs/{id}", readRounds, duration, backend),
    share,
  ];
}

export async function apiThroughput(opts: SuiteOptions): Promise<Figure[]> {
  const duration = opts.quick ? 2 : 5;
  const redis = await startRedis();
  const dataDir = await tempDir("rf-bench-api-");
  const bare = Fastify();
  bare.get("/bare", async () => ({ id: "job_bare", state: "queued" }));
  let app: FastifyInstance | undefined;
  try {
    const config = loadConfig({
      LOG_LEVEL: "silent",
      DATA_DIR: dataDir,
      REDIS_URL: redis.url,
      API_KEYS: "bench:key-bench",
      // The API's own throughput: the per-tenant rate limit and job quota would answer most of the load with 429.
      RATE_LIMIT_MAX: "1000000000",
      MAX_ACTIVE_JOBS_PER_TENANT: "1000000000",
    });
    app = await buildApp(config);
    const base = await listen(app);
    const bareTarget = { url: `${await listen(bare)}/bare` };

    const body = multipartBody(await makeZip(await classFolders(["a", "b", "c", "d"], 5)), {});
    const upload = await fetch(`${base}/v1/datasets`, { method: "POST", headers: { ...body.headers, ...AUTH }, body: body.payload });
    if (upload.status !== 201) throw new Error(`dataset upload answered ${upload.status}: ${await upload.text()}`);
    const datasetId = ((await upload.json()) as { id: string }).id;

    if (!app.hasRoute({ method: "POST", url: "/v1/jobs" })) {
      console.warn("api: this build has no /v1/jobs routes; only the bare route and the dataset upload were measured");
      return figures("bare Fastify GET", [await run(bareTarget, duration)], duration, opts.backend);
    }
    const job = { datasetId, baseWeights: "none", epochs: 1 };
    const created = await fetch(`${base}/v1/jobs`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify(job),
    });
    if (created.status !== 202) throw new Error(`POST /v1/jobs answered ${created.status}: ${await created.text()}`);
    const jobId = ((await created.json()) as { id: string }).id;
    return [
      ...(await bareAndRead(bareTarget, { url: `${base}/v1/jobs/${jobId}` }, duration, opts.backend)),
      ...figures("POST /v1/jobs", [await run({ url: `${base}/v1/jobs`, method: "POST", body: job }, duration)], duration, opts.backend),
    ];
  } finally {
    await app?.close();
    await bare.close();
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}
