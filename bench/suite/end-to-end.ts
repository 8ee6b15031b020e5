// The tutorial's job end to end, with the frozen-trunk feature cache on (its
// features computed by each engine) and off (the trunk on ONNX Runtime every
// batch): decode the dataset's PNG files into the decoded-image table, split,
// build the model, then every epoch with validation, i.e. everything a worker
// does for the job except queue overhead; then the same job by the peers in
// bench/peers/, with the ratio.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { BackendName } from "../../src/backend/select-backend.js";
import type { EngineName } from "../../src/engine/engine.js";
import type { BatchSource, ModelInputs } from "../../src/datasets/batch-source.js";
import type { DatasetIndex } from "../../src/datasets/dataset-store.js";
import { decodeResizeRgb, rgbToTensor } from "../../src/datasets/image-decode.js";
import { rowBatchSource } from "../../src/datasets/row-batch-source.js";
import { splitIndex } from "../../src/datasets/split.js";
import { preprocessInput } from "../../src/network/preprocess.js";
import { buildTransferModel, type TransferModelOptions } from "../../src/network/transfer-model.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { prepareCachedTrunk } from "../../src/training/cached-trunk.js";
import { prepareStreamedTrunk } from "../../src/training/streamed-trunk.js";
import { train } from "../../src/training/train.js";
import { makeImage } from "../../test/helpers/dataset-archives.js";
import { timeSeconds } from "../bench-report.js";
import { HEAD, type Figure, type SuiteOptions } from "./figure.js";
import { runPeers } from "./peers.js";

const CLASSES = ["a", "b", "c", "d"];
const PER_CLASS = 50;
const JOB = { unfrozenLayers: 10, batchSize: 32, validationSplit: 0.2, learningRate: 1e-4, seed: 1 };

interface Dataset {
  files: string[];
  index: DatasetIndex;
}

/** 200 PNG files, 4 classes, at the job's image size (not timed: they exist before the job). */
async function writeDataset(dir: string, imageSize: number): Promise<Dataset> {
  const files: string[] = [];
  const images: DatasetIndex["images"] = [];
  for (const [c, cls] of CLASSES.entries()) {
    for (let i = 0; i < PER_CLASS; i++) {
      const file = path.join(dir, `${cls}-${i}.png`);
      await fs.writeFile(file, await makeImage(c * 1000 + i + 1, "png", imageSize));
      files.push(file);
      images.push({ file: path.basename(file), class: cls, subset: null, path: path.basename(file), sha256: "" });
    }
  }
  return { files, index: { images } };
}

/** One run of the job; returns the accuracy of its last epoch as a sanity figure. */
async function runJob(
  dataset: Dataset,
  imageSize: number,
  epochs: number,
  engine: EngineName,
  cache: boolean,
  backend: string,
  workDir: string,
): Promise<number> {
  const rowBytes = imageSize * imageSize * 3;
  const table = Buffer.alloc(dataset.files.length * rowBytes);
  for (const [row, file] of dataset.files.entries()) (await decodeResizeRgb(file, imageSize)).copy(table, row * rowBytes);
  const readRows = (rows: number[]) => {
    const out = new Uint8Array(rows.length * rowBytes);
    rows.forEach((r, i) => {
      out.set(table.subarray(r * rowBytes, (r + 1) * rowBytes), i * rowBytes);
    });
    return out;
  };
  const split = splitIndex(dataset.index, false, CLASSES, JOB.validationSplit, JOB.seed);
  const labelOf = (rows: number[]) => rows.map((r) => CLASSES.indexOf(dataset.index.images[r].class));
  const modelOptions: TransferModelOptions = {
    imageSize,
    numClasses: CLASSES.length,
    head: HEAD,
    unfrozenLayers: JOB.unfrozenLayers,
    seed: JOB.seed,
  };
  const tm = buildTransferModel(modelOptions);
  const sources = <X extends tf.Tensor | tf.Tensor[]>(read: (rows: number[]) => Promise<X>) => ({
    train: rowBatchSource({
      rows: split.train,
      labels: labelOf(split.train),
      numClasses: CLASSES.length,
      batchSize: JOB.batchSize,
      seed: JOB.seed,
      shuffle: true,
      read,
    }),
    validation: rowBatchSource({
      rows: split.validation,
      labels: labelOf(split.validation),
      numClasses: CLASSES.length,
      batchSize: JOB.batchSize,
      seed: JOB.seed,
      shuffle: false,
      read,
    }),
  });
  try {
    const trunk = cache
      ? await prepareCachedTrunk({
          tm,
          modelOptions,
          storage: createLocalStorage(workDir),
          tenant: "bench",
          datasetId: "ds_bench",
          rows: dataset.files.length,
          readPixels: async (first, count) => table.subarray(first * rowBytes, (first + count) * rowBytes),
          dtype: "float32",
          budgetBytes: 10 * 1024 ** 3,
          backend: backend as BackendName,
          engine,
          threads: 0,
        })
      : null;
    // Cache off, as a worker with FEATURE_CACHE=off trains: the trunk runs every batch on the job's engine.
    const streamed = trunk ? null : (await prepareStreamedTrunk(tm, JOB.unfrozenLayers, imageSize, engine))!;
    let model: tf.LayersModel;
    let data: { train: BatchSource<ModelInputs>; validation: BatchSource<ModelInputs> };
    if (trunk) {
      model = trunk.tail;
      data = sources((rows) => trunk.reader.read(rows));
    } else {
      const images = sources(async (rows) => tf.tidy(() => preprocessInput(rgbToTensor(readRows(rows), rows.length, imageSize))));
      model = streamed!.tail;
      data = { train: streamed!.batches(images.train), validation: streamed!.batches(images.validation) };
    }
    // As a worker does: the job's engine runs the tail's training steps too.
    const result = await train({
      model,
      engine,
      learningRate: JOB.learningRate,
      epochs,
      train: data.train,
      validation: data.validation,
      seed: JOB.seed,
    });
    await result.stepper.dispose();
    await trunk?.close();
    await streamed?.close();
    return result.history.at(-1)?.valAccuracy ?? Number.NaN;
  } finally {
    tm.model.dispose();
  }
}

