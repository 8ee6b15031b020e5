import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { currentBackend, selectBackend } from "../../src/backend/select-backend.js";

const run = promisify(execFile);
const child = fileURLToPath(new URL("./fixtures/select-backend-child.ts", import.meta.url));

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
const nativeInstalled = installed("@tensorflow/tfjs-node") || installed("@tensorflow/tfjs-node-gpu");

/** Runs the selection in a fresh process: returns its pino log lines and its outcome. */
async function selectInChild(tfjsBackend: string): Promise<{ logs: Record<string, unknown>[]; outcome: Record<string, unknown> }> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", child], {
    env: { ...process.env, TFJS_BACKEND: tfjsBackend },
    timeout: 60_000,
  });
  const lines = stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  // pino writes synchronously and console.log asynchronously on a pipe: the outcome need not be the last line.
  const isOutcome = (line: Record<string, unknown>) => "result" in line || "error" in line;
  const outcome = lines.find(isOutcome);
  assert.ok(outcome, `no output from the child: ${stdout}`);
  return { logs: lines.filter((line) => !isOutcome(line)), outcome };
}

test("selectBackend('wasm') activates wasm without the training kernels, and a second call returns the same info", async () => {
  assert.equal(currentBackend(), undefined);
  const info = await selectBackend("wasm");
  assert.deepEqual(info, { name: "wasm", skipped: [] });
  assert.equal(tf.getBackend(), "wasm");
  // Only installTrainingSpeedups registers them: wasm itself has no Conv2DBackpropFilter.
  assert.equal(tf.getKernel(tf.Conv2DBackpropFilter, "wasm"), undefined);
  assert.equal(currentBackend(), info);
  assert.equal(await selectBackend("wasm"), info);
  assert.equal(await selectBackend("auto"), info);
});

test("asking for another backend once one is chosen is a coded error, not a silent switch", async () => {
  await selectBackend("wasm");
  await assert.rejects(selectBackend("cpu"), { code: "BACKEND_UNAVAILABLE" });
  assert.equal(tf.getBackend(), "wasm");
});

test("auto skips the native backends with their reasons, picks wasm and logs that once", {
  skip: nativeInstalled && "a native tfjs package is installed here, so auto does not fall back to wasm",
}, async () => {
  const { logs, outcome } = await selectInChild("auto");
  const result = outcome.result as { name: string; skipped: { name: string; reason: string }[] };
  assert.equal(result.name, "wasm");
  assert.deepEqual(
    result.skipped.map((s) => s.name),
    ["tensorflow-gpu", "tensorflow"],
  );
  assert.match(result.skipped[0].reason, /@tensorflow\/tfjs-node-gpu is not installed/);
  assert.match(result.skipped[1].reason, /@tensorflow\/tfjs-node is not installed/);
  const selected = logs.filter((line) => line.msg === "tfjs backend selected");
  assert.equal(selected.length, 1);
  assert.equal(selected[0].backend, "wasm");
  assert.equal(selected[0].requested, "auto");
  assert.deepEqual(selected[0].skipped, result.skipped);
});

test("a requested backend that cannot load fails with BACKEND_UNAVAILABLE naming the reason", {
  skip: nativeInstalled && "a native tfjs package is installed here, so it would load",
}, async () => {
  const { outcome } = await selectInChild("tensorflow");
  const error = outcome.error as { code: string; message: string };
  assert.equal(error.code, "BACKEND_UNAVAILABLE");
  assert.match(error.message, /TFJS_BACKEND=tensorflow cannot be used: @tensorflow\/tfjs-node is not installed/);
});
