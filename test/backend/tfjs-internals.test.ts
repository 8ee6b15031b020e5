// The private internals of pinned packages that src/ relies on exist and behave as relied upon, and the
// packages are pinned exactly at the installed version: a version bump that moves them fails here first.
// tfjs: the wasm backend's heap (wasm-speedups/heap-kernels.ts, gradient-thread.ts), Adam's private
// fields (fused-adam.ts), the kernels wasm-kernels.ts wraps, the tape saving through Identity
// (tape-identity.ts); h5wasm: emscripten's FS.open (model/weights/h5-file.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import type { AdamFields } from "../../src/backend/wasm-speedups/fused-adam.js";
import type { WasmBackendInternals } from "../../src/backend/wasm-speedups/heap-kernels.js";
import { WRAPPED_WASM_KERNELS } from "../../src/backend/wasm-speedups/wasm-kernels.js";

/** The packages whose internals src/ touches (bullmq: its Lua scripts' keys, pinned since before). */
const PINNED = [
  ...["@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm", "@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"],
  ...["h5wasm", "bullmq"],
];

const root = path.resolve(import.meta.dirname, "../..");
const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as Record<string, Record<string, string> | undefined>;

function declared(pkg: string): string | undefined {
  return manifest.dependencies?.[pkg] ?? manifest.optionalDependencies?.[pkg] ?? manifest.devDependencies?.[pkg];
}

/** The installed version, read from node_modules (some packages' exports hide their package.json). */
function installed(pkg: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(root, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return undefined; // an optional dependency that did not install
  }
}

test("package.json pins each package whose internals src/ uses to one exact version, and that version is the installed one", () => {
  for (const pkg of PINNED) {
    const pin = declared(pkg);
    assert.ok(pin, `${pkg} is declared`);
    assert.match(pin, /^\d+\.\d+\.\d+$/, `${pkg} is pinned exactly (no ^, ~ or range), got "${pin}"`);
    const version = installed(pkg);
    if (version !== undefined || !manifest.optionalDependencies?.[pkg]) assert.equal(version, pin, `installed ${pkg}`);
  }
  // tfjs' internals are tfjs-core's: the one tfjs pulls in is at the same version.
  assert.equal(installed("@tensorflow/tfjs-core"), declared("@tensorflow/tfjs"));
  assert.equal(declared("@tensorflow/tfjs-node"), declared("@tensorflow/tfjs"));
  assert.equal(declared("@tensorflow/tfjs-backend-wasm"), declared("@tensorflow/tfjs"));
});

test("the wasm backend exposes its memory (wasm.asm.memory) and each tensor's offset in it (dataIdMap.get().memoryOffset)", async () => {
  await selectBackend("wasm");
  type Internals = WasmBackendInternals & { incRef(dataId: object): void; dataIdMap: { has(dataId: object): boolean } };
  const backend = tf.backend() as unknown as Internals;
  const memory = backend.wasm.asm?.memory;
  assert.ok(memory instanceof WebAssembly.Memory);
  const t = tf.tensor1d([1, 2, 3, 4]);
  const offset = backend.dataIdMap.get(t.dataId).memoryOffset;
  assert.equal(typeof offset, "number");
  // Written through the heap at that offset, read back through tfjs: the offset is where the values live.
  new Float32Array(memory.buffer, offset, 4).set([10, 20, 30, 40]);
  assert.deepEqual(Array.from(t.dataSync()), [10, 20, 30, 40]);
  assert.equal(backend.dataIdMap.has(t.dataId), true);
  // typedArrayFromHeap reads there too; makeOutput allocates a tensor the heap kernels write into.
  assert.deepEqual(Array.from(backend.typedArrayFromHeap(t)), [10, 20, 30, 40]);
  const out = backend.makeOutput([2, 2], "float32");
  assert.deepEqual(out.shape, [2, 2]);
  assert.equal(typeof backend.dataIdMap.get(out.dataId).memoryOffset, "number");
  assert.equal(typeof backend.incRef, "function");
  tf.engine().makeTensorFromTensorInfo(out).dispose();
  t.dispose();
});

