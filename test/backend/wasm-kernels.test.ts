import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { onBackend, relativeError, seededValues } from "../helpers/backends.js";

await selectBackend("wasm");

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

/** The backend's own Conv2DBackpropFilter kernel, called directly (no op-level fallbacks). */
function backpropFilter(c: Case, x: Float32Array, dy: Float32Array, dyShape: number[]): Float32Array {
  const channelsFirst = c.dataFormat === "NCHW";
  const xShape = channelsFirst ? [c.batch, IN_CHANNELS, c.height, c.width] : [c.batch, c.height, c.width, IN_CHANNELS];
  return tf.tidy(() => {
    const out = tf.engine().runKernel(
      tf.Conv2DBackpropFilter,
      { x: tf.tensor(x, xShape), dy: tf.tensor(dy, dyShape) },
      {
        strides: [c.stride, c.stride],
        pad: c.pad,
        dataFormat: c.dataFormat ?? "NHWC",
        dimRoundingMode: undefined,
        filterShape: [c.kernel, c.kernel, IN_CHANNELS, OUT_CHANNELS],
      } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor;
    return out.dataSync() as Float32Array;
  });
}

function outSize(size: number, c: Case): number {
  if (c.pad === "same") return Math.ceil(size / c.stride);
  const pad = c.pad === "valid" ? 0 : 2 * c.pad;
  return Math.floor((size + pad - c.kernel) / c.stride) + 1;
}

async function compare(c: Case): Promise<number> {
  const outH = outSize(c.height, c);
  const outW = outSize(c.width, c);
  const dyShape = c.dataFormat === "NCHW" ? [c.batch, OUT_CHANNELS, outH, outW] : [c.batch, outH, outW, OUT_CHANNELS];
  const x = seededValues(c.batch * c.height * c.width * IN_CHANNELS, 7 + c.kernel);
  const dy = seededValues(dyShape.reduce((a, b) => a * b, 1), 11 + c.stride);
  const expected = await onBackend("cpu", () => backpropFilter(c, x, dy, dyShape));
  assert.equal(tf.getBackend(), "wasm");
  const actual = backpropFilter(c, x, dy, dyShape);
  return relativeError(actual, expected);
}

const grid: Case[] = [];
for (const kernel of [1, 3, 7]) {
  for (const stride of [1, 2]) {
    for (const pad of ["same", "valid"] as const) {
      for (const batch of [1, 3]) grid.push({ kernel, stride, pad, batch, height: 11, width: 8 });
    }
  }
}

test("wasm Conv2DBackpropFilter matches cpu on kernel 1/3/7, stride 1/2, same/valid, batch 1/3, 11x8 input (max|a-b| / max|cpu| < 1e-4)", async () => {
  assert.ok(tf.getKernel(tf.Conv2DBackpropFilter, "wasm"), "kernel registered for wasm");
  const failures: string[] = [];
  for (const c of grid) {
    const error = await compare(c);
    if (!(error < 1e-4)) failures.push(`${JSON.stringify(c)}: ${error}`);
  }
  assert.deepEqual(failures, []);
});

test("wasm Conv2DBackpropFilter matches cpu with explicit numeric padding, NCHW data and even sizes with stride 2 (asymmetric same padding)", async () => {
  const cases: Case[] = [
    { kernel: 3, stride: 2, pad: 1, batch: 2, height: 13, width: 7 },
    { kernel: 3, stride: 2, pad: "same", batch: 2, height: 7, width: 12, dataFormat: "NCHW" },
    { kernel: 7, stride: 2, pad: 3, batch: 1, height: 15, width: 15 },
  ];
  for (const c of cases) assert.ok((await compare(c)) < 1e-4, JSON.stringify(c));
});

test("the gradient of a strided conv2d on wasm equals cpu's, through tf.grad", async () => {
  const x = seededValues(2 * 10 * 9 * IN_CHANNELS, 3);
  const w = seededValues(3 * 3 * IN_CHANNELS * OUT_CHANNELS, 4);
  const gradient = () =>
    tf.tidy(() => {
      const filter = tf.tensor4d(w, [3, 3, IN_CHANNELS, OUT_CHANNELS]);
      const input = tf.tensor4d(x, [2, 10, 9, IN_CHANNELS]);
      const g = tf.grad((f) => tf.conv2d(input, f as tf.Tensor4D, 2, "same").square().sum())(filter);
      return g.dataSync() as Float32Array;
    });
  const expected = await onBackend("cpu", gradient);
  assert.ok(relativeError(gradient(), expected) < 1e-4);
});
