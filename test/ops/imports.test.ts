// The one-way import rule (docs/architecture.md) is checked, not just written:
// src/ follows it, and the check fails on a forbidden import.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

function checkImports(srcDir: string) {
  return spawnSync(process.execPath, ["scripts/check-imports.mjs", srcDir], { encoding: "utf8" });
}

test("src/ imports follow the one-way rule", () => {
  const run = checkImports("src");
  assert.equal(run.status, 0, run.stderr);
});

test("a forbidden import fails the check and is named: a folder reaching up, HTTP outside api/", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "imports-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const folder of ["api", "network", "worker", "training"]) mkdirSync(path.join(dir, folder));
  writeFileSync(path.join(dir, "api", "routes.ts"), 'import { x } from "../network/x.js";\nexport const y = x;\n');
  writeFileSync(path.join(dir, "network", "x.ts"), "export const x = 1;\n");
  writeFileSync(path.join(dir, "training", "ok.ts"), 'import { x } from "../network/x.js";\nexport const z = x;\n');
  assert.equal(checkImports(dir).status, 0, "allowed imports pass");

  writeFileSync(
    path.join(dir, "network", "leak.ts"),
    'import type { FastifyInstance } from "fastify";\nexport type { FastifyInstance };\n',
  );
  writeFileSync(path.join(dir, "training", "bad.ts"), 'import {\n  y,\n} from "../api/routes.js";\nexport const w = y;\n');
  writeFileSync(path.join(dir, "api", "late.ts"), 'export async function f() {\n  return import("../worker/w.js");\n}\n');
  const run = checkImports(dir);
  assert.equal(run.status, 1);
  const lines = run.stderr.split("\n").map((l) => l.trim().split(":")[0]);
  assert.deepEqual(lines.filter((l) => l.endsWith(".ts")).sort(), ["api/late.ts", "network/leak.ts", "training/bad.ts"]);
});

test("the wasm speed-ups are reached only through their entry: training/ may use index.ts, not heap internals; api/ neither", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "imports-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const folder of ["api", "training", "backend/wasm-speedups"]) mkdirSync(path.join(dir, folder), { recursive: true });
  writeFileSync(path.join(dir, "backend", "wasm-speedups", "index.ts"), "export const install = 1;\n");
  writeFileSync(path.join(dir, "backend", "wasm-speedups", "heap-kernels.ts"), "export const heap = 1;\n");
  const entry = 'import { install } from "../backend/wasm-speedups/index.js";\n';
  writeFileSync(path.join(dir, "training", "train.ts"), `${entry}export const a = install;\n`);
  assert.equal(checkImports(dir).status, 0, "training/ through the entry passes");

  const internal = 'import { heap } from "../backend/wasm-speedups/heap-kernels.js";\n';
  writeFileSync(path.join(dir, "training", "adam.ts"), `${internal}export const b = heap;\n`);
  writeFileSync(path.join(dir, "api", "predict.ts"), `${entry}export const c = install;\n`);
  const run = checkImports(dir);
  assert.equal(run.status, 1);
  const lines = run.stderr.split("\n").map((l) => l.trim().split(":")[0]);
  assert.deepEqual(lines.filter((l) => l.endsWith(".ts")).sort(), ["api/predict.ts", "training/adam.ts"]);
});
