// npm run bench:memory -- --size 128 --batch 8 --unfrozen 10 [--pooling flatten --units 256]:
// one training job's memory on the tfjs backend TFJS_BACKEND selects, as the
// worker runs it (the frozen trunk outside the tape, chunk by chunk; the tail
// trained with Adam for two steps), against estimateTrainingMemory(). On wasm
// it prints the heap's size after the steps (it only grows, so this is the
// high-water mark); elsewhere the process's RSS. One spec per process: the wasm
// heap never shrinks. A benchmark, not a test.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../src/backend/select-backend.js";
import { installTrainingSpeedups } from "../src/backend/wasm-speedups/index.js";
import type { Batch, BatchSource, ModelInputs } from "../src/datasets/batch-source.js";
import { loadConfig } from "../src/config.js";
import { estimateTrainingMemory, TRUNK_CHUNK } from "../src/network/memory-estimate.js";
import { buildTransferModel } from "../src/network/transfer-model.js";
import { splitAtFrozenBoundary } from "../src/network/trunk-split.js";
import { computeTrunkFeatures } from "../src/training/trunk-features.js";
import { train } from "../src/training/train.js";
import { rgbToTensor } from "../src/datasets/image-decode.js";
import { preprocessInput } from "../src/network/preprocess.js";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "64" },
    batch: { type: "string", default: "8" },
    unfrozen: { type: "string", default: "10" },
    pooling: { type: "string", default: "flatten" },
    units: { type: "string", default: "256" },
  },
});
const imageSize = Number(values.size);
const batchSize = Number(values.batch);
const unfrozenLayers = Number(values.unfrozen);
const head = { pooling: values.pooling as "flatten" | "avg", denseUnits: Number(values.units), dropout: 0.5 };
const CLASSES = 4;

const config = loadConfig();
const backend = await selectBackend(config.tfjsBackend);
await installTrainingSpeedups(backend.name, { gradientThread: config.gradientThread }); // a training job's memory, as a worker trains
const tm = buildTransferModel({ imageSize, numClasses: CLASSES, head, unfrozenLayers, seed: 1 });
const split = splitAtFrozenBoundary(tm, unfrozenLayers);
const pixels = randomBytes(batchSize * imageSize * imageSize * 3);

let inputs: tf.Tensor[];
if (split) {
  const chunks: Float32Array[][] = [];
  for (let first = 0; first < batchSize; first += TRUNK_CHUNK) {
    const count = Math.min(TRUNK_CHUNK, batchSize - first);
    chunks.push(
      await computeTrunkFeatures(
        split.trunk,
        pixels.subarray(first * imageSize * imageSize * 3, (first + count) * imageSize * imageSize * 3),
        count,
        imageSize,
      ),
    );
  }
  inputs = split.cut.map((c, i) => {
    const per = c.shape.reduce((a, b) => a * b, 1);
    const all = new Float32Array(batchSize * per);
    let offset = 0;
    for (const chunk of chunks) {
      all.set(chunk[i], offset);
      offset += chunk[i].length;
    }
    return tf.tensor(all, [batchSize, ...c.shape]);
  });
} else {
  inputs = [tf.tidy(() => preprocessInput(rgbToTensor(pixels, batchSize, imageSize)))];
}

const source: BatchSource<ModelInputs> = {
  size: 2 * batchSize,
  batchSize,
  batchCount: 2,
  async *batches(): AsyncIterable<Batch<ModelInputs>> {
    for (let s = 0; s < 2; s++) {
      const xs = inputs.map((t) => t.clone());
      const ys = tf.tidy(() =>
        tf
          .oneHot(
            tf.tensor1d(
              Array.from({ length: batchSize }, (_, i) => i % CLASSES),
              "int32",
            ),
            CLASSES,
          )
          .toFloat(),
      ) as tf.Tensor2D;
      yield { xs: (xs.length === 1 ? xs[0] : xs) as ModelInputs, ys };
    }
  },
};
const started = Date.now();
const result = await train({ model: split ? split.tail : tm.model, learningRate: 1e-4, epochs: 1, train: source, seed: 1 });
await result.stepper.dispose();

const GiB = 1024 ** 3;
const memory = (tf.backend() as unknown as { wasm?: { asm?: { memory?: WebAssembly.Memory } } }).wasm?.asm?.memory;
const measured = memory ? memory.buffer.byteLength : process.memoryUsage().rss;
const estimate = estimateTrainingMemory({ imageSize, batchSize, unfrozenLayers, numClasses: CLASSES, head });
console.log(
  JSON.stringify({
    backend: backend.name,
    imageSize,
    batchSize,
    unfrozenLayers,
    head: `${head.pooling}/${head.denseUnits}`,
    measured: memory ? "wasm heap" : "rss",
    measuredGiB: +(measured / GiB).toFixed(3),
    estimateGiB: +(estimate.totalBytes / GiB).toFixed(3),
    ratio: +(estimate.totalBytes / measured).toFixed(2),
    trainSeconds: (Date.now() - started) / 1000,
  }),
);
