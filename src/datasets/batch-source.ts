// The contract between the data pipeline and the training loop: a source of
// preprocessed batches, reshuffled each epoch from a seed.
import type * as tf from "@tensorflow/tfjs";

/** What a model takes: one tensor, or one per input for a model with several (the tail behind a frozen-trunk cut). */
export type ModelInputs = tf.Tensor | tf.Tensor[];

export interface Batch<X extends ModelInputs = tf.Tensor4D> {
  /** By default images [n, imageSize, imageSize, 3], already preprocessed (caffe). */
  xs: X;
  /** [n, classes] one-hot. */
  ys: tf.Tensor2D;
}

export interface BatchSource<X extends ModelInputs = tf.Tensor4D> {
  /** Number of examples. */
  readonly size: number;
  readonly batchSize: number;
  /** ceil(size / batchSize). */
  readonly batchCount: number;
  /**
   * The batches of one epoch. The order depends only on (seed, epoch), so a
   * resumed job sees the same order. The consumer disposes each batch's tensors.
   */
  batches(epoch: number): AsyncIterable<Batch<X>>;
}
