// The last step of a training attempt: the validation report (per-class scores,
// confusion matrix, misclassified images) and the trained model saved with it.
import type * as tf from "@tensorflow/tfjs";
import { readDatasetIndex } from "../datasets/dataset-store.js";
import { evaluate } from "../training/evaluate.js";
import type { EpochMetrics } from "../training/epoch-metrics.js";
import { classificationReport, misclassifiedImages } from "../training/report.js";
import { setJobInfo } from "../jobs/job-records.js";
import { modelIdForJob, saveTrainedModel, CAFFE_PREPROCESSING } from "../trained-models/model-store.js";
import type { Attempt } from "./training-attempt.js";
import type { TrainingInputs } from "./training-inputs.js";

/** Saves `model` (the whole model) and returns its id. */
export async function finishTraining(
  attempt: Attempt,
  model: tf.LayersModel,
  inputs: TrainingInputs,
  history: EpochMetrics[],
): Promise<string> {
  const { storage, tenant, jobId, spec, data, log } = attempt;
  const report = inputs.validation ? await validationReport(attempt, inputs.model, inputs.validation) : null;
  const modelId = modelIdForJob(jobId);
  await saveTrainedModel(storage, {
    tenant,
    modelId,
    model,
    jobId,
    datasetId: spec.datasetId,
    classes: data.classes,
    imageSize: spec.imageSize,
    preprocessing: CAFFE_PREPROCESSING,
    spec,
    metrics: history[history.length - 1],
    history,
    report,
    backend: attempt.backend,
  });
  await setJobInfo(attempt.db, jobId, { modelId });
  log.info({ modelId, epochs: history.length }, "model saved");
  return modelId;
}

async function validationReport(attempt: Attempt, trained: tf.LayersModel, validation: NonNullable<TrainingInputs["validation"]>) {
  const { storage, tenant, spec, data } = attempt;
  const evaluation = await evaluate(trained, validation);
  // The validation source keeps validationExamples' row order, so example i is row rows[i] of the index.
  const index = await readDatasetIndex(storage, tenant, spec.datasetId);
  const examples = data.validationExamples.rows.map((row) => ({ index: row, path: index?.images[row]?.path ?? "" }));
  return {
    ...classificationReport(evaluation.labels, evaluation.predictions, data.classes),
    misclassified: misclassifiedImages(evaluation.labels, evaluation.predictions, examples, data.classes),
  };
}
