// The training loop of the recipe: compile (Adam, categorical cross-entropy,
// accuracy) then fit on batch sources with validation, written out by hand
// rather than model.fit so that abort, callbacks, dropout seeds and the
// optimizer state are ours to control. Same seed, data and backend give
// bit-identical weights, resumed or not (docs/training.md says what is not reproducible).
import * as tf from "@tensorflow/tfjs";
import type { BatchSource, ModelInputs } from "../datasets/batch-source.js";
import { AppError } from "../errors.js";
import type { EpochMetrics } from "./epoch-metrics.js";
import { createDropoutSeeder, type DropoutSeeder } from "./dropout-seeds.js";
import { evaluateUntilAborted } from "./evaluate.js";
import { FusedAdamOptimizer } from "../backend/wasm-speedups/index.js";
import { correctCount, createRunningMean, exampleLosses } from "./metrics.js";
import { importOptimizerState, type OptimizerState } from "./optimizer-state.js";
import { yieldToEventLoop } from "./yield.js";

export interface BatchEndInfo {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based batch within the epoch. */
  batch: number;
  batches: number;
  /** Running means over the epoch so far (what Keras' progress bar shows), measured in training mode. */
  loss: number;
  accuracy: number;
}

export interface TrainCallbacks {
  onBatchEnd?(info: BatchEndInfo): void | Promise<void>;
  /** `optimizer` is there for checkpoints (exportOptimizerState). Return "stop" to end training (early stopping). */
  onEpochEnd?(info: EpochMetrics, optimizer: tf.AdamOptimizer): void | "stop" | undefined | Promise<void | "stop" | undefined>;
}

export interface TrainOptions {
  model: tf.LayersModel;
  learningRate: number;
  /** Total epochs, as Keras' `epochs`: with initialEpoch 3 and epochs 10, epochs 3..9 run. */
  epochs: number;
  /** 0-based epoch to start at, for a resumed job. */
  initialEpoch?: number;
  train: BatchSource<ModelInputs>;
  validation?: BatchSource<ModelInputs> | null;
  /** Seeds the per-step dropout masks; the batch order is the sources' (seed, epoch) contract. */
  seed: number;
  /** Checked between batches: training stops at the next batch boundary, never inside an update. */
  signal?: AbortSignal;
  /** Adam state from a checkpoint (exportOptimizerState), to resume with the same moments and step. */
  optimizerState?: OptimizerState;
  callbacks?: TrainCallbacks;
  /** Milliseconds; replaceable in tests. */
  clock?: () => number;
}

export interface TrainResult {
  /** Epochs completed by this call (an epoch cut short by an abort does not count). */
  epochsRun: number;
  aborted: boolean;
  stoppedEarly: boolean;
  /** One entry per completed epoch, in order. */
  history: EpochMetrics[];
  /** The caller owns it: export its state if needed, then dispose it. */
  optimizer: tf.AdamOptimizer;
}

/** Keras' Adam defaults; epsilon fixed rather than tfjs' backend-dependent default. */
const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } as const;

function checkOptions(opts: TrainOptions): void {
  const { learningRate, epochs, initialEpoch = 0, seed } = opts;
  const problems = [
    !(learningRate > 0 && Number.isFinite(learningRate)) && `learningRate must be a positive number, got ${learningRate}`,
    !(Number.isInteger(epochs) && epochs >= 0) && `epochs must be an integer >= 0, got ${epochs}`,
    !(Number.isInteger(initialEpoch) && initialEpoch >= 0 && initialEpoch <= epochs) && `initialEpoch must be an integer in [0, epochs], got ${initialEpoch}`,
    !Number.isInteger(seed) && `seed must be an integer, got ${seed}`,
    opts.model.trainableWeights.length === 0 && "the model has no trainable weights",
  ].filter((p): p is string => typeof p === "string");
  if (problems.length > 0) throw new AppError("INVALID_TRAINING_OPTIONS", problems.join("; "), { problems });
}

interface EpochTotals {
  loss: number;
  accuracy: number;
  images: number;
}

