// The convolution gradient kernels registered for wasm compute what the cpu backend's kernels compute.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { onBackend, relativeError, seededValues, selectTrainingWasm } from "../helpers/backends.js";

await selectTrainingWasm();

interface Case {
  kernel: number;
  stride: number;
  pad: "same" | "valid" | number;
  batch: number;
  height: number;
  width: number;
  dataFormat?: "NHWC" | "NCHW";
}

const IN_CHANNELS = 3;
const OUT_CHANNELS = 5;

function outSize(size: number, c: Case): number {
  if (c.pad === "same") return Math.ceil(size / c.stride);
  const pad = c.pad === "valid" ? 0 : 2 * c.pad;
  return Math.floor((size + pad - c.kernel) / c.stride) + 1;
}

function shapes(c: Case) {
  const [outH, outW] = [outSize(c.height, c), outSize(c.width, c)];
  const nchw = c.dataFormat === "NCHW";
  return {
    x: nchw ? [c.batch, IN_CHANNELS, c.height, c.width] : [c.batch, c.height, c.width, IN_CHANNELS],
    dy: nchw ? [c.batch, OUT_CHANNELS, outH, outW] : [c.batch, outH, outW, OUT_CHANNELS],
    filter: [c.kernel, c.kernel, IN_CHANNELS, OUT_CHANNELS],
  };
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Runs the active backend's own kernel directly (no op-level shortcuts) and reads its result.
 * No tidy around it, so an intermediate tensor the kernel forgot to free stays counted.
 */
function runKernel(name: string, inputs: Record<string, tf.Tensor>, c: Case, extra: Record<string, unknown>): Float32Array {
  const attrs = { strides: [c.stride, c.stride], pad: c.pad, dataFormat: c.dataFormat ?? "NHWC", dimRoundingMode: undefined, ...extra };
  const out = tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  const values = out.dataSync() as Float32Array;
  tf.dispose([out, ...Object.values(inputs)]);
  return values;
}

/** max|wasm - cpu| / max|cpu| for both gradient kernels on case c. */
async function compare(c: Case): Promise<{ filter: number; input: number }> {
  const s = shapes(c);
  const x = seededValues(size(s.x), 7 + c.kernel);
  const dy = seededValues(size(s.dy), 11 + c.stride);
  const w = seededValues(size(s.filter), 13 + c.batch);
  const both = () => ({
    filter: runKernel(tf.Conv2DBackpropFilter, { x: tf.tensor(x, s.x), dy: tf.tensor(dy, s.dy) }, c, { filterShape: s.filter }),
    input: runKernel(tf.Conv2DBackpropInput, { dy: tf.tensor(dy, s.dy), filter: tf.tensor(w, s.filter) }, c, { inputShape: s.x }),
  });
  const expected = await onBackend("cpu", both);
  assert.equal(tf.getBackend(), "wasm");
  const actual = both();
  return { filter: relativeError(actual.filter, expected.filter), input: relativeError(actual.input, expected.input) };
}

async function failures(cases: Case[]): Promise<string[]> {
  const out: string[] = [];
  for (const c of cases) {
    const error = await compare(c);
    if (!(error.filter < 1e-4 && error.input < 1e-4)) out.push(`${JSON.stringify(c)}: ${JSON.stringify(error)}`);
  }
  return out;
}

const grid: Case[] = [];
for (const kernel of [1, 3, 7]) {
  for (const stride of [1, 2]) {
    for (const pad of ["same", "valid"] as const) {
      for (const batch of [1, 3]) grid.push({ kernel, stride, pad, batch, height: 11, width: 8 });
    }
  }
}

test("wasm Conv2DBackpropFilter and Conv2DBackpropInput match cpu on kernel 1/3/7, stride 1/2, same/valid, batch 1/3, 11x8 input (max|a-b| / max|cpu| < 1e-4), leaking no tensor", async () => {
  assert.ok(tf.getKernel(tf.Conv2DBackpropFilter, "wasm"), "kernel registered for wasm");
  const before = tf.memory().numTensors;
  assert.deepEqual(await failures(grid), []);
  assert.equal(tf.memory().numTensors, before, "the kernels leave no intermediate tensor behind");
});

test("they match cpu with explicit numeric padding, NCHW data, 1x1 stride-2 on odd sizes and kernels wider than the input's tail", async () => {
  assert.deepEqual(
    await failures([
      { kernel: 3, stride: 2, pad: 1, batch: 2, height: 13, width: 7 },
      { kernel: 3, stride: 2, pad: "same", batch: 2, height: 7, width: 12, dataFormat: "NCHW" },
      { kernel: 1, stride: 1, pad: "valid", batch: 2, height: 5, width: 6, dataFormat: "NCHW" },
      { kernel: 7, stride: 2, pad: 3, batch: 1, height: 15, width: 15 },
      { kernel: 1, stride: 2, pad: "valid", batch: 2, height: 9, width: 9 },
      { kernel: 3, stride: 2, pad: "valid", batch: 1, height: 10, width: 10 },
      { kernel: 5, stride: 1, pad: 4, batch: 1, height: 5, width: 6 },
    ]),
    [],
  );
});

test("the gradients of a strided conv2d on wasm equal cpu's, through tf.grads", async () => {
  const x = seededValues(2 * 10 * 9 * IN_CHANNELS, 3);
  const w = seededValues(3 * 3 * IN_CHANNELS * OUT_CHANNELS, 4);
  const gradients = () =>
    tf.tidy(() => {
      const input = tf.tensor4d(x, [2, 10, 9, IN_CHANNELS]);
      const filter = tf.tensor4d(w, [3, 3, IN_CHANNELS, OUT_CHANNELS]);
      const [dx, dw] = tf.grads((a, b) =>
        tf
          .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same")
          .square()
          .sum(),
      )([input, filter]);
      return [dx.dataSync() as Float32Array, dw.dataSync() as Float32Array];
    });
  const expected = await onBackend("cpu", gradients);
  const actual = gradients();
  assert.ok(relativeError(actual[0], expected[0]) < 1e-4, "dx");
  assert.ok(relativeError(actual[1], expected[1]) < 1e-4, "dw");
});

test("wasm BatchMatMul with transposed operands matches cpu (2-D and batched 3-D, every transpose combination), leaking no tensor", async () => {
  const cases: { a: number[]; b: number[]; transposeA: boolean; transposeB: boolean }[] = [];
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      // a is [m, k] (or [k, m] when transposed), b is [k, n] (or [n, k]).
      cases.push({ a: transposeA ? [7, 5] : [5, 7], b: transposeB ? [3, 7] : [7, 3], transposeA, transposeB });
      cases.push({ a: transposeA ? [2, 9, 4] : [2, 4, 9], b: transposeB ? [2, 6, 9] : [2, 9, 6], transposeA, transposeB });
    }
  }
  // A B^T with B much larger than A: computed as (B A^T)^T.
  cases.push({ a: [2, 3], b: [40, 3], transposeA: false, transposeB: true });
  cases.push({ a: [2, 2, 5], b: [2, 30, 5], transposeA: false, transposeB: true });
  cases.push({ a: [2, 5], b: [3, 30, 5], transposeA: false, transposeB: true });
  const product = (c: (typeof cases)[number]) =>
    tf.tidy(
      () =>
        tf
          .matMul(tf.tensor(seededValues(size(c.a), 21), c.a), tf.tensor(seededValues(size(c.b), 22), c.b), c.transposeA, c.transposeB)
          .dataSync() as Float32Array,
    );
  const before = tf.memory().numTensors;
  for (const c of cases) {
    const expected = await onBackend("cpu", () => product(c));
    const actual = product(c);
    assert.equal(actual.length, expected.length, JSON.stringify(c));
    assert.ok(relativeError(actual, expected) < 1e-5, `${JSON.stringify(c)}: ${relativeError(actual, expected)}`);
  }
  assert.equal(tf.memory().numTensors, before);
});

