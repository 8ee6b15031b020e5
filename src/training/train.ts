// The training loop of the recipe: compile (Adam, categorical cross-entropy,
// accuracy) then fit on batch sources with validation, written out by hand
// rather than model.fit so that abort, callbacks, dropout seeds and the
// optimizer state are ours to control. The steps run on a TailStepper (TF.js,
// or ONNX Runtime for a tail). Same seed, data, backend and engine give
// bit-identical weights, resumed or not (docs/training.md says what is not reproducible).
import * as tf from "@tensorflow/tfjs";
import type { BatchSource, ModelInputs } from "../datasets/batch-source.js";
import type { EngineName } from "../engine/engine.js";
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";
import type { EpochMetrics } from "./epoch-metrics.js";
import { createDropoutSeeder, type DropoutSeeder } from "./dropout-seeds.js";
import { createRunningMean } from "./loss-metrics.js";
import { openTailStepper } from "./open-tail-stepper.js";
import type { OptimizerState } from "./optimizer-state.js";
import type { TailStepper } from "./tail-stepper.js";
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

/** Adam's state as a checkpoint stores it, from whichever engine holds it. */
export interface OptimizerStateSource {
  exportOptimizerState(): Promise<OptimizerState>;
}

export interface TrainCallbacks {
  /** Once the engine of the steps is known (after any fallback), before the first step. */
  onStart?(info: { engine: EngineName }): void | Promise<void>;
  onBatchEnd?(info: BatchEndInfo): void | Promise<void>;
  /**
   * The model's variables hold the epoch's weights; `optimizer` is there for checkpoints.
   * Return "stop" to end training (early stopping).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a callback that returns nothing goes on; only "stop" ends training.
  onEpochEnd?(info: EpochMetrics, optimizer: OptimizerStateSource): void | "stop" | undefined | Promise<void | "stop" | undefined>;
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
  /** The engine of the steps (default tfjs); onnxruntime falls back to tfjs, logged, when the model has no ONNX training step. */
  engine?: EngineName;
  log?: Pick<Logger, "warn">;
}

export interface TrainResult {
  /** Epochs completed by this call (an epoch cut short by an abort does not count). */
  epochsRun: number;
  aborted: boolean;
  stoppedEarly: boolean;
  /** One entry per completed epoch, in order. */
  history: EpochMetrics[];
  /** The caller owns it: export its optimizer state if needed, then dispose it. The model holds the trained weights. */
  stepper: TailStepper;
}

function checkOptions(opts: TrainOptions): void {
  const { learningRate, epochs, initialEpoch = 0, seed } = opts;
  const problems = [
    !(learningRate > 0 && Number.isFinite(learningRate)) && `learningRate must be a positive number, got ${learningRate}`,
    !(Number.isInteger(epochs) && epochs >= 0) && `epochs must be an integer >= 0, got ${epochs}`,
    !(Number.isInteger(initialEpoch) && initialEpoch >= 0 && initialEpoch <= epochs) &&
      `initialEpoch must be an integer in [0, epochs], got ${initialEpoch}`,
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
  stepper: TailStepper,
  source: BatchSource<ModelInputs>,
  epoch: number,
  seeder: DropoutSeeder,
  opts: TrainOptions,
): Promise<EpochTotals | null> {
  const loss = createRunningMean();
  const accuracy = createRunningMean();
  let batch = 0;
  for await (const { xs, ys } of source.batches(epoch)) {
    const n = ys.shape[0];
    try {
      seeder.seedStep(epoch, batch);
      const outcome = await stepper.step(xs, ys, epoch, batch);
      loss.add(outcome.loss, n);
      accuracy.add(outcome.correct / n, n);
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
  const stepper = await openTailStepper({
    model,
    engine: opts.engine ?? "tfjs",
    learningRate: opts.learningRate,
    seed: opts.seed,
    log: opts.log,
  });
  const seeder = createDropoutSeeder(model, opts.seed);
  const history: EpochMetrics[] = [];
  let aborted = false;
  let stoppedEarly = false;
  try {
    if (opts.optimizerState) await stepper.importOptimizerState(opts.optimizerState);
    await opts.callbacks?.onStart?.({ engine: stepper.engine });
    for (let epoch = initialEpoch; epoch < epochs; epoch++) {
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      const start = clock();
      const totals = await trainEpoch(stepper, opts.train, epoch, seeder, opts);
      const trainSeconds = (clock() - start) / 1000;
      const validation = totals && opts.validation ? await stepper.evaluate(opts.validation, signal) : undefined;
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
      stepper.syncWeights();
      if ((await opts.callbacks?.onEpochEnd?.(metrics, stepper)) === "stop") {
        stoppedEarly = true;
        break;
      }
    }
  } catch (error) {
    // Nobody else can free it: the result that would hand it over is not coming.
    await stepper.dispose();
    throw error;
  } finally {
    seeder.restore();
  }
  // An epoch cut short by an abort still moved the weights: the model holds them, as on TF.js.
  stepper.syncWeights();
  return { epochsRun: history.length, aborted, stoppedEarly, history, stepper };
}
