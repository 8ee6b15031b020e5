// What every benchmark prints and records: the machine it ran on, median
// timings after a warm-up, and a table of figures.
import os from "node:os";
import * as tf from "@tensorflow/tfjs";

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  tfjs: string;
  backend: string;
  /** wasm only: SIMD and threads as tfjs detected them. */
  wasmSimd?: boolean;
  wasmThreads?: boolean;
}

/** Call after selectBackend. */
export function machineInfo(): Machine {
  const cpus = os.cpus();
  const backend = tf.getBackend();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown CPU",
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    tfjs: tf.version.tfjs,
    backend,
    ...(backend === "wasm"
      ? { wasmSimd: tf.env().getBool("WASM_HAS_SIMD_SUPPORT"), wasmThreads: tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT") }
      : {}),
  };
}

export function describeMachine(m: Machine): string {
  const wasm =
    m.wasmSimd === undefined ? "" : `; wasm simd ${m.wasmSimd}, threads ${m.wasmThreads ? "on" : "off (single-threaded under Node)"}`;
  return `machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, node ${m.node}, tfjs ${m.tfjs}, backend ${m.backend}${wasm}`;
}

/** Median seconds of `runs` timed runs after one untimed warm-up (kernel set-up, heap growth). */
export async function medianSeconds(runs: number, run: () => Promise<void>): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await run();
    times.push((performance.now() - start) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

/** Seconds `run` takes, once. */
export async function timeSeconds<T>(run: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const start = performance.now();
  const value = await run();
  return { seconds: (performance.now() - start) / 1000, value };
}

export function printReport(machine: Machine, notes: string[], rows: Record<string, string | number>[]): void {
  console.log(describeMachine(machine));
  for (const note of notes) console.log(note);
  console.table(rows);
}
