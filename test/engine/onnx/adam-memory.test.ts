import assert from "node:assert/strict";
import test from "node:test";
import { adamInPlace, adamStep } from "../../../src/engine/onnx/adam-in-place.js";
import { allocateAdamMemory } from "../../../src/engine/onnx/adam-memory.js";

const ADAM = { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31 - 0.5;
  };
}

test("the wasm Adam kernel updates weights and moments as the JS update does, SIMD lanes and the scalar rest alike", () => {
  // Lengths that leave 0, 1, 2 and 3 values after the last group of four, and a weight without gradient.
  const weights = [
    { length: 1024, hasGradient: true },
    { length: 13, hasGradient: true },
    { length: 6, hasGradient: false },
    { length: 3, hasGradient: true },
    { length: 4099, hasGradient: true },
  ];
  const memory = allocateAdamMemory(weights);
  assert.equal(memory.kernel, "wasm");
  const random = seeded(3);
  const reference = memory.arrays.map((a) => {
    for (const array of [a.weight, a.m, a.v, a.gradient]) if (array) for (let i = 0; i < array.length; i++) array[i] = random();
    for (let i = 0; i < a.v.length; i++) a.v[i] = Math.abs(a.v[i]) * 1e-3;
    return { initial: a.weight.slice(), weight: a.weight.slice(), m: a.m.slice(), v: a.v.slice(), gradient: a.gradient?.slice() ?? null };
  });
  for (let t = 1; t <= 3; t++) {
    const c = adamStep(ADAM, 1 - ADAM.beta1 ** t, 1 - ADAM.beta2 ** t);
    memory.step(c);
    for (const r of reference) adamInPlace(r.weight, r.m, r.v, r.gradient, c);
  }
  memory.arrays.forEach((a, i) => {
    const r = reference[i];
    for (const [name, got, want] of [
      ["weight", a.weight, r.weight],
      ["m", a.m, r.m],
      ["v", a.v, r.v],
    ] as const) {
      for (let j = 0; j < want.length; j++) {
        // float32 steps against float64 ones, on values of magnitude <= 0.5 (a moment can cancel to near 0).
        assert.ok(Math.abs(got[j] - want[j]) <= 1e-6 + 1e-5 * Math.abs(want[j]), `weight ${i} ${name}[${j}]: ${got[j]} vs ${want[j]}`);
      }
    }
    // The steps moved the weights (so the comparison above is not between two untouched copies).
    assert.ok(
      a.weight.every((w, j) => w !== r.initial[j]),
      `weight ${i} did not move`,
    );
  });
  // The arrays do not overlap: each keeps its own values.
  const first = memory.arrays[0];
  first.m.fill(7);
  assert.ok(!first.weight.includes(7) && !first.v.includes(7) && !first.gradient!.includes(7));
});
