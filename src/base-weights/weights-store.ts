// Uploaded base-weights files: the file and a record.json under the tenant's
// weights prefix. Only files the engine accepted as ResNet-50 weights get here.
import { randomUUID } from "node:crypto";
import type { Storage } from "../storage/storage.js";
import { storageKeys } from "../storage/keys.js";
import { newestFirstPage, type Page } from "../storage/newest-first-page.js";

export interface WeightsRecord {
  id: string;
  format: "keras-h5" | "keras3" | "tfjs";
  /** Base layers with weights that the file fills (ResNet-50: 106 of 106 for a complete file). */
  matchedLayers: number;
  /** File layers loading skips (an ImageNet top, a previous fine-tune's head). */
  ignoredLayers: string[];
  /** The name the client uploaded, for display only. */
  fileName: string;
  bytes: number;
  createdAt: string;
}

const ID = /^wts_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function newWeightsId(): string {
  return `wts_${randomUUID()}`;
}

export function isWeightsId(value: string): boolean {
  return ID.test(value);
}

export function weightsKeys(tenant: string, id: string, format?: WeightsRecord["format"]) {
  const base = storageKeys.weights(tenant, id);
  return {
    base,
    record: `${base}/record.json`,
    /** The uploaded file as is: HDF5 for Keras, the zip for TF.js. */
    file: `${base}/${format === "tfjs" ? "weights.zip" : "weights.h5"}`,
  };
}

export async function getWeights(storage: Storage, tenant: string, id: string): Promise<WeightsRecord | null> {
  if (!isWeightsId(id)) return null;
  const key = weightsKeys(tenant, id).record;
  if (!(await storage.exists(key))) return null;
  return JSON.parse((await storage.get(key)).toString("utf8")) as WeightsRecord;
}

/** Local path of a stored weights file, for loadBaseWeights (the worker) or null when it is gone. */
export async function weightsFilePath(storage: Storage, tenant: string, id: string): Promise<string | null> {
  const record = await getWeights(storage, tenant, id);
  return record ? storage.localPath(weightsKeys(tenant, id, record.format).file) : null;
}

export type WeightsPage = Page<WeightsRecord>;

/** One page, newest first; a cursor that is not a `nextCursor` is INVALID_CURSOR. */
export async function listWeights(storage: Storage, tenant: string, limit: number, cursor?: string): Promise<WeightsPage> {
  const prefix = `${storageKeys.tenant(tenant)}/weights`;
  const keys = (await storage.list(prefix)).filter((o) => o.key.endsWith("/record.json"));
  const records = await Promise.all(keys.map(async (o) => JSON.parse((await storage.get(o.key)).toString("utf8")) as WeightsRecord));
  return newestFirstPage(records, limit, cursor, isWeightsId);
}

/** The record goes last, so a weights id is visible only once its file is complete. */
export async function saveWeightsRecord(storage: Storage, tenant: string, record: WeightsRecord): Promise<void> {
  await storage.put(weightsKeys(tenant, record.id).record, JSON.stringify(record));
}

/** The record goes first, so a half-deleted weights id is already invisible. */
export async function deleteWeights(storage: Storage, tenant: string, id: string): Promise<void> {
  const keys = weightsKeys(tenant, id);
  await storage.delete(keys.record);
  await storage.deletePrefix(keys.base);
}
