// API throughput with autocannon on loopback: GET /v1/jobs/{id} and
// POST /v1/jobs of the real app (private Redis, a generated dataset uploaded
// through the API), next to a bare Fastify route on the same machine.
import fs from "node:fs/promises";
import autocannon from "autocannon";
import Fastify, { type FastifyInstance } from "fastify";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { tempDir } from "../../test/helpers/app.js";
import { classFolders, makeZip, multipartBody } from "../../test/helpers/dataset-archives.js";
import { startRedis } from "../../test/helpers/redis.js";
import type { Figure, SuiteOptions } from "./figure.js";

const CONNECTIONS = 10;
const AUTH = { authorization: "Bearer key-bench" };

async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: "127.0.0.1", port: 0 });
}

async function load(name: string, opts: { url: string; method?: "GET" | "POST"; body?: unknown; duration: number }, backend: string): Promise<Figure[]> {
  const result = await autocannon({
    url: opts.url,
    method: opts.method ?? "GET",
    headers: { ...AUTH, ...(opts.body ? { "content-type": "application/json" } : {}) },
    body: opts.body ? JSON.stringify(opts.body) : undefined,
    connections: CONNECTIONS,
    duration: opts.duration,
    // The load generator on its own thread, so it does not take the server's event loop.
    workers: 1,
  });
  const bad = result.non2xx + result.errors + result.timeouts;
  // A figure of failing requests would flatter the route: say so instead of hiding it.
  const detail = `${CONNECTIONS} connections, ${opts.duration} s, ${result.requests.total} requests${bad > 0 ? `, ${bad} NOT 2xx (figures invalid)` : ""}`;
  const base = { section: "api" as const, backend, threads: CONNECTIONS, detail };
  return [
    { ...base, name: `${name}: requests/s`, value: result.requests.average, unit: "req/s" },
    { ...base, name: `${name}: latency p50`, value: result.latency.p50, unit: "ms" },
    { ...base, name: `${name}: latency p99`, value: result.latency.p99, unit: "ms" },
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
    const bareUrl = await listen(bare);
    const figures = await load("bare Fastify GET", { url: `${bareUrl}/bare`, duration }, opts.backend);

    const body = multipartBody(await makeZip(await classFolders(["a", "b", "c", "d"], 5)), {});
    const upload = await fetch(`${base}/v1/datasets`, { method: "POST", headers: { ...body.headers, ...AUTH }, body: body.payload });
    if (upload.status !== 201) throw new Error(`dataset upload answered ${upload.status}: ${await upload.text()}`);
    const datasetId = ((await upload.json()) as { id: string }).id;

    if (!app.hasRoute({ method: "POST", url: "/v1/jobs" })) {
      console.warn("api: this build has no /v1/jobs routes; only the bare route and the dataset upload were measured");
      return figures;
    }
    const job = { datasetId, baseWeights: "none", epochs: 1 };
    const created = await fetch(`${base}/v1/jobs`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify(job) });
    if (created.status !== 202) throw new Error(`POST /v1/jobs answered ${created.status}: ${await created.text()}`);
    const jobId = ((await created.json()) as { id: string }).id;
    figures.push(...(await load("GET /v1/jobs/{id}", { url: `${base}/v1/jobs/${jobId}`, duration }, opts.backend)));
    figures.push(...(await load("POST /v1/jobs", { url: `${base}/v1/jobs`, method: "POST", body: job, duration }, opts.backend)));
    return figures;
  } finally {
    await app?.close();
    await bare.close();
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}
