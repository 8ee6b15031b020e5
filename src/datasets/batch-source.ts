// The contract between the data pipeline and the training loop: a source of
// preprocessed batches, reshuffled each epoch from a seed.
import type * as tf from "@tensorflow/tfjs";

export interface Batch {
  /** [n, imageSize, imageSize, 3], already preprocessed (caffe) unless the model does it. */
  xs: tf.Tensor4D;
  /** [n, classes] one-hot. */
  ys: tf.Tensor2D;
}

export interface BatchSource {
  /** Number of examples. */
  readonly size: number;
  readonly batchSize: number;
  /** ceil(size / batchSize). */
  readonly batchCount: number;
  /**
   * The batches of one epoch. The order depends only on (seed, epoch), so a
   * resumed job sees the same order. The consumer disposes each batch's tensors.
   */
  batches(epoch: number): AsyncIterable<Batch>;
}
