// Graceful shutdown of the real API process (src/server.ts): after SIGTERM it
// accepts no new connection, but an upload already in flight completes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import { freePort, startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/app.js";
import { classFolders, makeZip, multipartBody } from "../helpers/dataset-archives.js";

/** Resolves with the first pino line of `out()` whose message starts with `msg`. */
function waitForLog(out: () => string, msg: string, exited: Promise<unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const find = () =>
      out()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => typeof l.msg === "string" && l.msg.startsWith(msg));
    const timer = setTimeout(() => done(new Error(`no "${msg}" log within ${timeoutMs} ms:\n${out()}`)), timeoutMs);
    const poll = setInterval(() => {
      const line = find();
      if (line) done(undefined, line);
    }, 20);
    void exited.then(() => done(new Error(`the server exited before logging "${msg}":\n${out()}`)));
    function done(err?: Error, line?: Record<string, unknown>) {
      clearTimeout(timer);
      clearInterval(poll);
      if (err) reject(err);
      else resolve(line!);
    }
  });
}

test("on SIGTERM the API stops accepting, finishes an in-flight upload, then exits 0", { timeout: 60_000 }, async (t) => {
  const redis = await startRedis();
  const dataDir = await tempDir("rf-shutdown-");
  t.after(async () => {
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  const port = await freePort();
  const server = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      REDIS_URL: redis.url,
      DATA_DIR: dataDir,
      LOG_LEVEL: "info",
      API_KEYS: "",
      SHUTDOWN_TIMEOUT_MS: "20000",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  server.stdout.on("data", (d) => (out += d));
  server.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => server.once("close", (code) => r(code)));
  t.after(() => server.kill("SIGKILL"));
  await waitForLog(() => out, "Server listening", exited);

  const { payload, headers } = multipartBody(await makeZip(await classFolders(["cat", "dog"], 3)), { name: "in-flight" });
  const half = Math.floor(payload.length / 2);
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: "/v1/datasets", headers: { ...headers, "content-length": payload.length } },
      (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on("error", reject);
    req.write(payload.subarray(0, half), () => {
      // Half the upload is on the wire: stop the server, then send the rest.
      void waitForLog(() => out, "incoming request", exited)
        .then(() => server.kill("SIGTERM"))
        .then(() => waitForLog(() => out, "shutting down", exited))
        .then(async () => {
          await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), "no new connection is accepted while shutting down");
          req.end(payload.subarray(half));
        })
        .catch(reject);
    });
  });

  const { status, body } = await response;
  assert.equal(status, 201, body);
  assert.equal(JSON.parse(body).name, "in-flight");
  assert.equal(await exited, 0);
});
