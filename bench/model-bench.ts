// npm run bench:model: forward and training-step throughput (images/s) of the
// ResNet-50 base on the backend TFJS_BACKEND selects. A benchmark, not a test.
//   npm run bench:model -- --sizes 64,224 --batch 8 --steps 3
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../src/backend/select-backend.js";
import { installTrainingSpeedups } from "../src/backend/wasm-speedups/index.js";
import { loadConfig } from "../src/config.js";
import { buildResNet50 } from "../src/network/resnet50.js";
import { machineInfo, medianSeconds, printReport } from "./bench-report.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "64,224" },
    batch: { type: "string", default: "8" },
    steps: { type: "string", default: "3" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const batchSize = Number(values.batch);
const steps = Number(values.steps);
const CLASSES = 10;

const config = loadConfig();
const backend = await selectBackend(config.tfjsBackend);
await installTrainingSpeedups(backend.name, { gradientThread: config.gradientThread }); // it measures training steps

/** The base with a small head, every layer trainable: the most a fine-tune step can cost. */
function benchModel(imageSize: number): tf.LayersModel {
  const base = buildResNet50({ imageSize, seed: 1 });
  const pooled = tf.layers.globalAveragePooling2d({}).apply(base.outputs[0]) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: CLASSES, activation: "softmax" }).apply(pooled) as tf.SymbolicTensor;
  const model = tf.model({ inputs: base.inputs, outputs: output });
  model.compile({ optimizer: tf.train.adam(1e-4), loss: "categoricalCrossentropy" });
  return model;
}

const rows: Record<string, string | number>[] = [];
for (const imageSize of sizes) {
  const model = benchModel(imageSize);
  const x = tf.randomUniform([batchSize, imageSize, imageSize, 3], -120, 150);
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batchSize }, (_, i) => i % CLASSES),
      "int32",
    ),
    CLASSES,
  );
  const forward = await medianSeconds(steps, async () => {
    const out = model.predict(x, { batchSize }) as tf.Tensor;
    await out.data();
    out.dispose();
  });
  const train = await medianSeconds(steps, async () => {
    await model.trainOnBatch(x, y);
  });
  rows.push({
    backend: backend.name,
    imageSize,
    batchSize,
    "forward img/s": (batchSize / forward).toFixed(2),
    "train step img/s": (batchSize / train).toFixed(2),
    "train step s": train.toFixed(2),
  });
  tf.dispose([x, y]);
  model.dispose();
}

printReport(
  machineInfo(),
  [`median of ${steps} runs after one warm-up; training = Adam step of the whole base plus a ${CLASSES}-class head`],
  rows,
);