export async function endToEnd(opts: SuiteOptions): Promise<Figure[]> {
  const imageSize = opts.quick ? 64 : 224;
  const epochs = opts.quick ? 2 : 10;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rf-bench-e2e-"));
  try {
    const dataset = await writeDataset(dir, imageSize);
    const base = { backend: opts.backend, imageSize, batchSize: JOB.batchSize };
    const job = `${dataset.files.length} images, ${CLASSES.length} classes, ${epochs} epochs, unfrozenLayers ${JOB.unfrozenLayers}, validationSplit ${JOB.validationSplit}`;
    const figures: Figure[] = [];
    const seconds: Record<string, number> = {};
    for (const engine of ["tfjs", "onnxruntime"] as const) {
      const on = await timeSeconds(() => runJob(dataset, imageSize, epochs, engine, true, opts.backend, path.join(dir, `cache-${engine}`)));
      seconds[engine] = on.seconds;
      figures.push({
        section: "e2e",
        name: `tutorial job, feature cache on (${engine} trunk and steps)`,
        value: on.seconds,
        unit: "s",
        detail: `${job}; last valAccuracy ${on.value.toFixed(3)}`,
        ...base,
      });
    }
    // Cache off on ONNX Runtime only (TF.js in one wasm thread took ~10 min here, most of the bench's time).
    const off = await timeSeconds(() =>
      runJob(dataset, imageSize, epochs, "onnxruntime", false, opts.backend, path.join(dir, "cache-off")),
    );
    figures.push(
      {
        section: "e2e",
        name: "tutorial job, feature cache off (onnxruntime trunk and steps)",
        value: off.seconds,
        unit: "s",
        detail: `${job}; last valAccuracy ${off.value.toFixed(3)}`,
        ...base,
      },
      {
        section: "e2e",
        name: "tutorial job, speed-up of the cache on onnxruntime (off / on)",
        value: off.seconds / seconds.onnxruntime,
        unit: "x",
        detail: job,
        ...base,
      },
    );
    const best = Math.min(seconds.tfjs, seconds.onnxruntime);
    for (const peer of await runPeers({ dataDir: dir, imageSize, epochs, ...JOB })) {
      const peerBase = { section: "e2e" as const, backend: peer.framework, imageSize, batchSize: JOB.batchSize };
      figures.push(
        {
          ...peerBase,
          name: `tutorial job, ${peer.name}`,
          value: peer.seconds,
          unit: "s",
          detail: `${job}; full forward every epoch; last valAccuracy ${peer.valAccuracy.toFixed(3)}`,
        },
        {
          ...peerBase,
          name: `tutorial job, this service (best engine, cache on) / ${peer.name}`,
          value: best / peer.seconds,
          unit: "x",
          detail: "below 1: the service is faster",
        },
      );
    }
    return figures;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