/** One epoch of optimizer steps; null when the signal fired. */
async function trainEpoch(
  model: tf.LayersModel,
  optimizer: tf.AdamOptimizer,
  source: BatchSource<ModelInputs>,
  epoch: number,
  seeder: DropoutSeeder,
  opts: TrainOptions,
): Promise<EpochTotals | null> {
  // The same variables, in the same order, at every step: Adam pairs its moments with them by position.
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const loss = createRunningMean();
  const accuracy = createRunningMean();
  let batch = 0;
  for await (const { xs, ys } of source.batches(epoch)) {
    const n = ys.shape[0];
    try {
      seeder.seedStep(epoch, batch);
      let correct: tf.Scalar | undefined;
      let outputSum: tf.Scalar | undefined;
      const cost = optimizer.minimize(
        () => {
          const output = model.apply(xs, { training: true }) as tf.Tensor;
          correct = tf.keep(correctCount(ys, output));
          outputSum = tf.keep(tf.sum<tf.Scalar>(output));
          // Regularisation penalties join the loss, as in Keras (ResNet-50 itself has none).
          return model.calculateLosses().reduce<tf.Scalar>((total, penalty) => tf.add(total, penalty), tf.mean(exampleLosses(ys, output)));
        },
        true,
        variables,
      ) as tf.Scalar;
      // The loss clips probabilities, which on wasm turns NaN outputs into a finite loss; TensorFlow's
      // clip keeps NaN, so Keras would report NaN: so do we (and the caller can stop, as TerminateOnNaN does).
      const finite = Number.isFinite((await outputSum!.data())[0]);
      loss.add(finite ? (await cost.data())[0] : Number.NaN, n);
      accuracy.add((await correct!.data())[0] / n, n);
      tf.dispose([cost, correct!, outputSum!]);
    } finally {
      tf.dispose([xs, ys]);
    }
    await opts.callbacks?.onBatchEnd?.({ epoch, batch, batches: source.batchCount, loss: loss.value, accuracy: accuracy.value });
    batch += 1;
    await yieldToEventLoop();
    if (opts.signal?.aborted) return null;
  }
  return { loss: loss.value, accuracy: accuracy.value, images: loss.count };
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  checkOptions(opts);
  const { model, epochs, initialEpoch = 0, signal } = opts;
  const clock = opts.clock ?? (() => performance.now());
  const optimizer = new FusedAdamOptimizer(opts.learningRate, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
  // Compiling records the recipe on the model (and in a saved Keras file); the loop below does the fitting.
  model.compile({ optimizer, loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  const seeder = createDropoutSeeder(model, opts.seed);
  const history: EpochMetrics[] = [];
  let aborted = false;
  let stoppedEarly = false;
  try {
    if (opts.optimizerState) await importOptimizerState(optimizer, model, opts.optimizerState);
    for (let epoch = initialEpoch; epoch < epochs; epoch++) {
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      const start = clock();
      const totals = await trainEpoch(model, optimizer, opts.train, epoch, seeder, opts);
      const trainSeconds = (clock() - start) / 1000;
      const validation = totals && opts.validation ? await evaluateUntilAborted(model, opts.validation, signal) : undefined;
      if (totals === null || validation === null) {
        aborted = true;
        break;
      }
      const metrics: EpochMetrics = {
        epoch: epoch + 1,
        loss: totals.loss,
        accuracy: totals.accuracy,
        valLoss: validation ? validation.loss : null,
        valAccuracy: validation ? validation.accuracy : null,
        seconds: (clock() - start) / 1000,
        imagesPerSecond: trainSeconds > 0 ? totals.images / trainSeconds : 0,
      };
      history.push(metrics);
      if ((await opts.callbacks?.onEpochEnd?.(metrics, optimizer)) === "stop") {
        stoppedEarly = true;
        break;
      }
    }
  } catch (error) {
    // Nobody else can free it: the result that would hand it over is not coming.
    optimizer.dispose();
    throw error;
  } finally {
    seeder.restore();
  }
  return { epochsRun: history.length, aborted, stoppedEarly, history, optimizer };
}
