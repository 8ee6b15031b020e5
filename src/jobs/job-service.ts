// Jobs as the API shows them: the record (owner, spec, extras) joined with the
// BullMQ job (queue state, attempts, progress, times). Creating (one
// transaction), reading and listing (which never write), cancelling, and
// whether a dataset or weights file is in use.
import { AppError } from "../errors.js";
import type { Config } from "../config.js";
import { requestCancel } from "./cancel.js";
import {
  expireJobRecord,
  jobKeys,
  writeJobRecord,
  markCancelled,
  parseEpochMetrics,
  parseJobRecord,
  type JobRecord,
  type JobRedis,
} from "./job-records.js";
import { readJob, type BullState, type JobRead } from "./job-read.js";
import type { JobReadCache } from "./job-read-cache.js";
import type { EpochMetrics } from "../training/epoch-metrics.js";
import { addTrainingJobTo, type JobProgress, type TrainingJobPayload, type TrainingQueue } from "./training-queue.js";

export const JOB_STATES = ["queued", "running", "completed", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];

export function isFinalState(state: JobState): boolean {
  return state === "completed" || state === "failed" || state === "cancelled";
}

export interface JobView {
  id: string;
  state: JobState;
  spec: TrainingJobPayload["spec"];
  datasetId: string;
  /** 1 = the next job a worker takes; null unless waiting in the queue. */
  queuePosition: number | null;
  progress: Pick<JobProgress, "epoch" | "epochs" | "batch" | "batches" | "fraction"> | null;
  /** Omitted in lists. */
  metrics?: EpochMetrics[];
  backend: string | null;
  engine: string | null;
  stepEngine: string | null;
  featureCache: boolean | null;
  /** Attempts started so far (a crashed or failed attempt is retried up to 3 in all). */
  attempts: number;
  cancelRequested: boolean;
  error: { code: string; message: string } | null;
  modelId: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface JobPage {
  items: JobView[];
  nextCursor: string | null;
}

/**
 * BullMQ has no `cancelled`: a job is cancelled once the worker (or the API,
 * for a job still waiting) marked it so, or when it ended other than completed
 * after a cancel request. A job BullMQ no longer knows and nobody cancelled was
 * removed outside the API: it reads as failed (JOB_LOST).
 */
export function jobState(record: JobRecord, bull: BullState): JobState {
  if (record.cancelledAt) return "cancelled";
  switch (bull) {
    case "active":
      return "running";
    case "completed":
      return "completed";
    case "failed":
    case "unknown":
      return record.cancelRequestedAt ? "cancelled" : "failed";
    default:
      return "queued";
  }
}

/** Cursor of a page: base64url("<createdAt ms>:<job id>") of the last job of the previous page. */
export function encodeCursor(score: number, jobId: string): string {
  return Buffer.from(`${score}:${jobId}`).toString("base64url");
}

export function decodeCursor(cursor: string): { score: number; jobId: string } {
  const text = Buffer.from(cursor, "base64url").toString();
  const match = /^(\d{1,16}):(job_[0-9a-f-]{36})$/.exec(text);
  if (!match) throw new AppError("INVALID_CURSOR", "cursor is not one this API returned", { cursor });
  return { score: Number(match[1]), jobId: match[2] };
}

/** A string key that job creation sets in its transaction (the Idempotency-Key's final value). */
export interface KeyToSet {
  key: string;
  value: string;
  ttlSeconds: number;
}

/** Entries of a tenant's index checked for expiry per job created: the index stays near the live jobs' size. */
const INDEX_PRUNE_BATCH = 20;

export interface JobServiceDeps {
  db: JobRedis;
  queue: TrainingQueue;
  config: Pick<Config, "jobRetentionDays">;
  /** Serves `get(..., { cached: true })`; a cancel drops the job's entries (a job being created has none). */
  readCache?: Pick<JobReadCache, "read" | "drop">;
  /**
   * Test seam: runs after validation, just before the creation transaction
   * (where a crash must leave nothing behind). Production passes none.
   */
  beforeCommit?: (jobId: string) => Promise<void>;
}

export function createJobService({ db, queue, config, readCache, beforeCommit }: JobServiceDeps) {
  function viewOf(record: JobRecord, { bullJob, bullState, queuePosition, metrics }: JobRead, withMetrics: boolean): JobView {
    const state = jobState(record, bullState);
    const progress = bullJob && typeof bullJob.progress === "object" ? (bullJob.progress as Partial<JobProgress>) : null;
    const finishedAt =
      state === "cancelled"
        ? (record.cancelledAt ?? (bullJob?.finishedOn ? new Date(bullJob.finishedOn).toISOString() : (record.cancelRequestedAt ?? null)))
        : isFinalState(state) && bullJob?.finishedOn
          ? new Date(bullJob.finishedOn).toISOString()
          : null;
    const error =
      state !== "failed"
        ? null
        : (record.error ??
          (bullJob
            ? { code: "TRAINING_FAILED", message: bullJob.failedReason || "training failed" }
            : { code: "JOB_LOST", message: "the queue no longer has this job" }));
    const view: JobView = {
      id: record.jobId,
      state,
      spec: record.spec,
      datasetId: record.spec.datasetId,
      queuePosition,
      progress:
        progress && typeof progress.epoch === "number"
          ? {
              epoch: progress.epoch,
              epochs: progress.epochs!,
              batch: progress.batch!,
              batches: progress.batches!,
              fraction: progress.fraction!,
            }
          : null,
      backend: record.backend ?? progress?.backend ?? null,
      engine: record.engine ?? null,
      stepEngine: record.stepEngine ?? null,
      featureCache: record.featureCache ?? progress?.featureCache ?? null,
      attempts: bullJob?.attemptsStarted ?? 0,
      cancelRequested: Boolean(record.cancelRequestedAt),
      error,
      modelId: state === "completed" ? (record.modelId ?? null) : null,
      createdAt: record.createdAt,
      startedAt: bullJob?.processedOn ? new Date(bullJob.processedOn).toISOString() : null,
      finishedAt,
    };
    if (withMetrics) view.metrics = parseEpochMetrics(metrics);
    return view;
  }

  // Cache hits return the same JobRead again: its parsed record and view are made once (and frozen, as callers share them).
  const parsedReads = new WeakMap<JobRead, { tenant: string | undefined; view: Readonly<JobView> | null }>();

  /**
   * The tenant's job, or null: another tenant's job does not exist for this one. `cached` lets the read cache
   * answer (for reads that decide nothing; a write by another process shows once its invalidation arrives).
   */
  async function get(tenant: string, jobId: string, opts: { metrics?: boolean; cached?: boolean } = {}): Promise<JobView | null> {
    const withMetrics = opts.metrics ?? true;
    const read =
      opts.cached && readCache
        ? await readCache.read(jobId, { metrics: withMetrics })
        : await readJob(db, queue, jobId, { metrics: withMetrics });
    if (!read) return null;
    if (!opts.cached) {
      const record = parseJobRecord(jobId, read.record);
      return record && record.tenant === tenant ? viewOf(record, read, withMetrics) : null;
    }
    let parsed = parsedReads.get(read);
    if (!parsed) {
      const record = parseJobRecord(jobId, read.record);
      parsed = { tenant: record?.tenant, view: record ? Object.freeze(viewOf(record, read, withMetrics)) : null };
      parsedReads.set(read, parsed);
    }
    return parsed.tenant === tenant ? parsed.view : null;
  }

  /**
   * The record, the tenant index, the uses sets, the queue entry and `alsoSet`
   * (the Idempotency-Key) in one MULTI: all of them exist, or none. `afterCommit`
   * runs once they do (the job.queued webhook event, which reads the record).
   */
  async function create(
    payload: TrainingJobPayload,
    opts: { alsoSet?: KeyToSet; afterCommit?: () => Promise<void> } = {},
  ): Promise<JobView> {
    const tx = (await queue.getBackend().client).multi();
    writeJobRecord(tx, db, payload);
    if (opts.alsoSet) tx.runCommand("set", [opts.alsoSet.key, opts.alsoSet.value, "EX", opts.alsoSet.ttlSeconds]);
    await addTrainingJobTo(tx, queue, payload);
    await beforeCommit?.(payload.jobId);
    const results = await tx.exec();
    const failed = results === null ? new Error("the transaction was aborted") : results.find(([err]) => err)?.[0];
    if (failed) throw failed;
    await opts.afterCommit?.();
    await pruneTenantIndex(payload.tenant);
    return (await get(payload.tenant, payload.jobId))!;
  }

  /** Expired jobs leave their tenant's index here, on a write path, oldest first; listings only skip them. */
  async function pruneTenantIndex(tenant: string): Promise<void> {
    const key = jobKeys.tenantJobs(db, tenant);
    const oldest = await db.redis.zrange(key, "0", String(INDEX_PRUNE_BATCH - 1));
    const exists = await Promise.all(oldest.map((jobId) => db.redis.exists(jobKeys.record(db, jobId))));
    const expired = oldest.filter((_, i) => exists[i] === 0);
    if (expired.length > 0) await db.redis.zrem(key, ...expired);
  }

  /** Newest first; `state` filters, which may scan past non-matching jobs. */
  async function list(tenant: string, opts: { state?: JobState; limit: number; cursor?: string }): Promise<JobPage> {
    const key = jobKeys.tenantJobs(db, tenant);
    let start = 0;
    if (opts.cursor) {
      const after = decodeCursor(opts.cursor);
      const rank = await db.redis.zrevrank(key, after.jobId);
      // The cursor's job expired meanwhile: continue with the jobs created before it.
      start = rank !== null ? rank + 1 : await db.redis.zcount(key, `(${after.score}`, "+inf");
    }
    const items: JobView[] = [];
    const chunk = Math.max(opts.limit, 50);
    for (;;) {
      const raw = await db.redis.zrevrange(key, start, start + chunk - 1, "WITHSCORES");
      for (let i = 0; i < raw.length; i += 2) {
        const jobId = raw[i];
        const read = await readJob(db, queue, jobId, { metrics: false });
        const record = read && parseJobRecord(jobId, read.record);
        if (!record) continue; // expired; pruneTenantIndex removes it later
        const view = viewOf(record, read, false);
        if (opts.state && view.state !== opts.state) continue;
        items.push(view);
        if (items.length === opts.limit) return { items, nextCursor: encodeCursor(Number(raw[i + 1]), jobId) };
      }
      if (raw.length < chunk * 2) return { items, nextCursor: null };
      start += chunk;
    }
  }

  /**
   * A waiting job leaves the queue and is cancelled at once. A running one is
   * told to stop (`accepted`): its worker marks it cancelled after the current
   * batch. Already cancelled: no-op. Completed or failed: JOB_FINISHED.
   */
  async function cancel(tenant: string, jobId: string): Promise<{ view: JobView; accepted: boolean } | null> {
    const before = await get(tenant, jobId);
    if (!before) return null;
    if (before.state === "cancelled") return { view: before, accepted: false };
    if (before.state === "completed" || before.state === "failed") {
      throw new AppError("JOB_FINISHED", `job ${jobId} is already ${before.state}`, { state: before.state });
    }
    let removed = false;
    try {
      await requestCancel(db, jobId);
      // remove() refuses a job a worker holds (returns 0): that one stops on the request.
      const bullState = await queue.getJobState(jobId);
      removed = bullState !== "active" && bullState !== "completed" && bullState !== "failed" && (await queue.remove(jobId)) === 1;
      if (removed) {
        await markCancelled(db, jobId);
        await expireJobRecord(db, jobId, config.jobRetentionDays * 24 * 3600);
      }
    } finally {
      readCache?.drop(jobId);
    }
    return { view: (await get(tenant, jobId))!, accepted: !removed };
  }

  /** A queued or running job references it (finished ones no longer need it). */
  async function isInUse(tenant: string, kind: "dataset" | "weights", id: string): Promise<boolean> {
    const key = jobKeys.uses(db, tenant, kind, id);
    for (const jobId of await db.redis.smembers(key)) {
      const view = await get(tenant, jobId, { metrics: false });
      if (view && !isFinalState(view.state)) return true;
      await db.redis.srem(key, jobId);
    }
    return false;
  }

  return { get, create, list, cancel, isInUse };
}

export type JobService = ReturnType<typeof createJobService>;
