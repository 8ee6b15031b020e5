// Dropout masks drawn in JS for an engine that takes them as inputs (the ONNX
// training step): one per Dropout layer and step, from a generator keyed by
// (job seed, epoch, batch, layer index), so two runs or a resumed run of a job
// draw the same masks. Kept elements are scaled by 1 / (1 - rate), as tf.dropout.
import { createRandom, mixSeed } from "../datasets/seeded-random.js";

export interface MaskedLayer {
  /** Elements per example. */
  units: number;
  /** Fraction of elements dropped, in [0, 1). */
  rate: number;
}

export function dropoutMasks(layers: readonly MaskedLayer[], count: number, seed: number, epoch: number, batch: number): Float32Array[] {
  return layers.map(({ units, rate }, index) => {
    const mask = new Float32Array(count * units);
    if (!(rate > 0)) return mask.fill(1);
    const kept = Math.fround(1 / (1 - rate));
    const random = createRandom(mixSeed(seed, epoch, batch, index));
    for (let i = 0; i < mask.length; i++) mask[i] = random() < rate ? 0 : kept;
    return mask;
  });
}
