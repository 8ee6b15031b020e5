// Data augmentation of the training batches, as Keras' RandomFlip("horizontal"),
// RandomRotation(rotate) and RandomZoom(zoom) layers do it: one random
// projective transform per image, drawn from (seed, epoch, batch) so a resumed
// epoch sees the same images. Validation data is never augmented.
import * as tf from "@tensorflow/tfjs";
import type { Batch, BatchSource } from "../datasets/batch-source.js";
import type { AugmentationSpec } from "../jobs/job-spec.js";
import { createRandom, mixSeed } from "../datasets/seeded-random.js";

/** Tags this use of the job seed so augmentation draws differ from the shuffling and dropout streams. */
const AUGMENTATION_STREAM = 0x61756721;

/**
 * The 8 parameters of tf.image.transform mapping an output pixel to the input
 * pixel it samples: around the image centre, flip x, rotate by `angle`
 * radians, and scale by `scale` (> 1 shows more of the image: zoom out).
 */
export function transformFor(size: number, flip: boolean, angle: number, scale: number): number[] {
  const c = (size - 1) / 2;
  const f = flip ? -1 : 1;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const m00 = scale * f * cos;
  const m01 = -scale * sin;
  const m10 = scale * f * sin;
  const m11 = scale * cos;
  return [m00, m01, c - (m00 * c + m01 * c), m10, m11, c - (m10 * c + m11 * c), 0, 0];
}

export function isIdentityAugmentation(spec: AugmentationSpec | null): boolean {
  return spec === null || (!spec.flip && spec.rotate === 0 && spec.zoom === 0);
}

/** A source yielding `source`'s batches with each image randomly flipped, rotated and zoomed. */
export function augmentBatches(source: BatchSource, spec: AugmentationSpec, seed: number): BatchSource {
  return {
    size: source.size,
    batchSize: source.batchSize,
    batchCount: source.batchCount,
    async *batches(epoch: number): AsyncIterable<Batch> {
      let batch = 0;
      for await (const { xs, ys } of source.batches(epoch)) {
        const random = createRandom(mixSeed(AUGMENTATION_STREAM, seed, epoch, batch));
        const [n, size] = xs.shape;
        const params: number[] = [];
        for (let i = 0; i < n; i++) {
          const flip = spec.flip && random() < 0.5;
          // Keras: angle in [-rotate, rotate] turns, zoom factor in [-zoom, zoom] of the image extent.
          const angle = (2 * random() - 1) * spec.rotate * 2 * Math.PI;
          const scale = 1 + (2 * random() - 1) * spec.zoom;
          params.push(...transformFor(size, flip, angle, scale));
        }
        // Preprocessed pixels are centred on the ImageNet mean, so 0 fills with the mean colour.
        const augmented = tf.tidy(() => tf.image.transform(xs, tf.tensor2d(params, [n, 8]), "bilinear", "constant", 0));
        xs.dispose();
        yield { xs: augmented, ys };
        batch += 1;
      }
    },
  };
}
