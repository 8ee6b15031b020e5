// Runs the frozen trunk on every core: the wasm and cpu backends use one
// thread each, so a pool of worker_threads, each with its own backend and a
// copy of the trunk's weights, computes chunks of images in parallel.
import os from "node:os";
import type { Worker } from "node:worker_threads";
import type * as tf from "@tensorflow/tfjs";
import { startModuleThread, threadReady } from "../backend/module-thread.js";
import type { BackendName } from "../backend/select-backend.js";
import type { TransferModelOptions } from "../network/transfer-model.js";
import { computeTrunkFeatures } from "./trunk-features.js";

export interface TrunkRunner {
  /** Features of `count` images (uint8 RGB rows), one array per cut tensor. */
  run(pixels: Uint8Array, count: number): Promise<Float32Array[]>;
  /** How many chunks are worth keeping in flight. */
  readonly parallelism: number;
  close(): Promise<void>;
}

/** What a pool thread needs to rebuild the trunk: the model options and the trunk's weights. */
export interface TrunkThreadInit {
  backend: BackendName;
  model: TransferModelOptions;
  weights: { shape: number[]; values: Float32Array }[];
}

/** Native backends already use every core; a pool only pays on the single-threaded ones. */
export function poolThreads(backend: BackendName, requested: number): number {
  if (backend !== "wasm" && backend !== "cpu") return 0;
  return requested > 0 ? requested : os.availableParallelism();
}

export function inProcessRunner(trunk: tf.LayersModel, imageSize: number): TrunkRunner {
  return {
    run: (pixels, count) => computeTrunkFeatures(trunk, pixels, count, imageSize),
    parallelism: 1,
    close: async () => {},
  };
}

interface Pending {
  resolve(features: Float32Array[]): void;
  reject(error: Error): void;
}

/** Starts `threads` threads and waits until each has built its trunk. */
export async function createTrunkPool(threads: number, init: TrunkThreadInit): Promise<TrunkRunner> {
  const workers: { worker: Worker; queue: Pending[] }[] = [];
  let next = 0;
  let closed = false;
  try {
    for (let i = 0; i < threads; i++) {
      const worker = startModuleThread(import.meta.url, "trunk-thread", init);
      const slot = { worker, queue: [] as Pending[] };
      workers.push(slot);
      await threadReady(worker);
      // Threads answer in the order they were asked: the oldest pending chunk gets each result.
      worker.on("message", (m: { features?: Float32Array[]; error?: string }) => {
        const pending = slot.queue.shift();
        if (m.error) pending?.reject(new Error(m.error));
        else pending?.resolve(m.features!);
      });
      worker.on("error", (error) => {
        for (const p of slot.queue.splice(0)) p.reject(error);
      });
      worker.on("exit", (code) => {
        if (closed) return;
        for (const p of slot.queue.splice(0)) p.reject(new Error(`trunk thread exited with code ${code}`));
      });
    }
  } catch (error) {
    await Promise.all(workers.map((w) => w.worker.terminate()));
    throw error;
  }
  return {
    parallelism: threads,
    run(pixels, count) {
      const slot = workers[next++ % workers.length];
      return new Promise((resolve, reject) => {
        slot.queue.push({ resolve, reject });
        const copy = new Uint8Array(pixels);
        slot.worker.postMessage({ pixels: copy, count }, [copy.buffer]);
      });
    },
    async close() {
      closed = true;
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
