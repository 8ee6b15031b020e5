// What Redis keeps about a job besides BullMQ's own job: a small hash (owner,
// spec, extras the worker reports, cancellation) and the per-epoch metrics the
// SSE stream replays. Bytes (checkpoints, models) live in storage, never here.
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import type { JobSpec } from "./job-spec.js";
import type { EpochMetrics } from "../training/epoch-metrics.js";

/** A Redis client plus the key prefix (REDIS_PREFIX) shared by BullMQ and these keys. */
export interface JobRedis {
  redis: Redis;
  prefix: string;
}

export function jobRedis(redis: Redis, config: Pick<Config, "redisPrefix">): JobRedis {
  return { redis, prefix: config.redisPrefix };
}

export const jobKeys = {
  record: (db: JobRedis, jobId: string) => `${db.prefix}:job:${jobId}`,
  metrics: (db: JobRedis, jobId: string) => `${db.prefix}:job:${jobId}:metrics`,
  /** Sorted set of the tenant's job ids, scored by creation time in ms. */
  tenantJobs: (db: JobRedis, tenant: string) => `${db.prefix}:tenant:${tenant}:jobs`,
  /** Set of the job ids that reference one dataset or weights file. */
  uses: (db: JobRedis, tenant: string, kind: "dataset" | "weights", id: string) => `${db.prefix}:uses:${tenant}:${kind}:${id}`,
  /** List of the job's webhook delivery attempts, oldest first. */
  webhookDeliveries: (db: JobRedis, jobId: string) => `${db.prefix}:job:${jobId}:webhooks`,
  /** Sorted set of the job's webhook events not delivered (nor given up) yet, by order of the changes. */
  webhookPending: (db: JobRedis, jobId: string) => `${db.prefix}:job:${jobId}:webhooks-pending`,
  /** Pub/sub channel carrying the ids of jobs to cancel. */
  cancelChannel: (db: JobRedis) => `${db.prefix}:cancel`,
};

/** What the worker reports about a job; any subset at a time (setJobInfo). */
export interface JobInfo {
  backend?: string;
  /** The engine of the frozen trunk: "tfjs" or "onnxruntime". */
  engine?: string;
  /** The engine of the training steps: the job's, or "tfjs" when the model has no ONNX training step (the whole model, an unsupported layer). */
  stepEngine?: string;
  featureCache?: boolean;
  /** Set before the BullMQ job completes. */
  modelId?: string;
  /** Set before an attempt fails (the last attempt's error is the job's). */
  error?: { code: string; message: string };
}

export interface JobRecord extends JobInfo {
  jobId: string;
  tenant: string;
  spec: JobSpec;
  createdAt: string;
  cancelRequestedAt?: string;
  /** Set once the job has stopped because of a cancel: the job is `cancelled` whatever BullMQ says. */
  cancelledAt?: string;
}

const INFO_FIELDS = ["backend", "engine", "stepEngine", "featureCache", "modelId", "error"] as const;

/** The part of a MULTI that job creation writes through (BullMQ's IRedisTransaction has it). */
export interface TransactionWrites {
  hset(key: string, data: Record<string, string>): unknown;
  runCommand(name: string, args: (string | number)[]): unknown;
}

/**
 * Queues the writes that make a job's record on `tx`: the hash, the tenant's
 * index and the uses sets. Job creation runs them in the same transaction as
 * the queue entry.
 */
export function writeJobRecord(
  tx: TransactionWrites,
  db: JobRedis,
  job: { jobId: string; tenant: string; spec: JobSpec; createdAt: string },
): void {
  tx.hset(jobKeys.record(db, job.jobId), {
    tenant: JSON.stringify(job.tenant),
    spec: JSON.stringify(job.spec),
    createdAt: JSON.stringify(job.createdAt),
  });
  tx.runCommand("zadd", [jobKeys.tenantJobs(db, job.tenant), Date.parse(job.createdAt), job.jobId]);
  tx.runCommand("sadd", [jobKeys.uses(db, job.tenant, "dataset", job.spec.datasetId), job.jobId]);
  if (job.spec.baseWeights !== "imagenet" && job.spec.baseWeights !== "none") {
    tx.runCommand("sadd", [jobKeys.uses(db, job.tenant, "weights", job.spec.baseWeights), job.jobId]);
  }
}

export async function readJobRecord(db: JobRedis, jobId: string): Promise<JobRecord | null> {
  return parseJobRecord(jobId, await db.redis.hgetall(jobKeys.record(db, jobId)));
}

/** The record from its hash's fields, or null when they are not a record. */
export function parseJobRecord(jobId: string, raw: Record<string, string>): JobRecord | null {
  if (!raw.tenant || !raw.spec) return null;
  const out: Record<string, unknown> = { jobId };
  for (const [field, value] of Object.entries(raw)) out[field] = JSON.parse(value);
  return out as unknown as JobRecord;
}

export async function setJobInfo(db: JobRedis, jobId: string, info: JobInfo): Promise<void> {
  const fields: Record<string, string> = {};
  for (const field of INFO_FIELDS) {
    if (info[field] !== undefined) fields[field] = JSON.stringify(info[field]);
  }
  if (Object.keys(fields).length > 0) await db.redis.hset(jobKeys.record(db, jobId), fields);
}

/**
 * Records one epoch's metrics. A retried attempt that runs an epoch again
 * replaces that epoch's entry, so there is one entry per epoch.
 */
export async function appendEpochMetrics(db: JobRedis, jobId: string, metrics: EpochMetrics): Promise<void> {
  await db.redis.hset(jobKeys.metrics(db, jobId), String(metrics.epoch), JSON.stringify(metrics));
}

/** Every recorded epoch in order, or those after `afterEpoch`. */
export async function readEpochMetrics(db: JobRedis, jobId: string, afterEpoch = 0): Promise<EpochMetrics[]> {
  return parseEpochMetrics(await db.redis.hgetall(jobKeys.metrics(db, jobId)), afterEpoch);
}

/** The metrics hash's entries in epoch order, those after `afterEpoch`. */
export function parseEpochMetrics(raw: Record<string, string>, afterEpoch = 0): EpochMetrics[] {
  return Object.values(raw)
    .map((v) => JSON.parse(v) as EpochMetrics)
    .filter((m) => m.epoch > afterEpoch)
    .sort((a, b) => a.epoch - b.epoch);
}

/** The job stopped because of a cancel request. The worker calls it before ending the BullMQ job. */
export async function markCancelled(db: JobRedis, jobId: string, at = new Date()): Promise<void> {
  await db.redis.hsetnx(jobKeys.record(db, jobId), "cancelledAt", JSON.stringify(at.toISOString()));
}

/** A finished job's keys expire with BullMQ's retention of the job itself. */
export async function expireJobRecord(db: JobRedis, jobId: string, seconds: number): Promise<void> {
  await db.redis
    .multi()
    .expire(jobKeys.record(db, jobId), Math.max(1, Math.ceil(seconds)))
    .expire(jobKeys.metrics(db, jobId), Math.max(1, Math.ceil(seconds)))
    .exec();
}

/** Seconds before a finished record expires; -1 when it has no expiry yet, -2 when it is gone. */
export async function jobRecordTtl(db: JobRedis, jobId: string): Promise<number> {
  return db.redis.ttl(jobKeys.record(db, jobId));
}
