// Trained models in storage, under storageKeys.model(tenant, modelId): the
// TF.js layers model (model.json + shards), the Keras full-model model.h5,
// labels.json, and model-record.json (what GET /v1/models/{id} shows). The
// record is written last: a model without one does not exist.
import fs from "node:fs/promises";
import path from "node:path";
import type * as tf from "@tensorflow/tfjs";
import type { Storage } from "../storage/storage.js";
import { storageKeys } from "../storage/keys.js";
import { newestFirstPage, type Page } from "../storage/newest-first-page.js";
import type { JobSpec } from "../jobs/job-spec.js";
import type { EpochMetrics } from "../training/epoch-metrics.js";
import type { ClassificationReport } from "../training/report.js";
import { saveKerasH5, saveTfjs } from "../weight-files/index.js";
import { IMAGENET_BGR_MEANS } from "../network/preprocess.js";

export const MODEL_RECORD_FILE = "model-record.json";
export const CLASS_NAMES_FILE = "labels.json";
export const KERAS_FILE = "model.h5";

/** keras.applications.resnet50.preprocess_input, which predict applies and a client using the files must too. */
export const CAFFE_PREPROCESSING = {
  mode: "caffe",
  input: "RGB, 0..255, resized to imageSize x imageSize (bilinear, aspect ratio not kept)",
  channelOrder: "BGR",
  mean: IMAGENET_BGR_MEANS,
  scale: 1,
} as const;

export interface ModelRecord {
  id: string;
  jobId: string;
  datasetId: string;
  createdAt: string;
  /** Output index i of the model is classes[i] (also labels.json). */
  classes: string[];
  imageSize: number;
  preprocessing: typeof CAFFE_PREPROCESSING;
  spec: JobSpec;
  /** The last epoch's metrics. */
  metrics: EpochMetrics;
  history: EpochMetrics[];
  /** On the validation set; null when the job had no validation data. */
  report: ClassificationReport | null;
  backend: string;
  files: { tfjs: string[]; keras: string; labels: string };
  bytes: number;
}

export function modelIdForJob(jobId: string): string {
  return `mdl_${jobId.replace(/^job_/, "")}`;
}

export function isModelId(value: string): boolean {
  return /^mdl_[A-Za-z0-9_-]{1,100}$/.test(value);
}

export function modelKey(tenant: string, modelId: string, file?: string): string {
  const dir = storageKeys.model(tenant, modelId);
  return file ? `${dir}/${file}` : dir;
}

export interface SaveModelInput extends Omit<ModelRecord, "files" | "bytes" | "createdAt" | "id"> {
  tenant: string;
  modelId: string;
  model: tf.LayersModel;
}

export async function saveTrainedModel(storage: Storage, input: SaveModelInput): Promise<ModelRecord> {
  const { tenant, modelId, model, ...rest } = input;
  // A retried job may have written part of it before it died.
  await storage.deletePrefix(modelKey(tenant, modelId));
  const scratch = await storage.scratchDir(`model-${modelId}`);
  try {
    await saveTfjs(model, scratch);
    const tfjsFiles = (await fs.readdir(scratch)).sort();
    await saveKerasH5(model, path.join(scratch, KERAS_FILE));
    await fs.writeFile(path.join(scratch, CLASS_NAMES_FILE), JSON.stringify(input.classes));
    let bytes = 0;
    for (const file of [...tfjsFiles, KERAS_FILE, CLASS_NAMES_FILE]) {
      bytes += (await storage.putFile(modelKey(tenant, modelId, file), path.join(scratch, file))).size;
    }
    const record: ModelRecord = {
      id: modelId,
      ...rest,
      createdAt: new Date().toISOString(),
      files: { tfjs: tfjsFiles, keras: KERAS_FILE, labels: CLASS_NAMES_FILE },
      bytes,
    };
    await storage.put(modelKey(tenant, modelId, MODEL_RECORD_FILE), JSON.stringify(record, null, 2));
    return record;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

export async function getModelRecord(storage: Storage, tenant: string, modelId: string): Promise<ModelRecord | null> {
  if (!isModelId(modelId)) return null;
  try {
    return JSON.parse((await storage.get(modelKey(tenant, modelId, MODEL_RECORD_FILE))).toString("utf8")) as ModelRecord;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** The tenant's models, newest first. */
/** One page of the tenant's models, newest first; a cursor that is not a `nextCursor` is INVALID_CURSOR. */
export async function listModelRecords(storage: Storage, tenant: string, limit: number, cursor?: string): Promise<Page<ModelRecord>> {
  const prefix = `${storageKeys.tenant(tenant)}/models`;
  const records: ModelRecord[] = [];
  for (const object of await storage.list(prefix)) {
    if (!object.key.endsWith(`/${MODEL_RECORD_FILE}`)) continue;
    const modelId = object.key.slice(prefix.length + 1).split("/")[0];
    const record = await getModelRecord(storage, tenant, modelId);
    if (record) records.push(record);
  }
  return newestFirstPage(records, limit, cursor, isModelId);
}
