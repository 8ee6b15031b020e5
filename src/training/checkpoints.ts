// Per-epoch checkpoints of a job in storage, under
// storageKeys.checkpoints(tenant, jobId)/<epoch>/: the whole model (TF.js
// layers format), Adam's state, and checkpoint.json. The manifest is written
// last, so a checkpoint whose manifest is missing (a process killed while
// writing it) does not exist for any reader. The manifest records each file's
// size and sha256; a resume checks them and skips a checkpoint that fails
// (torn, truncated, altered), falling back to the one before it.
import fs from "node:fs/promises";
import path from "node:path";
import type * as tf from "@tensorflow/tfjs";
import type { Storage } from "../storage/storage.js";
import { storageKeys } from "../storage/keys.js";
import type { Page } from "../storage/newest-first-page.js";
import { AppError } from "../errors.js";
import type { EpochMetrics } from "./epoch-metrics.js";
import { decodeOptimizerState, encodeOptimizerState, type OptimizerState } from "./optimizer-state.js";
import { MODEL_JSON, saveTfjs } from "../weight-files/index.js";
import { digestLocalFile, digestProblem, isFileDigest, type FileDigest } from "../storage/file-digest.js";

export const MANIFEST_FILE = "checkpoint.json";
export const OPTIMIZER_FILE = "optimizer.bin";

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
  /** Size and sha256 of each file as written, by file name. */
  digests: Record<string, FileDigest>;
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
    const digests: Record<string, FileDigest> = {};
    for (const file of files) {
      // Read back from the page cache just after writing: small next to an epoch of training.
      digests[file] = await digestLocalFile(path.join(scratch, file));
      await storage.putFile(`${dirKey}/${file}`, path.join(scratch, file));
    }
    const manifest: CheckpointManifest = { epoch, metrics, seed: input.seed, files, digests, createdAt: new Date().toISOString() };
    await storage.put(`${dirKey}/${MANIFEST_FILE}`, JSON.stringify(manifest, null, 2));
    return manifest;
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** The manifest under `key`: "missing" when there is none, null when it is there but not a manifest (torn, altered). */
async function readManifest(storage: Storage, key: string): Promise<CheckpointManifest | "missing" | null> {
  let text: string;
  try {
    text = (await storage.get(key)).toString("utf8");
  } catch (error) {
    // Deleted by pruning between list and get: it no longer exists.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw error;
  }
  try {
    const m = JSON.parse(text) as CheckpointManifest;
    const wellFormed =
      Number.isInteger(m.epoch) &&
      m.epoch >= 1 &&
      Array.isArray(m.metrics) &&
      m.metrics.length === m.epoch &&
      Array.isArray(m.files) &&
      Number.isInteger(m.seed);
    return wellFormed ? m : null;
  } catch {
    return null;
  }
}

/** Manifests of the job's complete checkpoints, by epoch ascending; an unreadable manifest is left out. */
export async function listCheckpoints(storage: Storage, tenant: string, jobId: string): Promise<CheckpointManifest[]> {
  const prefix = storageKeys.checkpoints(tenant, jobId);
  const objects = await storage.list(prefix);
  const manifests: CheckpointManifest[] = [];
  for (const object of objects) {
    if (!object.key.endsWith(`/${MANIFEST_FILE}`)) continue;
    const manifest = await readManifest(storage, object.key);
    if (manifest !== null && manifest !== "missing") manifests.push(manifest);
  }
  return manifests.sort((a, b) => a.epoch - b.epoch);
}

/** Why the checkpoint cannot be resumed from (a file missing, torn or altered since written), or null. */
export async function checkpointProblem(
  storage: Storage,
  tenant: string,
  jobId: string,
  manifest: CheckpointManifest,
): Promise<string | null> {
  for (const needed of [MODEL_JSON, OPTIMIZER_FILE]) if (!manifest.files.includes(needed)) return `the manifest lists no ${needed}`;
  for (const file of manifest.files) {
    const digest = manifest.digests?.[file];
    if (!isFileDigest(digest)) return `the manifest records no digest of ${file}`;
    const problem = await digestProblem(storage, checkpointKey(tenant, jobId, manifest.epoch, file), digest);
    if (problem !== null) return problem;
  }
  return null;
}

