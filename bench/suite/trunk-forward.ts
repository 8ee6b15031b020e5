// Trunk forward images/s: the frozen trunk for unfrozenLayers 10, through
// prepareCachedTrunk's worker_threads pool (one thread per core), in this
// thread alone, and on ONNX Runtime (every core), fed uint8 pixels as the
// feature cache feeds it.
import { randomBytes } from "node:crypto";
import os from "node:os";
import { createOnnxTrunk } from "../../src/engine/onnx/onnx-trunk.js";
import type { BackendName } from "../../src/backend/select-backend.js";
import { splitAtFrozenBoundary } from "../../src/network/trunk-split.js";
import { buildTransferModel, type TransferModelOptions } from "../../src/network/transfer-model.js";
import { createTrunkPool, inProcessRunner, poolThreads, type TrunkRunner } from "../../src/training/trunk-pool.js";
import { timeSeconds } from "../bench-report.js";
import { HEAD, type Figure, type SuiteOptions } from "./figure.js";

const UNFROZEN = 10;
const BATCH = 8;

/** Images/s of `chunks` chunks of BATCH images kept `runner.parallelism` in flight, after one warm-up chunk per thread. */
async function throughput(runner: TrunkRunner, imageSize: number, chunks: number): Promise<number> {
  const pixels = randomBytes(BATCH * imageSize * imageSize * 3);
  await Promise.all(Array.from({ length: runner.parallelism }, () => runner.run(pixels, BATCH)));
  const { seconds } = await timeSeconds(() => Promise.all(Array.from({ length: chunks }, () => runner.run(pixels, BATCH))));
  return (chunks * BATCH) / seconds;
}

export async function trunkForward(opts: SuiteOptions, sizes: number[]): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const imageSize of sizes) {
    const modelOptions: TransferModelOptions = { imageSize, numClasses: 4, head: HEAD, unfrozenLayers: UNFROZEN, seed: 1 };
    const tm = buildTransferModel(modelOptions);
    const split = splitAtFrozenBoundary(tm, UNFROZEN)!;
    const base = { backend: opts.backend, imageSize, batchSize: BATCH };
    const chunksPerThread = opts.quick ? 1 : 2;

    const threads = Math.max(1, poolThreads(opts.backend as BackendName, 0));
    const started = await timeSeconds(() =>
      createTrunkPool(threads, {
        backend: opts.backend as BackendName,
        model: modelOptions,
        weights: split.trunk.getWeights().map((w) => ({ shape: w.shape, values: w.dataSync() as Float32Array })),
      }),
    );
    const pool = started.value;
    try {
      const perSecond = await throughput(pool, imageSize, threads * chunksPerThread);
      figures.push({ section: "trunk", name: "trunk forward, worker_threads pool", value: perSecond, unit: "images/s", threads, ...base });
      figures.push({
        section: "trunk",
        name: "trunk pool start (threads build their trunk)",
        value: started.seconds,
        unit: "s",
        threads,
        ...base,
      });
    } finally {
      await pool.close();
    }
    const single = await throughput(inProcessRunner(split.trunk, imageSize), imageSize, chunksPerThread);
    figures.push({ section: "trunk", name: "trunk forward, in-process", value: single, unit: "images/s", threads: 1, ...base });
    const onnx = await createOnnxTrunk(split.trunk, imageSize);
    try {
      const perSecond = await throughput(onnx, imageSize, opts.quick ? 2 : 6);
      figures.push({
        section: "trunk",
        name: "trunk forward, onnxruntime",
        value: perSecond,
        unit: "images/s",
        ...base,
        backend: "onnxruntime",
        threads: os.availableParallelism(),
      });
    } finally {
      await onnx.close();
    }
    tm.model.dispose();
  }
  return figures;
}
