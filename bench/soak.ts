// npm run soak: crash recovery under random faults, a benchmark, not a test.
// Runs N jobs (default 20) through real processes (a private redis-server with
// AOF, the API, one worker) and, during each, injects one fault at a seeded
// random moment: kill -9 of the training child, of the worker, of the API, a
// Redis restart (kill -9), SIGTERM of the worker, or a full DATA_DIR for a
// moment. It restarts what was killed and checks every job against an
// uninterrupted reference run of its spec. Last line: `recovered N/N`.
//   npm run soak                      20 jobs, seed 1
//   npm run soak -- --jobs 6 --seed 4
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../src/launcher/redis-server.js";
import { createRandom } from "../src/datasets/seeded-random.js";
import { storageKeys } from "../src/storage/keys.js";
import { datasetZip } from "../test/helpers/training-fixtures.js";
import { descendants } from "../test/helpers/processes.js";
import { nodeService, redisService, type NodeService, type Service } from "./soak/services.js";
import { mountDataDisk, type DataDisk } from "./soak/full-disk.js";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "20" },
    seed: { type: "string", default: "1" },
    keep: { type: "boolean", default: false },
  },
});
const JOBS = Number(values.jobs);
const SEED = Number(values.seed);

const FAULTS = ["kill -9 training child", "kill -9 worker", "kill -9 API", "Redis restart", "SIGTERM worker", "full disk"] as const;
type Fault = (typeof FAULTS)[number];

/** Small jobs whose trainable part has convolutions and BatchNormalization (unfrozenLayers 10). */
const SPECS = [
  {
    name: "feature cache",
    spec: {
      imageSize: 32,
      baseWeights: "none",
      unfrozenLayers: 10,
      learningRate: 1e-3,
      batchSize: 8,
      epochs: 4,
      validationSplit: 0.25,
      seed: 3,
    },
  },
  {
    name: "augmented, no cache",
    spec: {
      imageSize: 32,
      baseWeights: "none",
      unfrozenLayers: 10,
      learningRate: 1e-3,
      batchSize: 8,
      epochs: 3,
      validationSplit: 0.25,
      seed: 5,
      augmentation: { flip: true, rotate: 0.05, zoom: 0 },
    },
  },
];
const TENANT = "default";
const JOB_TIMEOUT_MS = 20 * 60_000;

interface EpochMetrics {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
}
interface JobView {
  id: string;
  state: string;
  progress: { epoch: number; batch: number; batches: number; fraction: number } | null;
  metrics: EpochMetrics[];
  attempts: number;
  error: { code: string; message: string } | null;
  modelId: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}
