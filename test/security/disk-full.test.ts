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

/** A 2 MB tmpfs, or null when this process may not mount one. */
async function tinyDisk(t: { after(fn: () => Promise<void>): void }): Promise<string | null> {
  const dir = await tempDir("rf-tiny-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir], { stdio: "ignore" });
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
    for (let i = 0; i < 3; i++) entries.push({ path: `${cls}/${i}.png`, data: Buffer.concat([await makeImage(i + (cls === "cat" ? 0 : 10)), Buffer.alloc(512 * 1024)]) });
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