test("wasm BatchMatMul of few rows by a large B used for the first time, then again, matches cpu", async () => {
  const a = seededValues(3 * 1024, 41);
  const b = seededValues(1024 * 1100, 42);
  const products = () =>
    tf.tidy(() => {
      const weights = tf.tensor2d(b, [1024, 1100]);
      const rows = tf.tensor2d(a, [3, 1024]);
      // First use of `weights` goes through (B^T A^T)^T, the second through wasm's own kernel.
      return [tf.matMul(rows, weights).dataSync() as Float32Array, tf.matMul(rows, weights).dataSync() as Float32Array];
    });
  const before = tf.memory().numTensors;
  const expected = await onBackend("cpu", products);
  const [first, second] = products();
  assert.ok(relativeError(first, expected[0]) < 1e-5, `first: ${relativeError(first, expected[0])}`);
  assert.ok(relativeError(second, expected[1]) < 1e-5, `second: ${relativeError(second, expected[1])}`);
  assert.equal(tf.memory().numTensors, before);
});

test("wasm Tile by block copies matches cpu for float32, int32 and bool, ranks 1 to 4, and leaks no tensor", async () => {
  const cases: { shape: number[]; reps: number[]; dtype: "float32" | "int32" | "bool" }[] = [
    { shape: [3], reps: [4], dtype: "float32" },
    { shape: [2, 3], reps: [1, 1], dtype: "float32" },
    { shape: [2, 3], reps: [3, 2], dtype: "int32" },
    { shape: [1, 1, 1, 5], reps: [4, 3, 2, 1], dtype: "float32" },
    { shape: [2, 1, 3, 2], reps: [2, 3, 1, 2], dtype: "bool" },
  ];
  const tiled = (c: (typeof cases)[number]) =>
    tf.tidy(() => {
      const values = Array.from(seededValues(size(c.shape), 31), (v) =>
        c.dtype === "float32" ? v : c.dtype === "int32" ? Math.round(v * 100) : v > 0 ? 1 : 0,
      );
      const out = tf.tile(tf.tensor(values, c.shape, c.dtype), c.reps);
      return { shape: out.shape, dtype: out.dtype, values: Array.from(out.dataSync()) };
    });
  const before = tf.memory().numTensors;
  for (const c of cases) assert.deepEqual(tiled(c), await onBackend("cpu", () => tiled(c)), JSON.stringify(c));
  assert.equal(tf.memory().numTensors, before);
});

