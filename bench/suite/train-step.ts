// Training-step images/s through train(): the whole transfer model with
// unfrozenLayers 0, 10 and 175, and for 0 and 10 the tail alone on cached
// trunk features (what a job with the feature cache runs every epoch).
import { randomBytes } from "node:crypto";
import * as tf from "@tensorflow/tfjs";
import type { Batch, BatchSource, ModelInputs } from "../../src/datasets/batch-source.js";
import { rgbToTensor } from "../../src/datasets/image-decode.js";
import { preprocessInput } from "../../src/network/preprocess.js";
import { splitAtFrozenBoundary } from "../../src/network/trunk-split.js";
import { buildTransferModel } from "../../src/network/transfer-model.js";
import { computeTrunkFeatures } from "../../src/training/trunk-features.js";
import { train } from "../../src/training/train.js";
import { HEAD, type Figure, type SuiteOptions } from "./figure.js";

const BATCH = 8;
/** The whole model under the gradient tape at 224 px holds more activations than the 4 GiB wasm heap at batch 8. */
const WHOLE_MODEL_LARGE_BATCH = 2;
const CLASSES = 4;

/** `steps` batches per epoch, each a fresh copy of the same inputs (train() disposes what it is given). */
function repeatSource(inputs: tf.Tensor[], steps: number): BatchSource<ModelInputs> {
  const batch = inputs[0].shape[0];
  return {
    size: steps * batch,
    batchSize: batch,
    batchCount: steps,
    async *batches(): AsyncIterable<Batch<ModelInputs>> {
      for (let s = 0; s < steps; s++) {
        const xs = inputs.map((t) => t.clone());
        const ys = tf.tidy(() =>
          tf
            .oneHot(
              tf.tensor1d(
                Array.from({ length: batch }, (_, i) => i % CLASSES),
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
}

/** Images/s of the second epoch (the first one warms up kernels and the optimizer's slots). */
export async function stepRate(model: tf.LayersModel, inputs: tf.Tensor[], steps: number): Promise<number> {
  const result = await train({ model, learningRate: 1e-4, epochs: 2, train: repeatSource(inputs, steps), seed: 1 });
  await result.stepper.dispose();
  return result.history[1].imagesPerSecond;
}

export async function trainStep(opts: SuiteOptions, sizes: number[]): Promise<Figure[]> {
  const figures: Figure[] = [];
  const steps = opts.quick ? 1 : 2;
  for (const imageSize of sizes) {
    const base = { backend: opts.backend, imageSize, batchSize: BATCH };
    const pixels = randomBytes(BATCH * imageSize * imageSize * 3);
    for (const unfrozenLayers of [0, 10, 175]) {
      const tm = buildTransferModel({ imageSize, numClasses: CLASSES, head: HEAD, unfrozenLayers, seed: 1 });
      const wholeBatch = imageSize > 64 && opts.backend === "wasm" ? WHOLE_MODEL_LARGE_BATCH : BATCH;
      const images = tf.tidy(() =>
        preprocessInput(rgbToTensor(pixels.subarray(0, wholeBatch * imageSize * imageSize * 3), wholeBatch, imageSize)),
      );
      const full = await stepRate(tm.model, [images], steps);
      images.dispose();
      figures.push({
        section: "train",
        name: `training step, whole model, unfrozenLayers ${unfrozenLayers}`,
        value: full,
        unit: "images/s",
        ...base,
        batchSize: wholeBatch,
      });
      const split = splitAtFrozenBoundary(tm, unfrozenLayers);
      if (split) {
        const features = await computeTrunkFeatures(split.trunk, pixels, BATCH, imageSize);
        const inputs = features.map((f, i) => tf.tensor(f, [BATCH, ...split.cut[i].shape]));
        const tail = await stepRate(split.tail, inputs, steps);
        tf.dispose(inputs);
        figures.push({
          section: "train",
          name: `training step, tail on cached features, unfrozenLayers ${unfrozenLayers}`,
          value: tail,
          unit: "images/s",
          detail: `cut: ${split.cut.map((c) => c.layer).join(", ")}`,
          ...base,
        });
      }
      tm.model.dispose();
    }
  }
  return figures;
}
