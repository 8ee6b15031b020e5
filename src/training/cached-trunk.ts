// Puts the frozen-trunk feature cache in front of training: split the model,
// make sure the dataset's features for this trunk are stored (computing them on
// every core if not), and hand back the tail model to train and a reader of the
// features. The full model's layers are the tail's, so checkpoints and the
// final model stay whole models.
import type * as tf from "@tensorflow/tfjs";
import type { BackendName } from "../backend/select-backend.js";
import type { EngineName } from "../engine/engine.js";
import { createOnnxTrunk } from "../engine/onnx/onnx-trunk.js";
import { splitAtFrozenBoundary, type CutTensor } from "../network/trunk-split.js";
import type { TransferModel, TransferModelOptions } from "../network/transfer-model.js";
import type { Storage } from "../storage/storage.js";
import type { Logger } from "../log.js";
import { ensureFeatureCache, trunkFingerprint, type FeatureCache, type FeatureDtype, type FeatureReader } from "./feature-cache.js";
import { createTrunkPool, inProcessRunner, poolThreads, type TrunkRunner } from "./trunk-pool.js";

export interface CachedTrunkOptions {
  tm: TransferModel;
  /** The options tm was built with: pool threads rebuild the same trunk from them. */
  modelOptions: TransferModelOptions;
  storage: Storage;
  tenant: string;
  datasetId: string;
  /** Rows of the decoded-image table (the dataset index). */
  rows: number;
  readPixels(first: number, count: number): Promise<Uint8Array>;
  dtype: FeatureDtype;
  budgetBytes: number;
  backend: BackendName;
  /** The engine computing the features (tfjs by default). */
  engine?: EngineName;
  /** 0 = one per core on single-threaded backends. */
  threads: number;
  log?: Logger;
}

export interface CachedTrunk {
  tail: tf.LayersModel;
  cut: CutTensor[];
  cache: FeatureCache;
  reader: FeatureReader;
  close(): Promise<void>;
}

/** null when nothing is frozen before the head (unfrozenLayers 174 or 175): train the whole model. */
export async function prepareCachedTrunk(opts: CachedTrunkOptions): Promise<CachedTrunk | null> {
  const split = splitAtFrozenBoundary(opts.tm, opts.modelOptions.unfrozenLayers);
  if (!split) return null;
  const onnx = opts.engine === "onnxruntime";
  // ONNX Runtime uses every core within one run: no pool.
  const threads = onnx ? 1 : poolThreads(opts.backend, opts.threads);
  let runner: Promise<TrunkRunner> | undefined;
  const startRunner = (): Promise<TrunkRunner> => {
    if (onnx) return createOnnxTrunk(split.trunk, opts.modelOptions.imageSize);
    if (threads > 0) {
      const weights = split.trunk.getWeights().map((w) => ({ shape: w.shape, values: w.dataSync() as Float32Array }));
      return createTrunkPool(threads, { backend: opts.backend, model: opts.modelOptions, weights });
    }
    return Promise.resolve(inProcessRunner(split.trunk, opts.modelOptions.imageSize));
  };
  const cache = await ensureFeatureCache({
    storage: opts.storage,
    identity: {
      tenant: opts.tenant,
      datasetId: opts.datasetId,
      imageSize: opts.modelOptions.imageSize,
      trunkFingerprint: trunkFingerprint(split.trunk),
      engine: onnx ? "onnxruntime" : "tfjs",
      cut: split.cut,
      dtype: opts.dtype,
    },
    rows: opts.rows,
    readPixels: opts.readPixels,
    // Started only when the features have to be computed.
    runner: {
      get parallelism() {
        return Math.max(1, threads);
      },
      async run(pixels, count) {
        runner ??= startRunner();
        return (await runner).run(pixels, count);
      },
      close: async () => {},
    },
    budgetBytes: opts.budgetBytes,
    log: opts.log,
  }).finally(async () => (await runner?.catch(() => undefined))?.close());
  const reader = await cache.open();
  return { tail: split.tail, cut: split.cut, cache, reader, close: () => reader.close() };
}