interface Row {
  job: number;
  spec: string;
  fault: Fault;
  phase: string;
  outcome: string;
  recoverSeconds: number | null;
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => console.log(`[soak] ${line}`);

async function main(): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "rf-soak-"));
  const logDir = path.join(root, "logs");
  await fs.mkdir(logDir);
  say(`working in ${root} (service logs in ${logDir})`);
  const disk = await mountDataDisk(path.join(root, "data"), 3 * 1024 ** 3);
  if (disk.cannotFill) say(`full-disk faults are skipped: ${disk.cannotFill}`);
  const redis = await redisService(path.join(root, "redis"), await freePort());
  const port = await freePort();
  const env = {
    ...process.env,
    REDIS_URL: redis.url,
    DATA_DIR: disk.dir,
    PORT: String(port),
    API_KEYS: "",
    TFJS_BACKEND: process.env.TFJS_BACKEND ?? "wasm",
    LOG_LEVEL: "info",
    NODE_ENV: "production",
    // Retries wait long enough for a full disk to be freed; a dead worker's job is found again within seconds.
    RETRY_BACKOFF_MS: "3000",
    WORKER_LOCK_DURATION_MS: "5000",
    WORKER_STALLED_INTERVAL_MS: "2000",
  };
  const api = await nodeService("api", "src/server.ts", env, logDir, /Server listening/);
  const worker = await nodeService("worker", "src/worker.ts", env, logDir, /worker started/);
  const services: Service[] = [worker, api, redis];
  const http = client(`http://127.0.0.1:${port}`);
  let failures = 0;
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      for (const s of services) await s.stop().catch(() => undefined);
      await disk.close().catch((err) => say(`could not unmount ${disk.dir}: ${(err as Error).message}`));
      if (values.keep || failures > 0) say(`kept ${root} for inspection`);
      else await fs.rm(root, { recursive: true, force: true });
    })());
  // Ctrl-C stops the services and unmounts DATA_DIR, as the end of a run does.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      failures++;
      void cleanUp().then(() => process.exit(130));
    });
  }
  try {
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(await datasetZip(24))]), "digits.zip");
    const dataset = await http.call<{ id: string }>("POST", "/v1/datasets", form);
    say(`dataset ${dataset.id}: 3 classes x 24 images`);

    const references = new Map<string, { metrics: EpochMetrics[]; seconds: number }>();
    for (const { name, spec } of SPECS) {
      const id = await http.createJob({ datasetId: dataset.id, ...spec }, `reference-${name}`);
      const job = await http.waitFor(id, (j) => ["completed", "failed", "cancelled"].includes(j.state), JOB_TIMEOUT_MS);
      if (job.state !== "completed") throw new Error(`reference run of "${name}" ended ${job.state}: ${job.error?.message}`);
      const seconds = (Date.parse(job.finishedAt!) - Date.parse(job.startedAt!)) / 1000;
      references.set(name, { metrics: job.metrics, seconds });
      say(`reference "${name}": ${seconds.toFixed(1)} s, losses ${job.metrics.map((m) => m.loss.toFixed(4)).join(", ")}`);
      await removeJobFiles(disk.dir, job);
    }

    const random = createRandom(SEED);
    const rows: Row[] = [];
    for (let i = 0; i < JOBS; i++) {
      const { name, spec } = SPECS[Math.floor(i / FAULTS.length) % SPECS.length];
      const fault = FAULTS[i % FAULTS.length];
      const reference = references.get(name)!;
      const row = await faultedJob({
        i,
        name,
        spec: { datasetId: dataset.id, ...spec },
        fault,
        reference,
        at: random(),
        http,
        api,
        worker,
        redis,
        disk,
      });
      rows.push(row);
      if (row.outcome !== "recovered") failures++;
      say(
        `job ${i + 1}/${JOBS} ${row.fault}: ${row.outcome} (${row.phase}, recovered in ${row.recoverSeconds ?? "-"} s, ${row.seconds} s)`,
      );
    }
    printTable(rows);
    console.log(`recovered ${rows.filter((r) => r.outcome === "recovered").length}/${rows.length}`);
  } finally {
    await cleanUp();
  }
}

interface FaultedJob {
  i: number;
  name: string;
  spec: Record<string, unknown>;
  fault: Fault;
  reference: { metrics: EpochMetrics[]; seconds: number };
  /** Where in the reference run's duration the fault lands, 0..1. */
  at: number;
  http: ReturnType<typeof client>;
  api: NodeService;
  worker: NodeService;
  redis: Service;
  disk: DataDisk;
}

async function faultedJob(f: FaultedJob): Promise<Row> {
  const started = Date.now();
  const row: Row = { job: f.i + 1, spec: f.name, fault: f.fault, phase: "-", outcome: "recovered", recoverSeconds: null, seconds: 0 };
  const id = await f.http.createJob(f.spec, `soak-${f.i}`);
  // A moment in the job's own progress (its caches may make it faster than its reference run): within the first 95%.
  const before = await f.http.waitFor(
    id,
    (j) => j.state !== "queued" && (j.state !== "running" || (j.progress?.fraction ?? 0) >= f.at * 0.95),
    JOB_TIMEOUT_MS,
  );
  row.phase = phaseOf(before);
  if (f.fault === "full disk" && f.disk.cannotFill) {
    row.outcome = "skipped (no tmpfs)";
  } else {
    const faultAt = Date.now();
    try {
      const note = await inject(f);
      if (note) row.phase += ` (${note})`;
    } catch (err) {
      row.phase += ` (${(err as Error).message})`;
    }
    await f.http.waitFor(id, (j) => j.state === "completed" || j.state === "failed" || advanced(before, j), JOB_TIMEOUT_MS);
    row.recoverSeconds = Math.round((Date.now() - faultAt) / 100) / 10;
  }
  const job = await f.http.waitFor(id, (j) => ["completed", "failed", "cancelled"].includes(j.state), JOB_TIMEOUT_MS);
  row.seconds = Math.round((Date.now() - started) / 1000);
  const problems = await check(f, job);
  if (problems.length > 0) row.outcome = `FAILED: ${problems.join("; ")}`;
  if (job.state === "completed") await removeJobFiles(f.disk.dir, job);
  return row;
}

