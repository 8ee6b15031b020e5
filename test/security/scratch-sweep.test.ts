// Scratch space left by a dead process is swept when the API or a worker
// starts, without touching what a live process (of this host, or of another
// host sharing DATA_DIR) may still be writing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs/promises";
import path from "node:path";
import { build, tempDir } from "../helpers/app.js";
import { assertStillServing } from "../helpers/security.js";
import { filesUnder } from "../helpers/dataset-upload.js";
import { scratchOwnerTag, sweepScratch, TMP_DIR } from "../../src/storage/scratch-sweep.js";
import { startService } from "../helpers/processes.js";
import { startRedis } from "../helpers/redis.js";

const HOUR = 3600_000;

function runToDeath(dataDir: string): Promise<NodeJS.Signals | null> {
  // node itself (not the tsx wrapper, which would outlive it): the scratch owner is the process that dies.
  const child = spawn(process.execPath, ["--import", "tsx", "test/security/fixtures/die-mid-write.ts"], {
    env: { ...process.env, DATA_DIR: dataDir },
    stdio: "ignore",
  });
  return new Promise((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
}

async function entry(dir: string, name: string, ageMs: number): Promise<void> {
  await fs.mkdir(path.join(dir, name), { recursive: true });
  await fs.writeFile(path.join(dir, name, "file"), "x");
  const when = new Date(Date.now() - ageMs);
  await fs.utimes(path.join(dir, name, "file"), when, when);
  await fs.utimes(path.join(dir, name), when, when);
}

test("the sweep removes entries of dead processes of this host and entries untouched for SCRATCH_MAX_AGE_MS, nothing else", async (t) => {
  const dir = await tempDir("rf-scratch-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  // Real processes of this host: one that has exited, one that runs until the sweep is done.
  const dead = spawnSync(process.execPath, ["-e", ""]).pid;
  const running = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  t.after(async () => {
    if (running.exitCode === null && running.signalCode === null) {
      const exited = once(running, "exit");
      running.kill();
      await exited;
    }
  });
  const alive = running.pid!;
  await entry(dir, `${scratchOwnerTag(dead)}upload-dead`, 0);
  await entry(dir, `${scratchOwnerTag(alive)}upload-live-old`, 2 * HOUR);
  await entry(dir, `${scratchOwnerTag(alive)}upload-live`, 0);
  await entry(dir, `${scratchOwnerTag(dead, "other-host")}upload-remote-fresh`, 0);
  await entry(dir, `${scratchOwnerTag(dead, "other-host")}upload-remote-old`, 2 * HOUR);
  await entry(dir, "legacy-fresh", 0);
  await entry(dir, "legacy-old", 2 * HOUR);
  // A directory whose own time is old but whose file is being written is in use.
  await entry(dir, "legacy-growing", 2 * HOUR);
  await fs.writeFile(path.join(dir, "legacy-growing", "file"), "more");

  const result = await sweepScratch(dir, { maxAgeMs: HOUR });
  assert.deepEqual(
    result.removed.sort(),
    [
      `${scratchOwnerTag(alive)}upload-live-old`,
      `${scratchOwnerTag(dead, "other-host")}upload-remote-old`,
      `${scratchOwnerTag(dead)}upload-dead`,
      "legacy-old",
    ].sort(),
  );
  assert.deepEqual(
    (await fs.readdir(dir)).sort(),
    [
      `${scratchOwnerTag(alive)}upload-live`,
      `${scratchOwnerTag(dead, "other-host")}upload-remote-fresh`,
      "legacy-fresh",
      "legacy-growing",
    ].sort(),
  );
});

test("the API sweeps DATA_DIR/.tmp left by a process killed mid-upload when it starts", async (t) => {
  const dataDir = await tempDir("rf-data-");
  assert.equal(await runToDeath(dataDir), "SIGKILL");
  assert.equal((await filesUnder(path.join(dataDir, TMP_DIR))).length, 2, "the dead process left a partial upload and a pending write");
  // Default SCRATCH_MAX_AGE_MS (6 h): the entries are fresh, their owner is dead.
  const { app, config } = await build(t, { DATA_DIR: dataDir });
  await assertStillServing(app, config);
  assert.equal((await fs.readdir(dataDir)).includes("tenants"), false, "the pending write was never committed");
});

test("a worker sweeps DATA_DIR/.tmp when it starts", async (t) => {
  const dataDir = await tempDir("rf-data-");
  const redis = await startRedis();
  t.after(async () => {
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  assert.equal(await runToDeath(dataDir), "SIGKILL");
  const worker = startService("worker", "src/worker.ts", {
    DATA_DIR: dataDir,
    REDIS_URL: redis.url,
    LOG_LEVEL: "info",
    TFJS_BACKEND: "wasm",
  });
  t.after(() => worker.stop());
  await worker.waitFor(/worker started/);
  assert.match(worker.output, /swept scratch space/);
  assert.deepEqual(await filesUnder(path.join(dataDir, TMP_DIR)), []);
});