test("wasm Sum and Mean over leading axes (summed row by row) and over other axes match cpu, keepDims or not, leaking no tensor", async () => {
  const shape = [4, 3, 5, 6];
  const values = seededValues(size(shape), 51);
  const cases: { axis: number | number[]; keepDims: boolean }[] = [
    { axis: 0, keepDims: false },
    { axis: [0, 1, 2], keepDims: false },
    { axis: [2, 1, 0], keepDims: true },
    { axis: [-4, -3], keepDims: false },
    { axis: [1, 2], keepDims: true },
    { axis: 3, keepDims: false },
    { axis: [0, 1, 2, 3], keepDims: false },
  ];
  const reductions = () =>
    tf.tidy(() => {
      const x = tf.tensor(values, shape);
      return cases.flatMap((c) =>
        [tf.sum(x, c.axis, c.keepDims), tf.mean(x, c.axis, c.keepDims)].map((t) => ({
          shape: t.shape,
          values: t.dataSync() as Float32Array,
        })),
      );
    });
  const before = tf.memory().numTensors;
  const expected = await onBackend("cpu", reductions);
  const actual = reductions();
  for (const [i, e] of expected.entries()) {
    const what = `${i % 2 ? "mean" : "sum"} ${JSON.stringify(cases[Math.floor(i / 2)])}`;
    assert.deepEqual(actual[i].shape, e.shape, what);
    assert.ok(relativeError(actual[i].values, e.values) < 1e-6, `${what}: ${relativeError(actual[i].values, e.values)}`);
  }
  assert.equal(tf.memory().numTensors, before);
});

test("a wasm clone shares its values, reference-counted: either tensor can be disposed first, and the memory goes with the last", () => {
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const dataIds = backend.numDataIds();
  const x = tf.tensor(seededValues(24, 61), [2, 3, 4]);
  const y = tf.clone(x);
  const z = tf.clone(y);
  assert.equal(backend.numDataIds(), dataIds + 1);
  x.dispose();
  assert.deepEqual(y.dataSync(), seededValues(24, 61));
  y.dispose();
  assert.deepEqual(z.dataSync(), seededValues(24, 61));
  assert.deepEqual(z.shape, [2, 3, 4]);
  z.dispose();
  assert.equal(backend.numDataIds(), dataIds);
});
