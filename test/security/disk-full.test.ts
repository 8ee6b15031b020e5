// A full disk is the server's trouble: 507 STORAGE_FULL wherever the write
// fails (upload, extraction, storing), never a 400 blaming the archive, and
// nothing half-written left. DATA_DIR is a 2 MB tmpfs (needs root to mount).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { build, tempDir } from "../helpers/app.js";
import { incompressible, makeZip, makeImage } from "../helpers/dataset-archives.js";
import { filesUnder, uploadArchive } from "../helpers/dataset-upload.js";
import { assertStillServing, errorOf } from "../helpers/security.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { startRedis } from "../helpers/redis.js";
import { storeDataset, smallSpec } from "../helpers/training-fixtures.js";
import { loadConfig } from "../../src/config.js";
import { createRedis } from "../../src/jobs/redis.js";
import { jobRedis, readJobRecord } from "../../src/jobs/job-records.js";
import { createLogger } from "../../src/log.js";
import { processTrainingJob } from "../../src/worker/training-processor.js";
import { listCheckpoints } from "../../src/training/checkpoints.js";
import { createJobRecord } from "../helpers/jobs.js";

/** A tmpfs of `size` (2 MB by default), or null when this process may not mount one. */
async function tinyDisk(t: { after(fn: () => Promise<void>): void }, size = "2m"): Promise<string | null> {
  const dir = await tempDir("rf-tiny-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "ignore" });
  } catch {
    await fs.rm(dir, { recursive: true, force: true });
    return null;
  }
  t.after(async () => {
    execFileSync("umount", [dir]);
    await fs.rm(dir, { recursive: true, force: true });
  });
  return dir;
}

function canMount(): boolean {
  try {
    execFileSync("mount", ["--version"], { stdio: "ignore" });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}
const skip = canMount() ? false : "needs root to mount a 2 MB tmpfs as DATA_DIR (not root here)";

/** What a client can see: stored objects outside the scratch space and the readiness probe. */
async function stored(dataDir: string): Promise<string[]> {
  return (await filesUnder(dataDir)).filter((f) => !f.startsWith(".tmp"));
}

test("an archive that fills the disk while extracting answers 507 STORAGE_FULL, not 400 ARCHIVE_CORRUPT", { skip }, async (t) => {
  const disk = await tinyDisk(t);
  assert.ok(disk, "tmpfs mounted");
  // Highly compressible entries (a 30 KB archive expanding to 3 MB) under a lenient ratio limit: the disk is the only limit hit.
  const { app, config } = await build(t, { DATA_DIR: disk, MAX_COMPRESSION_RATIO: "100000" });
  const entries = [];
  for (const cls of ["cat", "dog"]) {
    for (let i = 0; i < 3; i++)
      entries.push({
        path: `${cls}/${i}.png`,
        data: Buffer.concat([await makeImage(i + (cls === "cat" ? 0 : 10)), Buffer.alloc(512 * 1024)]),
      });
  }
  const res = await uploadArchive(app, await makeZip(entries));
  assert.equal(res.statusCode, 507, res.body);
  assert.equal(errorOf(res).code, "STORAGE_FULL");
  assert.deepEqual(await stored(config.dataDir), []);
  await assertStillServing(app, config);
});

test("an upload larger than the free space answers 507 STORAGE_FULL and leaves nothing", { skip }, async (t) => {
  const disk = await tinyDisk(t);
  assert.ok(disk, "tmpfs mounted");
  const { app, config } = await build(t, { DATA_DIR: disk });
  const res = await uploadArchive(app, incompressible(3 * 1024 * 1024));
  assert.equal(res.statusCode, 507, res.body);
  assert.equal(errorOf(res).code, "STORAGE_FULL");
  assert.deepEqual(await stored(config.dataDir), []);
  await assertStillServing(app, config);
});

test("a storage write that hits a full disk leaves no object and no temporary file", { skip }, async (t) => {
  const disk = await tinyDisk(t);
  assert.ok(disk, "tmpfs mounted");
  const storage = createLocalStorage(disk);
  await assert.rejects(storage.put("tenants/a/models/m/model.bin", incompressible(3 * 1024 * 1024)), { code: "ENOSPC" });
  assert.equal(await storage.exists("tenants/a/models/m/model.bin"), false);
  assert.deepEqual(await filesUnder(path.join(disk, ".tmp")), []);
});

test("a worker whose disk fills during a job fails the attempt with STORAGE_FULL (retried), no checkpoint visible", {
  skip,
  timeout: 300_000,
}, async (t) => {
  // Room for the dataset and its caches, not for a ResNet-50 checkpoint (about 95 MB of weights).
  const disk = await tinyDisk(t, "24m");
  assert.ok(disk, "tmpfs mounted");
  const redis = await startRedis();
  const config = loadConfig({ LOG_LEVEL: "silent", DATA_DIR: disk, REDIS_URL: redis.url, TFJS_BACKEND: "wasm" });
  const connection = createRedis(redis.url, "consumer");
  t.after(async () => {
    connection.disconnect();
    await redis.stop();
  });
  const storage = createLocalStorage(disk);
  const db = jobRedis(connection, config);
  const dataset = await storeDataset(storage, config, "acme", 3);
  const spec = smallSpec(dataset.id, { epochs: 1 });
  const payload = { jobId: "job_full", tenant: "acme", spec, createdAt: new Date().toISOString() };
  await createJobRecord(db, payload);
  const job = { id: "job_full", data: payload, attemptsMade: 0, async updateProgress() {}, async moveToWait() {} };

  const failure = await processTrainingJob({ config, storage, db, log: createLogger("silent") }, job, undefined, undefined).then(
    () => assert.fail("the job cannot complete on a full disk"),
    (err: unknown) => err,
  );
  assert.equal((failure as { code?: string }).code, "STORAGE_FULL", "retried: not an UnrecoverableError");
  assert.equal((await readJobRecord(db, "job_full"))?.error?.code, "STORAGE_FULL");
  assert.deepEqual(await listCheckpoints(storage, "acme", "job_full"), []);
  assert.deepEqual(await filesUnder(path.join(disk, ".tmp")), []);
});
