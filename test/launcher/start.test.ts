// `npm start` as a user runs it: a real `node scripts/start.mjs` process. It
// compiles dist/ first when dist/ is older than src/ (a few seconds), which is
// the path a fresh clone takes, so this test exercises the build too. A
// service killed under it is restarted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import { freePort, startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/app.js";
import { descendants } from "../helpers/processes.js";
import { restartDelay } from "../../src/launcher/supervisor.js";

function waitFor(read: () => string, pattern: RegExp, exited: Promise<unknown>, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${read()}`)), timeoutMs);
    const poll = setInterval(() => {
      if (!pattern.test(read())) return;
      clearInterval(poll);
      clearTimeout(timer);
      resolve();
    }, 50);
    void exited.then(() => {
      clearInterval(poll);
      clearTimeout(timer);
      if (pattern.test(read())) resolve();
      else reject(new Error(`start.mjs exited before ${pattern}; output:\n${read()}`));
    });
  });
}

test("npm start with REDIS_URL runs the API, prints its URLs, and stops cleanly on SIGTERM", { timeout: 120_000 }, async (t) => {
  const redis = await startRedis();
  const dataDir = await tempDir("rf-start-");
  t.after(async () => {
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const port = await freePort();
  const child = spawn(process.execPath, ["scripts/start.mjs"], {
    env: { ...process.env, REDIS_URL: redis.url, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "info", API_KEYS: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  t.after(() => child.kill("SIGKILL"));

  await waitFor(() => out, /\[start\] Queues: +http:\/\/127\.0\.0\.1:\d+\/admin\/queues/, exited, 100_000);
  assert.match(out, /\[start\] Redis: using REDIS_URL/);
  assert.match(out, new RegExp(`\\[start\\] API: +http://127\\.0\\.0\\.1:${port}\\n`));
  assert.match(out, new RegExp(`\\[start\\] API docs: +http://127\\.0\\.0\\.1:${port}/docs`));
  assert.match(out, /^\[api\] \{.*"msg":"Server listening/m);

  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });

  child.kill("SIGTERM");
  assert.equal(await exited, 0);
  assert.match(out, /\[api\] .*shutting down/);
  assert.match(out, /\[start\] stopped\n$/);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
});

test("restartDelay doubles from 1 s to 30 s while a service keeps crashing, and starts over after a minute of uptime", () => {
  const delays: number[] = [];
  let delay = 0;
  for (let i = 0; i < 7; i++) {
    delay = restartDelay(delay, 500);
    delays.push(delay);
  }
  assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  assert.equal(restartDelay(30_000, 60_000), 1_000);
});

test("npm start restarts a worker or an API killed with kill -9 (logged, the other keeps running), then stops cleanly on SIGTERM", {
  timeout: 240_000,
}, async (t) => {
  const redis = await startRedis();
  const dataDir = await tempDir("rf-start-");
  t.after(async () => {
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const port = await freePort();
  const child = spawn(process.execPath, ["scripts/start.mjs"], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: "info",
      API_KEYS: "",
      TFJS_BACKEND: "wasm",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("close", (code) => r(code)));
  t.after(() => child.kill("SIGKILL"));
  const count = (pattern: RegExp) => out.split("\n").filter((l) => pattern.test(l)).length;
  const health = () =>
    fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.status,
      () => 0,
    );
  /** The pid of the service running `entry` (dist/server.js, dist/worker.js) under npm start. */
  const servicePid = (entry: string) => {
    const found = descendants(child.pid!).find((p) => p.args.includes(`dist/${entry}`) && !p.args.includes("training-processor"));
    assert.ok(found, `no ${entry} under npm start: ${JSON.stringify(descendants(child.pid!))}`);
    return found.pid;
  };

  await waitFor(() => out, /\[start\] Queues: /, exited, 150_000);
  await waitFor(() => out, /\[worker\] .*"msg":"worker started"/, exited, 60_000);

  const worker = servicePid("worker.js");
  process.kill(worker, "SIGKILL");
  await waitFor(() => out, /\[start\] worker exited \(SIGKILL\) after [\d.]+ s: restarting in 1 s/, exited, 10_000);
  assert.equal(await health(), 200, "the API keeps answering while the worker is down");
  await waitFor(() => (count(/\[worker\] .*"msg":"worker started"/) === 2 ? "again" : ""), /again/, exited, 60_000);
  assert.notEqual(servicePid("worker.js"), worker);

  const api = servicePid("server.js");
  process.kill(api, "SIGKILL");
  await waitFor(() => out, /\[start\] api exited \(SIGKILL\) after [\d.]+ s: restarting in 1 s/, exited, 10_000);
  await waitFor(() => (count(/\[api\] .*"msg":"Server listening/) === 2 ? "again" : ""), /again/, exited, 60_000);
  assert.equal(await health(), 200);
  assert.equal(count(/\[worker\] .*"msg":"worker started"/), 2, "the worker ran on while the API restarted");

  child.kill("SIGTERM");
  assert.equal(await exited, 0);
  assert.match(out, /\[start\] stopped\n$/);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
});
