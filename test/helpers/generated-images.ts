// Two visibly different classes of small RGB images (0..255), made in memory
// from a seed: "red" = a bright red square on a dark noisy background,
// "blue" = a dark-to-light blue gradient in a random direction, with noise.
import * as tf from "@tensorflow/tfjs";
import { createRandom } from "../../src/datasets/seeded-random.js";

export const TWO_CLASSES = ["blue", "red"] as const;

export interface GeneratedImages {
  /** [2 * perClass, size, size, 3], RGB 0..255, classes interleaved. */
  xs: tf.Tensor4D;
  /** One-hot in TWO_CLASSES order. */
  ys: tf.Tensor2D;
  labels: number[];
}

export function twoClassImages({ perClass, size, seed }: { perClass: number; size: number; seed: number }): GeneratedImages {
  const random = createRandom(seed);
  const noise = (amplitude: number) => (random() - 0.5) * 2 * amplitude;
  const clamp = (v: number) => Math.min(255, Math.max(0, v));
  const count = 2 * perClass;
  const pixels = new Float32Array(count * size * size * 3);
  const labels: number[] = [];
  for (let n = 0; n < count; n++) {
    const label = n % 2;
    labels.push(label);
    const side = Math.floor(size * (0.35 + 0.25 * random()));
    const top = Math.floor(random() * (size - side));
    const left = Math.floor(random() * (size - side));
    const vertical = random() < 0.5;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const at = ((n * size + y) * size + x) * 3;
        let rgb: [number, number, number];
        if (TWO_CLASSES[label] === "red") {
          const inside = y >= top && y < top + side && x >= left && x < left + side;
          rgb = inside ? [230, 30, 30] : [40, 40, 40];
        } else {
          const t = (vertical ? y : x) / (size - 1);
          rgb = [10, 20, 60 + 140 * t];
        }
        pixels[at] = clamp(rgb[0] + noise(20));
        pixels[at + 1] = clamp(rgb[1] + noise(20));
        pixels[at + 2] = clamp(rgb[2] + noise(20));
      }
    }
  }
  return {
    xs: tf.tensor4d(pixels, [count, size, size, 3]),
    ys: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), 2).toFloat()) as tf.Tensor2D,
    labels,
  };
}