/** The fault itself, and the restart of what it took down; returns a note for the phase column, if any. */
async function inject(f: FaultedJob): Promise<string | undefined> {
  switch (f.fault) {
    case "kill -9 training child": {
      const child = await trainingChild(f.worker);
      if (!child) throw new Error("no training child to kill");
      process.kill(child, "SIGKILL");
      return;
    }
    case "kill -9 worker":
      process.kill(f.worker.pid(), "SIGKILL");
      await f.worker.exited();
      await f.worker.restart();
      return;
    case "kill -9 API":
      process.kill(f.api.pid(), "SIGKILL");
      await f.api.exited();
      await f.api.restart();
      return;
    case "Redis restart":
      process.kill(f.redis.pid(), "SIGKILL");
      await f.redis.restart();
      return;
    case "SIGTERM worker":
      process.kill(f.worker.pid(), "SIGTERM");
      await f.worker.exited();
      await f.worker.restart();
      return;
    case "full disk": {
      await f.disk.fill();
      // Full until an attempt fails on it, or for one epoch of the reference run: long enough for a checkpoint to hit it.
      const epochMs = (f.reference.seconds / f.reference.metrics.length) * 1000;
      const hit = await waitForLog(
        path.join(path.dirname(f.disk.dir), "logs", "worker.log"),
        /job attempt failed/,
        Math.min(epochMs + 1000, 30_000),
      );
      await f.disk.free();
      return hit ? "an attempt failed on it" : "no write while full";
    }
  }
}

/** The BullMQ child training under the worker; waits a little for one (between two attempts there is none). */
async function trainingChild(worker: NodeService): Promise<number | undefined> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const child = descendants(worker.pid()).find((p) => /bullmq.*main\.js/.test(p.args));
    if (child) return child.pid;
    await sleep(100);
  }
  return undefined;
}

/** Whether a line matching `pattern` is appended to `file` within `timeoutMs`. */
async function waitForLog(file: string, pattern: RegExp, timeoutMs: number): Promise<boolean> {
  const from = (await fs.stat(file)).size;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const handle = await fs.open(file, "r");
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(size - from);
    await handle.read(buffer, 0, buffer.length, from);
    await handle.close();
    if (pattern.test(buffer.toString())) return true;
    await sleep(200);
  }
  return false;
}

function phaseOf(job: JobView): string {
  if (job.state !== "running") return job.state;
  if (!job.progress) return "starting";
  return `epoch ${job.progress.epoch} batch ${job.progress.batch}/${job.progress.batches}`;
}

/** The job went past where it was when the fault struck. */
function advanced(before: JobView, now: JobView): boolean {
  if (now.metrics.length > before.metrics.length) return true;
  if (!now.progress || !before.progress || now.state !== "running") return false;
  return (
    now.progress.epoch > before.progress.epoch ||
    (now.progress.epoch === before.progress.epoch && now.progress.batch > before.progress.batch)
  );
}