test("wasm registers every kernel wasm-kernels.ts wraps", async () => {
  await selectBackend("wasm");
  assert.ok(WRAPPED_WASM_KERNELS.length > 0);
  assert.deepEqual(
    WRAPPED_WASM_KERNELS.filter((name) => !tf.getKernel(name, "wasm")),
    [],
  );
});

test("the tape saves a kernel's inputs through the Identity kernel, and tf.clone runs it", async () => {
  await selectBackend("wasm");
  const x = tf.tensor1d([1, -2, 3]);
  const saving = await tf.profile(() => tf.grad((v: tf.Tensor) => tf.relu(v))(x));
  assert.ok(
    saving.kernels.some((k) => k.name === tf.Identity),
    "relu's saved input came from Identity",
  );
  const cloning = await tf.profile(() => tf.clone(x));
  assert.deepEqual(
    cloning.kernels.map((k) => k.name),
    [tf.Identity],
  );
  tf.dispose(x);
});

test("tfjs' AdamOptimizer keeps its state in the private fields fused-adam.ts reads and writes", async () => {
  await selectBackend("wasm");
  const weight = tf.variable(tf.tensor1d([1, 2]), true, "internals_w");
  const adam = tf.train.adam(0.1, 0.9, 0.999, 1e-7);
  adam.applyGradients([{ name: weight.name, tensor: tf.tensor1d([0.5, -0.5]) }]);
  const fields = adam as unknown as AdamFields & { iterations: number };
  assert.ok(fields.accBeta1 instanceof tf.Variable);
  assert.ok(fields.accBeta2 instanceof tf.Variable);
  assert.ok(Math.abs(fields.accBeta1.dataSync()[0] - 0.81) < 1e-6, "accBeta1 is beta1^(t+1) after one step");
  assert.equal(fields.accumulatedFirstMoment.length, 1);
  assert.equal(fields.accumulatedFirstMoment[0].originalName, "internals_w/m");
  assert.equal(fields.accumulatedSecondMoment[0].originalName, "internals_w/v");
  assert.ok(fields.accumulatedFirstMoment[0].variable instanceof tf.Variable);
  assert.equal(fields.iterations, 1);
  fields.incrementIterations();
  assert.equal(fields.iterations, 2);
  // getWeights() names the moments as fused-adam.ts creates them.
  const names = (await adam.getWeights()).map((w) => w.name);
  assert.deepEqual(names, ["iter", "internals_w/m", "internals_w/v"]);
  assert.equal(tf.engine().registeredVariables[weight.name], weight);
  adam.dispose();
  weight.dispose();
});

test("h5wasm opens every host file through emscripten's FS.open, and throws FS.ErrnoError", async (t) => {
  const { default: h5wasm } = await import("h5wasm/node");
  type Fs = { open: (...args: unknown[]) => unknown; ErrnoError: new (errno: number) => Error };
  const module = (await h5wasm.ready) as unknown as { FS: Fs };
  assert.equal(typeof module.FS.open, "function");
  assert.equal(typeof module.FS.ErrnoError, "function");
  assert.ok(new module.FS.ErrnoError(2) instanceof Error);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "h5-internals-"));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "probe.h5");
  const original = module.FS.open;
  const opened: unknown[] = [];
  module.FS.open = function (this: unknown, target: unknown, ...rest: unknown[]) {
    opened.push(target);
    return original.call(this, target, ...rest);
  };
  try {
    new h5wasm.File(file, "w").close();
    assert.ok(opened.includes(file), "creating the file went through FS.open");
    opened.length = 0;
    new h5wasm.File(file, "r").close();
    assert.ok(opened.includes(file), "opening it for reading went through FS.open");
  } finally {
    module.FS.open = original;
  }
});
