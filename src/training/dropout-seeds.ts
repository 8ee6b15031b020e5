// Per-step dropout masks that are reproducible: tfjs' Dropout draws its mask
// from Math.random() when it has no seed, and the very same mask on every call
// when it has one (its `seed` goes to a fresh generator each call). Before each
// training step we give every dropout layer a seed derived from
// (job seed, epoch, batch, layer index), so masks differ from step to step
// but two runs, or a resumed run, draw the same ones.
import type * as tf from "@tensorflow/tfjs";
import { mixSeed } from "../datasets/seeded-random.js";

/** Layer classes whose call() reads `this.seed` for tf.dropout (SpatialDropout1D extends Dropout). */
const SEEDED_DROPOUT_CLASSES = new Set(["Dropout", "SpatialDropout1D"]);

type SeedableLayer = tf.layers.Layer & { seed?: number };

function dropoutLayersOf(layers: tf.layers.Layer[]): SeedableLayer[] {
  return layers.flatMap((layer) => {
    const nested = (layer as Partial<tf.LayersModel>).layers;
    if (nested) return dropoutLayersOf(nested);
    return SEEDED_DROPOUT_CLASSES.has(layer.getClassName()) ? [layer as SeedableLayer] : [];
  });
}

export interface DropoutSeeder {
  /** Seeds every dropout layer for the step (epoch, batch). */
  seedStep(epoch: number, batch: number): void;
  /** Puts back the seeds the layers had, so a saved model config is unchanged. */
  restore(): void;
}

export function createDropoutSeeder(model: tf.LayersModel, seed: number): DropoutSeeder {
  const layers = dropoutLayersOf(model.layers);
  const original = layers.map((layer) => layer.seed);
  return {
    seedStep(epoch, batch) {
      layers.forEach((layer, index) => {
        layer.seed = mixSeed(seed, epoch, batch, index);
      });
    },
    restore() {
      layers.forEach((layer, index) => {
        layer.seed = original[index];
      });
    },
  };
}
