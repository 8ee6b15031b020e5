// A BatchSource over rows of a stored table (decoded images, or cached trunk
// features): the epoch's order is a pure function of (seed, epoch), and the
// next batches are read while the current one trains (bounded prefetch), so
// training never waits on storage.
import * as tf from "@tensorflow/tfjs";
import { mixSeed, shuffledIndices } from "./seeded-random.js";
import type { Batch, BatchSource, ModelInputs } from "./batch-source.js";

export interface RowBatchSourceOptions<X extends ModelInputs> {
  /** Table rows of the examples, and each one's class index in the job's class order. */
  rows: number[];
  labels: number[];
  numClasses: number;
  batchSize: number;
  seed: number;
  /** Training data is reshuffled every epoch; validation data keeps its order. */
  shuffle: boolean;
  /** Reads the given table rows, in that order, as model inputs. */
  read(rows: number[]): Promise<X>;
  /** Batches read ahead of the one being consumed. */
  prefetch?: number;
}

/** The order of examples (positions in `rows`) in one epoch. */
export function epochOrder(size: number, seed: number, epoch: number, shuffle: boolean): number[] {
  return shuffle ? shuffledIndices(size, mixSeed(seed, epoch)) : Array.from({ length: size }, (_, i) => i);
}

export function rowBatchSource<X extends ModelInputs>(opts: RowBatchSourceOptions<X>): BatchSource<X> {
  const { rows, labels, numClasses, batchSize, seed, shuffle } = opts;
  if (rows.length !== labels.length) throw new Error(`rows (${rows.length}) and labels (${labels.length}) differ in length`);
  const size = rows.length;
  const batchCount = Math.ceil(size / batchSize);
  const prefetch = Math.max(0, opts.prefetch ?? 2);

  async function readBatch(positions: number[]): Promise<Batch<X>> {
    const xs = await opts.read(positions.map((p) => rows[p]));
    const ys = tf.tidy(() =>
      tf
        .oneHot(
          tf.tensor1d(
            positions.map((p) => labels[p]),
            "int32",
          ),
          numClasses,
        )
        .toFloat(),
    ) as tf.Tensor2D;
    return { xs, ys };
  }

  return {
    size,
    batchSize,
    batchCount,
    async *batches(epoch) {
      const order = epochOrder(size, seed, epoch, shuffle);
      const slices = Array.from({ length: batchCount }, (_, b) => order.slice(b * batchSize, (b + 1) * batchSize));
      const ahead: Promise<Batch<X>>[] = [];
      let next = 0;
      const fill = () => {
        while (next < slices.length && ahead.length <= prefetch) ahead.push(readBatch(slices[next++]));
      };
      try {
        fill();
        while (ahead.length > 0) {
          const batch = await ahead.shift()!;
          fill();
          yield batch;
        }
      } finally {
        // The consumer stopped early (abort): dispose what was read ahead.
        for (const pending of ahead.splice(0))
          pending.then(
            (b) => tf.dispose([b.xs, b.ys]),
            () => {},
          );
      }
    },
  };
}
