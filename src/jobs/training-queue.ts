// The one BullMQ queue, "training": its typed payload and progress, and every
// job option in one place. The BullMQ job id is the API's job id.
import { Job, Queue, type IRedisTransaction, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import type { JobSpec } from "./job-spec.js";
import type { EpochMetrics } from "../training/epoch-metrics.js";

export const TRAINING_QUEUE = "training";
export const TRAINING_JOB_NAME = "train";

/** A failed attempt is retried twice: after RETRY_BACKOFF_MS (config.retryBackoffMs), then twice that. */
export const TRAINING_ATTEMPTS = 3;

export interface TrainingJobPayload {
  /** `job_<uuid>`, also the BullMQ job id. */
  jobId: string;
  tenant: string;
  /** Validated against the dataset and weights, defaults applied. */
  spec: JobSpec;
  /** ISO 8601. */
  createdAt: string;
}

/**
 * What the worker passes to `job.updateProgress()`. Epochs are 1-based. A plain
 * update is a batch-level `progress` event (send at most ~2 per second); an
 * update carrying `metrics` (after appendEpochMetrics) is an `epoch` event; one
 * carrying `checkpoint` (after the checkpoint is stored) is a `checkpoint` event.
 */
export interface JobProgress {
  /** Current epoch, 1..epochs. */
  epoch: number;
  epochs: number;
  /** Batches done in the current epoch, 0..batches. */
  batch: number;
  batches: number;
  /** Share of the whole job done, 0..1. */
  fraction: number;
  backend?: string;
  featureCache?: boolean;
  metrics?: EpochMetrics;
  checkpoint?: { epoch: number };
}

export type TrainingQueue = Queue<TrainingJobPayload, unknown, typeof TRAINING_JOB_NAME>;

/** Completed and failed jobs stay JOB_RETENTION_DAYS (BullMQ removes them lazily after that age). */
export function trainingJobOptions(config: Pick<Config, "jobRetentionDays" | "retryBackoffMs">): JobsOptions {
  const age = config.jobRetentionDays * 24 * 3600;
  return {
    attempts: TRAINING_ATTEMPTS,
    backoff: { type: "exponential", delay: config.retryBackoffMs },
    removeOnComplete: { age },
    removeOnFail: { age },
  };
}

/** The queue on a producer connection; workers open their own with createRedis(url, "consumer"). */
export function createTrainingQueue(
  connection: Redis,
  config: Pick<Config, "redisPrefix" | "jobRetentionDays" | "retryBackoffMs">,
): TrainingQueue {
  return new Queue<TrainingJobPayload, unknown, typeof TRAINING_JOB_NAME>(TRAINING_QUEUE, {
    connection,
    prefix: config.redisPrefix,
    defaultJobOptions: trainingJobOptions(config),
  });
}

/**
 * Puts the job's insert into `tx`, a transaction on the queue's own client
 * (`queue.getBackend().client`), so the queue entry lands together with
 * whatever else `tx` writes. Job.addJob takes a transaction for this purpose
 * (BullMQ's flows use it); the queue's default options apply as in queue.add().
 */
export async function addTrainingJobTo(tx: IRedisTransaction, queue: TrainingQueue, payload: TrainingJobPayload): Promise<void> {
  const job = new Job<TrainingJobPayload, unknown, typeof TRAINING_JOB_NAME>(
    queue,
    TRAINING_JOB_NAME,
    payload,
    { ...queue.defaultJobOptions, jobId: payload.jobId },
    payload.jobId,
  );
  await job.addJob(tx);
}
