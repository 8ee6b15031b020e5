// Datasets in storage: ids, keys, the record every API answer is made of,
// the image index training reads, listing newest first, deletion.
//
// Stored form under storageKeys.dataset(tenant, id):
//   dataset.json           the record (written last: a dataset exists once it is there)
//   index.json             every kept image: stored file, class, predefined subset, archive path, sha256
//   images/<n>.<ext>       the original bytes of each valid image (never re-encoded)
//   cache/decoded-<size>.u8  decoded, resized RGB pixels for training (see decoded-cache.ts)
//   cache/decoded-<size>.json  its size and sha256, written after it
import { randomBytes } from "node:crypto";
import type { Storage } from "../storage/storage.js";
import { storageKeys } from "../storage/keys.js";
import type { Subset } from "./dataset-layout.js";

export interface RejectedFile {
  path: string;
  reason: string;
}

export interface Duplicates {
  /** Byte-identical files in one class: the first is kept, the others dropped. */
  sameClass: { class: string; kept: string; dropped: string[] }[];
  /** Byte-identical files labelled with different classes: every copy is kept, once per class. */
  conflicts: { files: { path: string; class: string }[] }[];
}

export interface DatasetRecord {
  id: string;
  name: string;
  status: "ready";
  /** Sorted. */
  classes: string[];
  counts: Record<string, number>;
  imageCount: number;
  split: "random" | "predefined";
  rejected: RejectedFile[];
  duplicates: Duplicates;
  /** Bytes of the stored images. */
  bytes: number;
  createdAt: string;
  /** Per-class counts of the given train/ and val/ folders; null for a random split. Not part of API answers. */
  subsetCounts: Record<Subset, Record<string, number>> | null;
}

export interface IndexedImage {
  /** Key relative to the dataset prefix ("images/12.jpg"). */
  file: string;
  class: string;
  subset: Subset | null;
  /** Path inside the uploaded archive. */
  path: string;
  sha256: string;
}

export interface DatasetIndex {
  /** Sorted by class, subset, path: the order of the decoded cache's rows. */
  images: IndexedImage[];
}

const ID_PATTERN = /^ds_[0-9a-z]{9}[0-9a-f]{12}$/;

/** Time-ordered ids: sorting them sorts datasets by creation, which the list's cursor relies on. */
export function newDatasetId(now = Date.now()): string {
  return `ds_${now.toString(36).padStart(9, "0")}${randomBytes(6).toString("hex")}`;
}

export function isDatasetId(value: string): boolean {
  return ID_PATTERN.test(value);
}

export function datasetKeys(tenant: string, id: string) {
  const root = storageKeys.dataset(tenant, id);
  return {
    root,
    record: `${root}/dataset.json`,
    index: `${root}/index.json`,
    file: (relative: string) => `${root}/${relative}`,
    decoded: (imageSize: number) => `${root}/cache/decoded-${imageSize}.u8`,
    decodedDigest: (imageSize: number) => `${root}/cache/decoded-${imageSize}.json`,
  };
}

function datasetsPrefix(tenant: string): string {
  return `${storageKeys.tenant(tenant)}/datasets`;
}

async function readJson<T>(storage: Storage, key: string): Promise<T | null> {
  if (!(await storage.exists(key))) return null;
  return JSON.parse((await storage.get(key)).toString("utf8")) as T;
}

export async function getDataset(storage: Storage, tenant: string, id: string): Promise<DatasetRecord | null> {
  if (!isDatasetId(id)) return null;
  return readJson<DatasetRecord>(storage, datasetKeys(tenant, id).record);
}

export async function readDatasetIndex(storage: Storage, tenant: string, id: string): Promise<DatasetIndex | null> {
  if (!isDatasetId(id)) return null;
  return readJson<DatasetIndex>(storage, datasetKeys(tenant, id).index);
}

export interface DatasetPage {
  items: DatasetRecord[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

/** Newest first; the cursor is the id of the last dataset of the previous page. */
export async function listDatasets(storage: Storage, tenant: string, limit: number, cursor?: string): Promise<DatasetPage> {
  const ids = (await storage.listChildren(datasetsPrefix(tenant)))
    .filter((id) => isDatasetId(id) && (cursor === undefined || id < cursor))
    .sort()
    .reverse();
  const items: DatasetRecord[] = [];
  let last = -1;
  for (let i = 0; i < ids.length && items.length < limit; i++) {
    const record = await getDataset(storage, tenant, ids[i]);
    last = i;
    if (record) items.push(record);
  }
  const more = ids.slice(last + 1).length > 0;
  return { items, nextCursor: more && items.length > 0 ? items[items.length - 1].id : null };
}

/**
 * Removes the record first, so a half-deleted dataset is already invisible;
 * then its files and decoded images, then its frozen-trunk feature caches,
 * which live with the shared caches. The caller makes sure no job uses it.
 */
export async function deleteDataset(storage: Storage, tenant: string, id: string): Promise<void> {
  const keys = datasetKeys(tenant, id);
  await storage.delete(keys.record);
  await storage.deletePrefix(keys.root);
  await storage.deletePrefix(storageKeys.datasetFeatures(tenant, id));
}
