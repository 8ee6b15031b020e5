// Per-epoch checkpoints of a job in storage, under
// storageKeys.checkpoints(tenant, jobId)/<epoch>/: the whole model (TF.js
// layers format), Adam's state, and checkpoint.json. The manifest is written
// last, so a checkpoint whose manifest is missing (a process killed while
// writing it) does not exist for any reader.
import fs from "node:fs/promises";
import path from "node:path";
import type * as tf from "@tensorflow/tfjs";
import type { Storage } from "../storage/storage.js";
import { storageKeys } from "../storage/keys.js";
import type { EpochMetrics } from "../queue/job-records.js";
import { decodeOptimizerState, encodeOptimizerState, type OptimizerState } from "../training/optimizer-state.js";
import { saveTfjs } from "../model/weights/index.js";

export const MANIFEST_FILE = "checkpoint.json";
export const OPTIMIZER_FILE = "optimizer.bin";
export const MODEL_FILE = "model.json";

export interface CheckpointManifest {
  /** 1-based: the number of epochs this checkpoint has completed. */
  epoch: number;
  /** One entry per completed epoch, 1..epoch. */
  metrics: EpochMetrics[];
  /**
   * The batch order of an epoch is a pure function of (seed, epoch) (BatchSource
   * contract) and dropout masks of (seed, epoch, batch): seed and epoch are
   * the whole RNG state a resumed run needs.
   */
  seed: number;
  /** Files of the checkpoint, relative to its directory, manifest excluded. */
  files: string[];
  createdAt: string;
}

export interface CheckpointSummary {
  epoch: number;
  metrics: EpochMetrics;
  bytes: number;
  createdAt: string;
}

export function checkpointKey(tenant: string, jobId: string, epoch: number, file?: string): string {
  const dir = `${storageKeys.checkpoints(tenant, jobId)}/${epoch}`;
  return file ? `${dir}/${file}` : dir;
}

export interface WriteCheckpointInput {
  tenant: string;
  jobId: string;
  model: tf.LayersModel;
  optimizerState: OptimizerState;
  metrics: EpochMetrics[];
  seed: number;
}

export async function writeCheckpoint(storage: Storage, input: WriteCheckpointInput): Promise<CheckpointManifest> {
  const { tenant, jobId, metrics } = input;
  const epoch = metrics.length;
  const dirKey = checkpointKey(tenant, jobId, epoch);
  // Leftovers of an attempt killed while writing this same epoch.
  await storage.deletePrefix(dirKey);
  const scratch = await storage.scratchDir(`checkpoint-${jobId}-${epoch}`);
  try {
    await saveTfjs(input.model, scratch);
    await fs.writeFile(path.join(scratch, OPTIMIZER_FILE), encodeOptimizerState(input.optimizerState));
    const files = (await fs.readdir(scratch)).sort();
    for (const file of files) await storage.putFile(`${dirKey}/${file}`, path.join(scratch, file));
    const manifest: CheckpointManifest = { epoch, metrics, seed: input.seed, files, createdAt: new Date().toISOString() };
    await storage.put(`${dirKey}/${MANIFEST_FILE}`, JSON.stringify(manifest, null, 2));
    return manifest;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Manifests of the job's complete checkpoints, by epoch ascending. */
export async function listCheckpoints(storage: Storage, tenant: string, jobId: string): Promise<CheckpointManifest[]> {
  const prefix = storageKeys.checkpoints(tenant, jobId);
  const objects = await storage.list(prefix);
  const manifests: CheckpointManifest[] = [];
  for (const object of objects) {
    if (!object.key.endsWith(`/${MANIFEST_FILE}`)) continue;
    try {
      manifests.push(JSON.parse((await storage.get(object.key)).toString("utf8")) as CheckpointManifest);
    } catch (error) {
      // Deleted by pruning between list and get: it no longer exists.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  return manifests.sort((a, b) => a.epoch - b.epoch);
}

export async function checkpointSummaries(storage: Storage, tenant: string, jobId: string): Promise<CheckpointSummary[]> {
  const sizes = new Map<number, number>();
  for (const object of await storage.list(storageKeys.checkpoints(tenant, jobId))) {
    const epoch = Number(object.key.slice(storageKeys.checkpoints(tenant, jobId).length + 1).split("/")[0]);
    sizes.set(epoch, (sizes.get(epoch) ?? 0) + object.size);
  }
  return (await listCheckpoints(storage, tenant, jobId)).map((m) => ({
    epoch: m.epoch,
    metrics: m.metrics[m.metrics.length - 1],
    bytes: sizes.get(m.epoch) ?? 0,
    createdAt: m.createdAt,
  }));
}

export async function readCheckpointOptimizerState(storage: Storage, tenant: string, jobId: string, epoch: number): Promise<OptimizerState> {
  return decodeOptimizerState(await storage.get(checkpointKey(tenant, jobId, epoch, OPTIMIZER_FILE)));
}

/** A local path of the checkpoint's model.json (loadModelWeights / loadTfjsModel read its shards next to it). */
export async function checkpointModelPath(storage: Storage, tenant: string, jobId: string, epoch: number): Promise<string> {
  return storage.localPath(checkpointKey(tenant, jobId, epoch, MODEL_FILE));
}

/**
 * Epochs to keep: the last `keep`, plus the lowest val_loss (the lowest loss without validation),
 * plus `alsoKeep` (the epoch early stopping may restore).
 */
export function checkpointsToKeep(manifests: readonly CheckpointManifest[], keep: number, alsoKeep: number | null = null): Set<number> {
  const kept = new Set(manifests.slice(-keep).map((m) => m.epoch));
  const score = (m: CheckpointManifest) => {
    const last = m.metrics[m.metrics.length - 1];
    return last.valLoss ?? last.loss;
  };
  const best = manifests.reduce<CheckpointManifest | undefined>((b, m) => (b === undefined || score(m) < score(b) ? m : b), undefined);
  if (best) kept.add(best.epoch);
  if (alsoKeep !== null && manifests.some((m) => m.epoch === alsoKeep)) kept.add(alsoKeep);
  return kept;
}

/** Deletes the checkpoints checkpointsToKeep leaves out: manifest first, so none is ever seen half-deleted. */
export async function pruneCheckpoints(storage: Storage, tenant: string, jobId: string, keep: number, alsoKeep: number | null = null): Promise<number[]> {
  const manifests = await listCheckpoints(storage, tenant, jobId);
  const kept = checkpointsToKeep(manifests, keep, alsoKeep);
  const removed: number[] = [];
  for (const m of manifests) {
    if (kept.has(m.epoch)) continue;
    await storage.delete(checkpointKey(tenant, jobId, m.epoch, MANIFEST_FILE));
    await storage.deletePrefix(checkpointKey(tenant, jobId, m.epoch));
    removed.push(m.epoch);
  }
  return removed;
}
