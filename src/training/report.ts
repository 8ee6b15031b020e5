// The final report of a job: per-class precision, recall, F1 and support, and
// the confusion matrix, as scikit-learn's classification_report computes them.
import { AppError } from "../errors.js";

export interface ClassMetrics {
  class: string;
  precision: number;
  recall: number;
  f1: number;
  /** Examples whose label is this class. */
  support: number;
}

export interface AveragedMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  classes: ClassMetrics[];
  accuracy: number;
  /** Unweighted mean over classes. */
  macroAvg: AveragedMetrics;
  /** Mean over classes weighted by support. */
  weightedAvg: AveragedMetrics;
  /** confusionMatrix[label][prediction] = count; rows and columns in `classes` order. */
  confusionMatrix: number[][];
  /** Validation images the model got wrong (at most MISCLASSIFIED_LIMIT); absent in reports written before it existed. */
  misclassified?: MisclassifiedImage[];
}

/** A validation image whose prediction differs from its label. */
export interface MisclassifiedImage {
  /** Position in the dataset's index: GET /v1/datasets/{id}/images/{index}/thumbnail shows it. */
  index: number;
  /** Path inside the uploaded archive. */
  path: string;
  true: string;
  predicted: string;
}

/** Enough to look through by eye, small enough for the model record. */
export const MISCLASSIFIED_LIMIT = 100;

/** The first MISCLASSIFIED_LIMIT examples, in evaluation order, whose prediction is not their label. */
export function misclassifiedImages(
  labels: readonly number[],
  predictions: readonly number[],
  examples: readonly { index: number; path: string }[],
  classes: readonly string[],
): MisclassifiedImage[] {
  const out: MisclassifiedImage[] = [];
  for (let i = 0; i < labels.length && out.length < MISCLASSIFIED_LIMIT; i++) {
    if (labels[i] === predictions[i]) continue;
    out.push({ index: examples[i].index, path: examples[i].path, true: classes[labels[i]], predicted: classes[predictions[i]] });
  }
  return out;
}

/** 0 when the denominator is 0, as scikit-learn's default zero_division does. */
function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/** `labels` and `predictions` are class indices into `classes`, one pair per example. */
export function classificationReport(
  labels: readonly number[],
  predictions: readonly number[],
  classes: readonly string[],
): ClassificationReport {
  if (labels.length !== predictions.length) {
    throw new AppError("INTERNAL", `${labels.length} labels but ${predictions.length} predictions`);
  }
  const k = classes.length;
  const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  labels.forEach((label, i) => {
    const predicted = predictions[i];
    if (!(label >= 0 && label < k && predicted >= 0 && predicted < k)) {
      throw new AppError("INTERNAL", `example ${i}: label ${label} / prediction ${predicted} is not a class index below ${k}`);
    }
    matrix[label][predicted] += 1;
  });

  const perClass = classes.map((name, c) => {
    const truePositives = matrix[c][c];
    const predicted = matrix.reduce((sum, row) => sum + row[c], 0);
    const support = matrix[c].reduce((sum, n) => sum + n, 0);
    const precision = ratio(truePositives, predicted);
    const recall = ratio(truePositives, support);
    return { class: name, precision, recall, f1: ratio(2 * precision * recall, precision + recall), support };
  });

  const total = labels.length;
  const average = (weight: (m: ClassMetrics) => number, weights: number): AveragedMetrics => ({
    precision: ratio(
      perClass.reduce((s, m) => s + weight(m) * m.precision, 0),
      weights,
    ),
    recall: ratio(
      perClass.reduce((s, m) => s + weight(m) * m.recall, 0),
      weights,
    ),
    f1: ratio(
      perClass.reduce((s, m) => s + weight(m) * m.f1, 0),
      weights,
    ),
    support: total,
  });
  return {
    classes: perClass,
    accuracy: ratio(
      perClass.reduce((s, _m, c) => s + matrix[c][c], 0),
      total,
    ),
    macroAvg: average(() => 1, k),
    weightedAvg: average((m) => m.support, total),
    confusionMatrix: matrix,
  };
}
