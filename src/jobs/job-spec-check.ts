// POST /v1/jobs checks against the world what the schema cannot: the dataset
// (the tenant's; a stored dataset is always ready), the classes, the split, the base weights.
import fs from "node:fs/promises";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { getDataset } from "../datasets/dataset-store.js";
import { splitCounts } from "../datasets/split.js";
import { MIN_CLASSES } from "../datasets/dataset-ingest.js";
import { getWeights } from "../base-weights/weights-store.js";
import { isBuiltinWeights, MAX_BATCH_SIZE, type JobSpec } from "./job-spec.js";
import { estimateTrainingMemory, largestThatFit } from "../network/memory-estimate.js";
import { IMAGENET_WEIGHTS_FILE } from "../weight-files/index.js";
import { checkWebhookUrl } from "../webhooks/webhook-address.js";

/** A job whose training cannot fit in a worker would kill the worker on every attempt: refused here. */
export function checkJobFits(spec: JobSpec, numClasses: number, budgetBytes: number): void {
  const memorySpec = { ...spec, numClasses };
  const estimate = estimateTrainingMemory(memorySpec);
  if (estimate.totalBytes <= budgetBytes) return;
  const { largestBatchSize, largestImageSize } = largestThatFit(memorySpec, budgetBytes, MAX_BATCH_SIZE);
  throw new AppError(
    "JOB_TOO_LARGE",
    `training this spec takes about ${gib(estimate.totalBytes)} GiB, more than a worker's ${gib(budgetBytes)} GiB (WORKER_MEMORY_BYTES): ` +
      `at imageSize ${spec.imageSize} the largest batchSize that fits is ${largestBatchSize}, at batchSize ${spec.batchSize} the largest imageSize is ${largestImageSize}`,
    { estimateBytes: estimate.totalBytes, budgetBytes, largestBatchSize, largestImageSize },
  );
}

function gib(bytes: number): string {
  return (bytes / 1024 ** 3).toFixed(2);
}

export async function checkJobSpec(
  spec: JobSpec,
  tenant: string,
  deps: { storage: Storage; config: Pick<Config, "imagenetWeights" | "workerMemoryBytes" | "webhookAllowPrivate"> },
): Promise<void> {
  if (spec.webhook) await checkWebhookUrl(spec.webhook.url, deps.config.webhookAllowPrivate);
  const dataset = await getDataset(deps.storage, tenant, spec.datasetId);
  if (!dataset) throw new AppError("DATASET_NOT_FOUND", `dataset ${spec.datasetId} does not exist`, { datasetId: spec.datasetId });

  const classes = spec.classes ?? dataset.classes;
  const unknown = classes.filter((c) => !dataset.classes.includes(c));
  if (unknown.length > 0) {
    throw new AppError("UNKNOWN_CLASSES", `classes not in dataset ${spec.datasetId}: ${unknown.join(", ")}`, {
      unknown,
      available: dataset.classes,
    });
  }
  if (classes.length < MIN_CLASSES) {
    throw new AppError("TOO_FEW_CLASSES", `a classifier needs at least ${MIN_CLASSES} classes, got ${classes.length}`, { classes });
  }

  checkJobFits(spec, classes.length, deps.config.workerMemoryBytes);

  const counts = splitCounts(dataset, classes, spec.validationSplit);
  const hasValidation = dataset.subsetCounts ? Object.values(counts).some((c) => c.validation > 0) : spec.validationSplit > 0;
  const empty = Object.entries(counts)
    .filter(([, c]) => c.train < 1 || (hasValidation && c.validation < 1))
    .map(([cls, c]) => ({ class: cls, ...c }));
  if (empty.length > 0) {
    throw new AppError(
      "SPLIT_LEAVES_CLASS_EMPTY",
      `with validationSplit ${spec.validationSplit} some classes have no image on one side of the split`,
      { validationSplit: spec.validationSplit, classes: empty },
    );
  }
  if (spec.earlyStopping?.monitor.startsWith("val_") && !hasValidation) {
    throw new AppError(
      "EARLY_STOPPING_NEEDS_VALIDATION",
      `earlyStopping.monitor ${spec.earlyStopping.monitor} needs validation data: set validationSplit > 0`,
    );
  }

  if (spec.baseWeights === "imagenet") {
    try {
      await fs.access(deps.config.imagenetWeights);
    } catch {
      throw new AppError(
        "IMAGENET_WEIGHTS_MISSING",
        // The server's path is the operator's business: the client learns which setting to ask about.
        `baseWeights "imagenet" needs Keras' ResNet-50 no-top weights, which this server does not have (its operator sets IMAGENET_WEIGHTS)`,
        { setting: "IMAGENET_WEIGHTS", file: IMAGENET_WEIGHTS_FILE },
      );
    }
  } else if (!isBuiltinWeights(spec.baseWeights) && !(await getWeights(deps.storage, tenant, spec.baseWeights))) {
    throw new AppError("WEIGHTS_NOT_FOUND", `weights ${spec.baseWeights} do not exist`, { baseWeights: spec.baseWeights });
  }
}
