// The compiled loss and metric of the recipe (Keras `categorical_crossentropy`
// and `accuracy`), per batch, plus the running means Keras reports per epoch.
import * as tf from "@tensorflow/tfjs";

/** Per-example categorical cross-entropy exactly as Keras computes it (renormalise, clip to epsilon, -sum y log p). */
export function exampleLosses(ys: tf.Tensor, predictions: tf.Tensor): tf.Tensor1D {
  return tf.metrics.categoricalCrossentropy(ys, predictions) as tf.Tensor1D;
}

/** Number of examples whose predicted class (argmax) is the labelled one: Keras' categorical accuracy, unaveraged. */
export function correctCount(ys: tf.Tensor, predictions: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.metrics.categoricalAccuracy(ys, predictions)));
}

/** An example-weighted running mean, so a short last batch counts for what it holds. */
export interface RunningMean {
  add(batchMean: number, count: number): void;
  readonly value: number;
  readonly count: number;
}

export function createRunningMean(): RunningMean {
  let sum = 0;
  let count = 0;
  return {
    add(batchMean, n) {
      sum += batchMean * n;
      count += n;
    },
    get value() {
      return count === 0 ? Number.NaN : sum / count;
    },
    get count() {
      return count;
    },
  };
}
