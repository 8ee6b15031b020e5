// npm run bench:hostile: starts the real service (API and worker processes,
// a private Redis on a free port, a temporary DATA_DIR), fires every hostile
// input of the threat model at it, each several times at once, and prints
// per input: the statuses and codes it got, the API's RSS before and after,
// the slowest /readyz answer meanwhile (probed every 50 ms) and whether it
// stayed under 100 ms. A benchmark, not a test: it asserts nothing.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startRedis } from "../test/helpers/redis.js";
import { classFolders, incompressible, makeZip, multipartBody } from "../test/helpers/dataset-archives.js";
import { hostileInputsOfInputsBranch } from "./hostile-inputs-list.js";
import type { HostileContext, HostileInput, Outcome } from "./hostile-input.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MiB = 1024 * 1024;
const COPIES = 4;
const ACME = { authorization: "Bearer key-acme" };
const READY_BUDGET_MS = 100;

/** The service's limits as deployed (the slow-client inputs wait out the default timeouts, 30 and 60 s). */
const SERVICE_ENV = {
  API_KEYS: "acme:key-acme,globex:key-globex",
  ADMIN_KEYS: "ops:key-admin",
  METRICS_TOKEN: "key-metrics",
  TFJS_BACKEND: "wasm",
  LOG_LEVEL: "warn",
  NODE_ENV: "production",
  // Every copy of an upload attack is processed at once (the upload quota has its own input below).
  MAX_UPLOADS_PER_TENANT: String(COPIES),
};

async function rssBytes(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]) * 1024;
}

function start(name: string, entry: string, env: Record<string, string>): ChildProcess {
  // node itself (not the tsx wrapper): its pid is the service's, for /proc/<pid>/status.
  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr!.on("data", (d: Buffer) => process.stderr.write(`[${name}] ${d}`));
  return child;
}

