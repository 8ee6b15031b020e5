// Helpers for comparing what two tfjs backends compute on the same data, and
// for setting up the backend as a training process has it.
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../../src/backend/select-backend.js";
import { installTrainingSpeedups, type TrainingSpeedups } from "../../src/backend/wasm-speedups/index.js";

/** wasm as a training process has it: selected, with the training speed-ups installed (no helper thread unless started). */
export async function selectTrainingWasm(): Promise<TrainingSpeedups> {
  const info = await selectBackend("wasm");
  return installTrainingSpeedups(info.name, { gradientThread: false });
}

/** Runs fn with `name` as the active tfjs backend, then restores the previous one. */
export async function onBackend<T>(name: "wasm" | "cpu", fn: () => T | Promise<T>): Promise<T> {
  const previous = tf.getBackend();
  await tf.setBackend(name);
  try {
    return await fn();
  } finally {
    await tf.setBackend(previous);
  }
}

/** Deterministic values in [-1, 1) (mulberry32), so both backends get identical inputs. */
export function seededValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * max|actual - expected| / max|expected|: the error relative to the tensor's
 * scale, so elements that are near zero in both do not blow it up. `floor`
 * bounds the scale from below for tensors that are mathematically zero.
 */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 0): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale === 0 ? diff : diff / scale;
}
