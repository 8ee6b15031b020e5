// Inference-mode evaluation of a model on a batch source: the validation pass
// of each epoch and the final report's predictions.
import * as tf from "@tensorflow/tfjs";
import type { BatchSource, ModelInputs } from "../datasets/batch-source.js";
import { correctCount, exampleLosses } from "./loss-metrics.js";
import { yieldToEventLoop } from "./yield.js";

export interface Evaluation {
  /** Mean categorical cross-entropy over all examples. */
  loss: number;
  accuracy: number;
  /** Predicted class index (argmax) per example, in the source's order. */
  predictions: number[];
  /** Labelled class index per example, same order. */
  labels: number[];
}

/** Evaluates with training=false; returns null when `signal` fires (checked between batches). */
export async function evaluateUntilAborted(
  model: tf.LayersModel,
  source: BatchSource<ModelInputs>,
  signal?: AbortSignal,
): Promise<Evaluation | null> {
  let lossSum = 0;
  let correct = 0;
  const predictions: number[] = [];
  const labels: number[] = [];
  // Any fixed order will do: the metrics do not depend on it.
  for await (const { xs, ys } of source.batches(0)) {
    try {
      const [loss, hits, predicted, labelled] = tf.tidy(() => {
        const output = model.apply(xs, { training: false }) as tf.Tensor;
        return [tf.sum(exampleLosses(ys, output)), correctCount(ys, output), tf.argMax(output, -1), tf.argMax(ys, -1)];
      });
      lossSum += (await loss.data())[0];
      correct += (await hits.data())[0];
      predictions.push(...(await predicted.data()));
      labels.push(...(await labelled.data()));
      tf.dispose([loss, hits, predicted, labelled]);
    } finally {
      tf.dispose([xs, ys]);
    }
    await yieldToEventLoop();
    if (signal?.aborted) return null;
  }
  const count = labels.length;
  return { loss: lossSum / count, accuracy: correct / count, predictions, labels };
}

export async function evaluate(model: tf.LayersModel, source: BatchSource<ModelInputs>): Promise<Evaluation> {
  return (await evaluateUntilAborted(model, source)) as Evaluation;
}