async function waitReady(base: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the API did not get ready within ${ms} ms`);
}

/** Probes /readyz every 50 ms until stopped; resolves with the slowest answer (a failed probe counts as Infinity). */
function probeReadiness(base: string): { stop(): Promise<number> } {
  let running = true;
  let slowest = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const ok = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(5000) }).then(
        (r) => r.ok,
        () => false,
      );
      slowest = Math.max(slowest, ok ? performance.now() - started : Infinity);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return slowest;
    },
  };
}

/** Waits (up to 10 minutes) for the setup job to complete; its model id, or undefined. */
async function trainedModel(base: string, jobId: string): Promise<string | undefined> {
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline) {
    const job = (await fetch(`${base}/v1/jobs/${jobId}`, { headers: ACME }).then((r) => r.json())) as {
      state: string;
      modelId: string | null;
    };
    if (job.state === "completed") return job.modelId ?? undefined;
    if (job.state === "failed" || job.state === "cancelled") return undefined;
    await new Promise((r) => setTimeout(r, 2000));
  }
  return undefined;
}

/** A run that got no answer: the connection's error (a reset while the body was still being sent), or the bench's own. */
function failedRun(err: Error & { cause?: { code?: string } }): Outcome {
  return { status: "no answer", code: err.cause?.code ?? err.message.slice(0, 60) };
}

/** "2x422 JOB_TOO_LARGE, 2x202": each distinct status and code, with how many times it came. */
function summarise(outcomes: Outcome[]): { statuses: string; codes: string } {
  const count = (values: string[]) => {
    const seen = new Map<string, number>();
    for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
    return [...seen].map(([v, n]) => (n > 1 ? `${n}x${v}` : v)).join(", ");
  };
  return { statuses: count(outcomes.map((o) => String(o.status))), codes: count(outcomes.map((o) => o.code ?? "-")) };
}

async function outcomeOf(res: Response): Promise<Outcome> {
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    // not JSON (a page, metrics text)
  }
  return { status: res.status, code };
}

/** A raw connection that sends `head` (and `body`, if any), then nothing more; resolves with the first line the server answers, or "closed". */
function stallingRequest(port: number, head: string, body?: Buffer, dripMs?: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    let drip: NodeJS.Timeout | undefined;
    socket.on("data", (d) => (received += d.toString()));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(drip);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
      resolve({ status: status ? Number(status) : "closed", code: /"code":"([A-Z_]+)"/.exec(received)?.[1] });
    });
    socket.on("connect", () => {
      socket.write(head);
      if (body) socket.write(body);
      if (dripMs) drip = setInterval(() => socket.write(`X-Drip: ${Date.now()}\r\n`), dripMs);
    });
  });
}

/** This branch's own hostile inputs (tenancy and resources); the inputs branch's come from hostile-inputs-list.ts. */
function tenancyInputs(): HostileInput[] {
  const post = (ctx: HostileContext, url: string, body: unknown, headers: Record<string, string> = ACME) =>
    fetch(`${ctx.base}${url}`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then(outcomeOf);
  return [
    {
      name: "job spec 512 px, Flatten head of 8192 units",
      threat: "memory: job size",
      run: (ctx) =>
        post(ctx, "/v1/jobs", {
          datasetId: ctx.datasetId,
          imageSize: 512,
          head: { pooling: "flatten", denseUnits: 8192 },
          baseWeights: "none",
        }),
    },
    {
      name: "job spec batchSize 1024 at 512 px",
      threat: "memory: job size",
      run: (ctx) => post(ctx, "/v1/jobs", { datasetId: ctx.datasetId, imageSize: 512, batchSize: 1024, baseWeights: "none" }),
    },
    {
      name: "queue dashboard JSON API with a tenant key",
      threat: "admin and metrics",
      run: (ctx) => fetch(`${ctx.base}/admin/queues/api/queues`, { headers: ACME }).then(outcomeOf),
    },
    { name: "/metrics without the token", threat: "admin and metrics", run: (ctx) => fetch(`${ctx.base}/metrics`).then(outcomeOf) },
    {
      name: "200 event streams from one key",
      threat: "disk, quotas and time",
      copies: 1,
      async run(ctx) {
        // A job of its own, cancelled afterwards: its streams stay open while the flood lasts.
        const job = await fetch(`${ctx.base}/v1/jobs`, {
          method: "POST",
          headers: { ...ACME, "content-type": "application/json" },
          body: JSON.stringify({ datasetId: ctx.datasetId, imageSize: 32, batchSize: 2, epochs: 50, baseWeights: "none" }),
        });
        const jobId = ((await job.json()) as { id: string }).id;
        const aborts: AbortController[] = [];
        const outcomes = await Promise.all(
          Array.from({ length: 200 }, async () => {
            const abort = new AbortController();
            aborts.push(abort);
            const res = await fetch(`${ctx.base}/v1/jobs/${jobId}/events`, { headers: ACME, signal: abort.signal });
            return res.status === 200 ? { status: 200 } : outcomeOf(res);
          }),
        );
        for (const abort of aborts) abort.abort();
        await fetch(`${ctx.base}/v1/jobs/${jobId}/cancel`, { method: "POST", headers: ACME });
        return outcomes;
      },
    },
    {
      name: "30 jobs queued at once from one key",
      threat: "disk, quotas and time",
      copies: 1,
      async run(ctx) {
        const responses = await Promise.all(
          Array.from({ length: 30 }, () =>
            fetch(`${ctx.base}/v1/jobs`, {
              method: "POST",
              headers: { ...ACME, "content-type": "application/json" },
              body: JSON.stringify({ datasetId: ctx.datasetId, imageSize: 32, batchSize: 2, epochs: 1, baseWeights: "none" }),
            }),
          ),
        );
        const outcomes: Outcome[] = [];
        for (const res of responses) {
          const body = (await res.json()) as { id?: string; error?: { code: string } };
          outcomes.push({ status: res.status, code: body.error?.code });
          // The queued ones are cancelled: the worker has the setup job to train.
          if (body.id) await fetch(`${ctx.base}/v1/jobs/${body.id}/cancel`, { method: "POST", headers: ACME });
        }
        return outcomes;
      },
    },
    {
      name: "8 uploads in flight from one key",
      threat: "disk, quotas and time",
      copies: 1,
      run: async (ctx) => {
        const upload = multipartBody(incompressible(8 * MiB));
        return Promise.all(
          Array.from({ length: 8 }, () =>
            fetch(`${ctx.base}/v1/datasets`, { method: "POST", headers: { ...ACME, ...upload.headers }, body: upload.payload }).then(
              outcomeOf,
            ),
          ),
        );
      },
    },
    {
      name: "upload whose body stalls (slow upload)",
      threat: "disk, quotas and time",
      run: async (ctx) => {
        const upload = multipartBody(incompressible(MiB));
        const head = `POST /v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key-acme\r\nContent-Type: ${upload.headers["content-type"]}\r\nContent-Length: ${upload.payload.length}\r\n\r\n`;
        return stallingRequest(ctx.port, head, upload.payload.subarray(0, 64 * 1024));
      },
    },
    {
      name: "headers trickled one line every 500 ms (slowloris)",
      threat: "disk, quotas and time",
      run: (ctx) => stallingRequest(ctx.port, "GET /v1/jobs HTTP/1.1\r\nHost: x\r\n", undefined, 500),
    },
    {
      name: "700 requests in a burst from one key (rate limit)",
      threat: "disk, quotas and time",
      copies: 1,
      run: async (ctx) => {
        const outcomes: Outcome[] = [];
        for (let i = 0; i < 7; i++) {
          outcomes.push(
            ...(await Promise.all(
              Array.from({ length: 100 }, () =>
                fetch(`${ctx.base}/v1/datasets?limit=1`, { headers: { authorization: "Bearer key-globex" } }).then(outcomeOf),
              ),
            )),
          );
        }
        return outcomes;
      },
    },
  ];
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "rf-hostile-"));
  const port = await freePort();
  const env = { ...SERVICE_ENV, PORT: String(port), HOST: "127.0.0.1", REDIS_URL: redis.url, DATA_DIR: dataDir };
  const api = start("api", "src/server.ts", env);
  const worker = start("worker", "src/worker.ts", env);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(base);
    const upload = multipartBody(await makeZip(await classFolders(["cat", "dog"], 4)));
    const dataset = await fetch(`${base}/v1/datasets`, { method: "POST", headers: { ...ACME, ...upload.headers }, body: upload.payload });
    if (dataset.status !== 201) throw new Error(`dataset upload answered ${dataset.status}: ${await dataset.text()}`);
    const datasetId = ((await dataset.json()) as { id: string }).id;
    const job = await fetch(`${base}/v1/jobs`, {
      method: "POST",
      headers: { ...ACME, "content-type": "application/json" },
      body: JSON.stringify({ datasetId, imageSize: 32, batchSize: 2, epochs: 1, baseWeights: "none" }),
    });
    const jobId = ((await job.json()) as { id: string }).id;
    let modelId: Promise<string | undefined> | undefined;
    const ctx: HostileContext = {
      base,
      port,
      datasetId,
      jobId,
      dataDir,
      headers: ACME,
      model: () => (modelId ??= trainedModel(base, jobId)),
    };

    const inputs: HostileInput[] = [...((await hostileInputsOfInputsBranch()) as HostileInput[]), ...tenancyInputs()];
    const rows: string[][] = [];
    for (const input of inputs) {
      const copies = input.copies ?? COPIES;
      const prepared = await input.prepare?.(ctx);
      const before = await rssBytes(api.pid!);
      const probe = probeReadiness(base);
      const results = await Promise.all(Array.from({ length: copies }, () => input.run(ctx, prepared).catch(failedRun)));
      const slowest = await probe.stop();
      const after = await rssBytes(api.pid!);
      const { statuses, codes } = summarise(results.flat());
      rows.push([
        input.name,
        input.threat,
        String(copies),
        statuses,
        codes,
        `${(before / MiB).toFixed(0)} -> ${(after / MiB).toFixed(0)}`,
        Number.isFinite(slowest) ? slowest.toFixed(0) : "failed",
        slowest < READY_BUDGET_MS ? "yes" : "no",
      ]);
      process.stdout.write(`done: ${input.name}\n`);
    }
    const tmpLeft = await fs.readdir(path.join(dataDir, ".tmp")).catch(() => []);
    const header = [
      "input",
      "threat",
      "copies at once",
      "statuses",
      "codes",
      "API RSS MiB before -> after",
      "slowest /readyz ms",
      "/readyz < 100 ms",
    ];
    console.log(`\n| ${header.join(" | ")} |\n| ${header.map(() => "---").join(" | ")} |`);
    for (const row of rows) console.log(`| ${row.join(" | ")} |`);
    console.log(
      `\nAPI still alive: ${api.exitCode === null ? "yes" : `no (exit ${api.exitCode})`}; entries left in DATA_DIR/.tmp: ${tmpLeft.length}`,
    );
    console.log(
      `machine: ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}, Node ${process.version}`,
    );
  } finally {
    api.kill("SIGTERM");
    worker.kill("SIGTERM");
    await Promise.all([api, worker].map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))));
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

await main();