/** What a recovered job must satisfy; an empty list when it does. */
async function check(f: FaultedJob, job: JobView): Promise<string[]> {
  const problems: string[] = [];
  if (job.state !== "completed") return [`ended ${job.state}${job.error ? ` ${job.error.code}: ${job.error.message}` : ""}`];
  const epochs = job.metrics.map((m) => m.epoch);
  const expected = f.reference.metrics.map((m) => m.epoch);
  if (JSON.stringify(epochs) !== JSON.stringify(expected)) problems.push(`epochs ${epochs.join(",")} instead of ${expected.join(",")}`);
  const values = (ms: EpochMetrics[]) =>
    ms.map(({ epoch, loss, accuracy, valLoss, valAccuracy }) => ({ epoch, loss, accuracy, valLoss, valAccuracy }));
  const got = values(job.metrics);
  const want = values(f.reference.metrics);
  const differing = got.filter((m, k) => JSON.stringify(m) !== JSON.stringify(want[k]));
  if (differing.length > 0) {
    const first = differing[0];
    const ref = want.find((m) => m.epoch === first.epoch);
    problems.push(`metrics differ from the reference from epoch ${first.epoch} (loss ${first.loss} vs ${ref?.loss})`);
  }
  for (const format of ["tfjs", "keras"]) {
    const response = await f.http.raw("GET", `/v1/models/${job.modelId}/download?format=${format}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200 || bytes.length === 0 || Number(response.headers.get("content-length")) !== bytes.length) {
      problems.push(`${format} download ${response.status}, ${bytes.length} bytes`);
    }
  }
  const leftovers = await scratchLeftovers(f.disk.dir);
  if (leftovers.length > 0)
    problems.push(`left in scratch: ${leftovers.slice(0, 3).join(", ")}${leftovers.length > 3 ? ` (+${leftovers.length - 3})` : ""}`);
  return problems;
}

/** Files in DATA_DIR/.tmp, and half-written `*.part` files anywhere in DATA_DIR. */
async function scratchLeftovers(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dataDir, { withFileTypes: true, recursive: true })) {
    const rel = path.relative(dataDir, path.join(entry.parentPath, entry.name));
    if (entry.isDirectory()) continue;
    if (rel.startsWith(`.tmp${path.sep}`) || entry.name.endsWith(".part")) out.push(rel);
  }
  return out.sort();
}

/** The soak's own housekeeping: a checked job's model and checkpoints leave the (small) DATA_DIR. */
async function removeJobFiles(dataDir: string, job: JobView): Promise<void> {
  await fs.rm(path.join(dataDir, storageKeys.job(TENANT, job.id)), { recursive: true, force: true });
  if (job.modelId) await fs.rm(path.join(dataDir, storageKeys.model(TENANT, job.modelId)), { recursive: true, force: true });
}

function printTable(rows: Row[]): void {
  const header = ["job", "spec", "fault", "phase", "outcome", "recover s", "job s"];
  const cells = rows.map((r) => [
    String(r.job),
    r.spec,
    r.fault,
    r.phase,
    r.outcome,
    r.recoverSeconds === null ? "-" : r.recoverSeconds.toFixed(1),
    String(r.seconds),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => Math.min(row[c].length, 80))));
  const line = (row: string[]) => row.map((cell, c) => cell.slice(0, 80).padEnd(widths[c])).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of cells) console.log(line(row));
  const byFault = FAULTS.map((fault) => {
    const mine = rows.filter((r) => r.fault === fault);
    const ok = mine.filter((r) => r.outcome === "recovered");
    const times = ok.map((r) => r.recoverSeconds).filter((s): s is number => s !== null);
    const median = times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
    return `${fault}: ${ok.length}/${mine.length}${median !== undefined ? ` (median recovery ${median.toFixed(1)} s)` : ""}`;
  });
  console.log(byFault.join("; "));
}

/** The API over HTTP, patient with an API or Redis that is restarting (connection errors and 503 are retried). */
function client(base: string) {
  async function raw(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        const init: RequestInit = { method, headers: { ...headers } };
        if (body instanceof FormData) init.body = body;
        else if (body !== undefined) {
          init.body = JSON.stringify(body);
          (init.headers as Record<string, string>)["content-type"] = "application/json";
        }
        const response = await fetch(`${base}${url}`, init);
        if (response.status !== 503 || Date.now() > deadline) return response;
        await response.arrayBuffer();
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      await sleep(250);
    }
  }
  async function call<T>(method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const response = await raw(method, url, body, headers);
    const text = await response.text();
    if (response.status >= 300) throw new Error(`${method} ${url}: ${response.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }
  const job = (id: string) => call<JobView>("GET", `/v1/jobs/${id}`);
  return {
    raw,
    call,
    job,
    /** POST /v1/jobs with an Idempotency-Key, so a POST lost to a fault can be sent again safely. */
    async createJob(spec: Record<string, unknown>, key: string): Promise<string> {
      return (await call<JobView>("POST", "/v1/jobs", spec, { "idempotency-key": key })).id;
    },
    async waitFor(id: string, done: (j: JobView) => boolean, timeoutMs: number): Promise<JobView> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const j = await job(id);
        if (done(j)) return j;
        if (Date.now() > deadline) throw new Error(`job ${id} still ${phaseOf(j)} after ${timeoutMs / 1000} s`);
        await sleep(200);
      }
    },
  };
}

await main();
