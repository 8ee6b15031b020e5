// The tail's training step at the tutorial's batch size (32) on cached-feature
// inputs: the ONNX graph on ONNX Runtime (every core) next to train() on TF.js
// in the same run, images/s in steady state: after two warm-up steps on ONNX
// Runtime (its first two runs plan and allocate its memory: the second still
// took three times a later one) and after one warm-up epoch on TF.js.
import os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { createOnnxTrainStep } from "../../src/engine/onnx/onnx-train-step.js";
import { splitAtFrozenBoundary } from "../../src/network/trunk-split.js";
import { buildTransferModel } from "../../src/network/transfer-model.js";
import { timeSeconds } from "../bench-report.js";
import { HEAD, type Figure, type SuiteOptions } from "./figure.js";
import { stepRate } from "./train-step.js";

const BATCH = 32;
const CLASSES = 4;
const ADAM = { learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

export async function tailStep(opts: SuiteOptions, sizes: number[]): Promise<Figure[]> {
  const figures: Figure[] = [];
  const steps = opts.quick ? 1 : 4;
  for (const imageSize of sizes) {
    for (const unfrozenLayers of [0, 10]) {
      const tm = buildTransferModel({ imageSize, numClasses: CLASSES, head: HEAD, unfrozenLayers, seed: 1 });
      const split = splitAtFrozenBoundary(tm, unfrozenLayers)!;
      // Non-negative, as the ReLU outputs the cut carries.
      const cuts = split.cut.map((c) =>
        tf.tidy(() => tf.randomUniform([BATCH, ...c.shape], 0, 2, "float32", 7).dataSync() as Float32Array),
      );
      const labels = new Float32Array(BATCH * CLASSES).map((_, i) => (i % CLASSES === Math.floor(i / CLASSES) % CLASSES ? 1 : 0));
      const base = {
        section: "tailstep" as const,
        unit: "images/s",
        imageSize,
        batchSize: BATCH,
        detail: `cut: ${split.cut.map((c) => c.layer).join(", ")}`,
      };

      const onnx = await createOnnxTrainStep(split.tail, ADAM);
      try {
        const masks = onnx.graph.dropoutMasks.map((m) => new Float32Array(BATCH * m.units).fill(1 / (1 - HEAD.dropout)));
        const batch = { cuts, labels, masks, count: BATCH };
        for (let s = 0; s < 2; s++) await onnx.step(batch);
        const { seconds } = await timeSeconds(async () => {
          for (let s = 0; s < steps; s++) await onnx.step(batch);
        });
        figures.push({
          ...base,
          name: `tail training step, onnxruntime, unfrozenLayers ${unfrozenLayers}`,
          value: (steps * BATCH) / seconds,
          backend: "onnxruntime",
          threads: os.availableParallelism(),
        });
      } finally {
        await onnx.close();
      }
      const inputs = cuts.map((values, i) => tf.tensor(values, [BATCH, ...split.cut[i].shape]));
      const tfjs = await stepRate(split.tail, inputs, steps);
      tf.dispose(inputs);
      figures.push({
        ...base,
        name: `tail training step, tfjs, unfrozenLayers ${unfrozenLayers}`,
        value: tfjs,
        backend: opts.backend,
        threads: 1,
      });
      tm.model.dispose();
    }
  }
  return figures;
}
