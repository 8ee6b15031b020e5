import { test } from "node:test";
import assert from "node:assert/strict";
import { float16ToFloat32, float32ToFloat16 } from "../../src/training/float16.js";

test("float16 encodes known values exactly", () => {
  const values = new Float32Array([0, 1, -2, 0.5, 65504, 6.103515625e-5, 2 ** -24, Infinity, -Infinity]);
  const bits = float32ToFloat16(values);
  assert.deepEqual([...bits], [0x0000, 0x3c00, 0xc000, 0x3800, 0x7bff, 0x0400, 0x0001, 0x7c00, 0xfc00]);
  assert.deepEqual([...float16ToFloat32(bits)], [...values]);
});

test("float16 rounds to nearest within half a unit in the last place", () => {
  const values = new Float32Array(1000).map((_, i) => (i - 500) * 0.37 + 0.001 * i);
  const back = float16ToFloat32(float32ToFloat16(values));
  values.forEach((v, i) => {
    const ulp = 2 ** (Math.floor(Math.log2(Math.abs(v) || 1)) - 10);
    assert.ok(Math.abs(back[i] - v) <= ulp / 2, `${v} -> ${back[i]}`);
  });
  assert.ok(Number.isNaN(float16ToFloat32(float32ToFloat16(new Float32Array([NaN])))[0]));
  assert.equal(float32ToFloat16(new Float32Array([1e6]))[0], 0x7c00); // overflow -> inf
});