/**
 * The newest checkpoint whose manifest and files pass their checks. Each newer one that fails is
 * reported to `onSkip` and deleted (it would otherwise count as a later epoch for pruning); none
 * passing means a fresh start.
 */
export async function resumableCheckpoint(
  storage: Storage,
  tenant: string,
  jobId: string,
  onSkip: (epoch: number, problem: string) => void,
): Promise<CheckpointManifest | undefined> {
  const epochs = (await storage.listChildren(storageKeys.checkpoints(tenant, jobId)))
    .map(Number)
    .filter((n) => Number.isInteger(n) && n >= 1)
    .sort((a, b) => b - a);
  for (const epoch of epochs) {
    const manifest = await readManifest(storage, checkpointKey(tenant, jobId, epoch, MANIFEST_FILE));
    // No manifest: a checkpoint whose writing was cut short, which exists for no reader.
    if (manifest === "missing") continue;
    const problem =
      manifest === null
        ? "its manifest is unreadable"
        : manifest.epoch !== epoch
          ? `its manifest says epoch ${manifest.epoch}`
          : await checkpointProblem(storage, tenant, jobId, manifest);
    if (problem === null) return manifest!;
    onSkip(epoch, problem);
    await deleteCheckpoint(storage, tenant, jobId, epoch);
  }
  return undefined;
}

/** Manifest first, so the checkpoint is never seen half-deleted. */
async function deleteCheckpoint(storage: Storage, tenant: string, jobId: string, epoch: number): Promise<void> {
  await storage.delete(checkpointKey(tenant, jobId, epoch, MANIFEST_FILE));
  await storage.deletePrefix(checkpointKey(tenant, jobId, epoch));
}

/** Cursor of a page of checkpoints: the last epoch of the previous page, opaque to clients. */
function encodeEpochCursor(epoch: number): string {
  return Buffer.from(`epoch ${epoch}`).toString("base64url");
}

function decodeEpochCursor(cursor: string): number {
  const match = /^epoch (\d{1,9})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!match) throw new AppError("INVALID_CURSOR", "cursor is not one this API returned", { cursor });
  return Number(match[1]);
}

/** One page of the job's checkpoints, epoch ascending; a cursor that is not a `nextCursor` is INVALID_CURSOR. */
export async function checkpointPage(
  storage: Storage,
  tenant: string,
  jobId: string,
  limit: number,
  cursor?: string,
): Promise<Page<CheckpointSummary>> {
  const after = cursor === undefined ? 0 : decodeEpochCursor(cursor);
  const rest = (await checkpointSummaries(storage, tenant, jobId)).filter((c) => c.epoch > after);
  const items = rest.slice(0, limit);
  return { items, nextCursor: rest.length > limit ? encodeEpochCursor(items[items.length - 1].epoch) : null };
}

async function checkpointSummaries(storage: Storage, tenant: string, jobId: string): Promise<CheckpointSummary[]> {
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

export async function readCheckpointOptimizerState(
  storage: Storage,
  tenant: string,
  jobId: string,
  epoch: number,
): Promise<OptimizerState> {
  return decodeOptimizerState(await storage.get(checkpointKey(tenant, jobId, epoch, OPTIMIZER_FILE)));
}

/** A local path of the checkpoint's model.json (loadModelWeights / loadTfjsModel read its shards next to it). */
export async function checkpointModelPath(storage: Storage, tenant: string, jobId: string, epoch: number): Promise<string> {
  return storage.localPath(checkpointKey(tenant, jobId, epoch, MODEL_JSON));
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

/** Deletes the checkpoints checkpointsToKeep leaves out. */
export async function pruneCheckpoints(
  storage: Storage,
  tenant: string,
  jobId: string,
  keep: number,
  alsoKeep: number | null = null,
): Promise<number[]> {
  const manifests = await listCheckpoints(storage, tenant, jobId);
  const kept = checkpointsToKeep(manifests, keep, alsoKeep);
  const removed: number[] = [];
  for (const m of manifests) {
    if (kept.has(m.epoch)) continue;
    await deleteCheckpoint(storage, tenant, jobId, m.epoch);
    removed.push(m.epoch);
  }
  return removed;
}
