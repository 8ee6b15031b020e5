// The one record of a finished epoch: what train() reports, what checkpoints,
// job records, SSE events and saved models carry, and what early stopping reads.
/** One finished epoch; `epoch` is 1-based (the n-th epoch of the job), as Keras' progress shows it. */
export interface EpochMetrics {
  epoch: number;
  /** Means over the epoch's training batches, in training mode (dropout on), as Keras reports them. */
  loss: number;
  accuracy: number;
  /** On the validation source in inference mode; null without validation data. */
  valLoss: number | null;
  valAccuracy: number | null;
  /** Wall time of the epoch, validation included. */
  seconds: number;
  /** Training images per second, validation excluded. */
  imagesPerSecond: number;
}
