import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import test from "node:test";
import { checkImage } from "../../src/datasets/image-check.js";
import { makeImage, type ImageFormat } from "../helpers/dataset-archives.js";

const FORMATS: ImageFormat[] = ["png", "jpeg", "webp", "gif", "tiff"];

async function tempDir(t: test.TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "image-check-"));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

// A check that ran sharp's stats() passed a truncated file about half the
// time when several checks ran at once (the upload test then counted it).
test("a truncated file is refused every time, also when many checks run at once", async (t) => {
  const dir = await tempDir(t);
  for (const format of FORMATS) {
    const whole = await makeImage(50, format, 48);
    const file = path.join(dir, `cut.${format}`);
    await fs.writeFile(file, whole.subarray(0, whole.length - 20));
    const checks = await Promise.all(Array.from({ length: 40 }, () => checkImage(file, whole.length - 20, 1_000_000)));
    const passed = checks.filter((c) => c.ok).length;
    assert.equal(passed, 0, `${format}: ${passed} of 40 concurrent checks passed a truncated file`);
    if (format !== "tiff")
      assert.ok(
        checks.every((c) => !c.ok && c.reason === "truncated"),
        format,
      );
  }
});

test("whole files pass with their format and size, also when many checks run at once", async (t) => {
  const dir = await tempDir(t);
  for (const format of FORMATS) {
    const whole = await makeImage(51, format, 48);
    const file = path.join(dir, `whole.${format}`);
    await fs.writeFile(file, whole);
    const checks = await Promise.all(Array.from({ length: 10 }, () => checkImage(file, whole.length, 1_000_000)));
    for (const c of checks) assert.deepEqual(c, { ok: true, format, width: 48, height: 48 });
  }
});
