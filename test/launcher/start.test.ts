// `npm start` as a user runs it: a real `node scripts/start.mjs` process. It
// compiles dist/ first when dist/ is older than src/ (a few seconds), which is
// the path a fresh clone takes, so this test exercises the build too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import { freePort, startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/app.js";

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
