// The `webhooks` BullMQ queue: one job per event delivery (its id is the
// event id, so a change reported twice is delivered once), retried with
// exponential backoff; and each job's delivery log in Redis.
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import { jobKeys, readJobRecord, type JobRedis } from "../jobs/job-records.js";
import { webhookEventId, type WebhookEvent, type WebhookEventType } from "./webhook-events.js";

export const WEBHOOK_QUEUE = "webhooks";
/** The first try and 7 retries: with the default 5 s backoff, the last is about 10 minutes after the event. */
export const WEBHOOK_ATTEMPTS = 8;
/** Entries kept per job's delivery log (newest kept). */
const LOG_LIMIT = 200;

export interface WebhookDelivery {
  eventId: string;
  jobId: string;
  tenant: string;
  url: string;
  type: WebhookEventType;
  /** The JSON body, fixed at the event so every retry sends the same bytes. */
  body: string;
}

export interface DeliveryAttempt {
  eventId: string;
  type: WebhookEventType;
  attempt: number;
  url: string;
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  at: string;
  durationMs: number;
}

export type WebhookQueue = Queue<WebhookDelivery>;

export function createWebhookQueue(
  connection: Redis,
  config: Pick<Config, "redisPrefix" | "jobRetentionDays" | "webhookRetryBackoffMs">,
): WebhookQueue {
  const age = config.jobRetentionDays * 24 * 3600;
  return new Queue<WebhookDelivery>(WEBHOOK_QUEUE, {
    connection,
    prefix: config.redisPrefix,
    defaultJobOptions: {
      attempts: WEBHOOK_ATTEMPTS,
      backoff: { type: "exponential", delay: config.webhookRetryBackoffMs },
      removeOnComplete: { age },
      removeOnFail: { age },
    },
  });
}

/** Sends a job's state change to its webhook, if its spec has one that wants this event. */
export function createJobWebhooks(deps: { queue: WebhookQueue; db: JobRedis }) {
  return {
    async notify(jobId: string, type: WebhookEventType, attempt: number, at = new Date()): Promise<void> {
      const record = await readJobRecord(deps.db, jobId);
      const hook = record?.spec.webhook;
      if (!record || !hook?.events.includes(type)) return;
      const event: WebhookEvent = {
        type,
        timestamp: at.toISOString(),
        data: {
          jobId,
          state: type.slice("job.".length) as WebhookEvent["data"]["state"],
          datasetId: record.spec.datasetId,
          attempt,
          modelId: record.modelId ?? null,
          error: type === "job.failed" ? (record.error ?? { code: "TRAINING_FAILED", message: "training failed" }) : null,
        },
      };
      const eventId = webhookEventId(jobId, type, attempt);
      // Registered before it is queued, so a delivery never overtakes an earlier change of the same job.
      const pending = jobKeys.webhookPending(deps.db, jobId);
      await deps.db.redis
        .multi()
        .zadd(pending, "NX", String(at.getTime()), eventId)
        .expire(pending, 30 * 24 * 3600)
        .exec();
      await deps.queue.add(
        type,
        { eventId, jobId, tenant: record.tenant, url: hook.url, type, body: JSON.stringify(event) },
        { jobId: eventId },
      );
    },
  };
}

export type JobWebhooks = ReturnType<typeof createJobWebhooks>;

export async function appendDeliveryAttempt(
  db: JobRedis,
  config: Pick<Config, "jobRetentionDays">,
  jobId: string,
  entry: DeliveryAttempt,
): Promise<void> {
  const key = jobKeys.webhookDeliveries(db, jobId);
  await db.redis
    .multi()
    .rpush(key, JSON.stringify(entry))
    .ltrim(key, -LOG_LIMIT, -1)
    .expire(key, config.jobRetentionDays * 24 * 3600)
    .exec();
}

/**
 * Whether this event is the job's oldest one still to deliver. An older entry
 * whose delivery BullMQ no longer holds (removed by hand) is dropped, so one
 * lost entry cannot hold the others back.
 */
export async function isNextInOrder(
  db: JobRedis,
  queue: Pick<WebhookQueue, "getJobState">,
  jobId: string,
  eventId: string,
): Promise<boolean> {
  const key = jobKeys.webhookPending(db, jobId);
  for (;;) {
    const [head] = await db.redis.zrange(key, "0", "0");
    if (head === undefined || head === eventId) return true;
    const state = await queue.getJobState(head);
    if (state !== "unknown" && state !== "completed" && state !== "failed") return false;
    await db.redis.zrem(key, head);
  }
}

/** The event was delivered, or given up: the next one of its job may go. */
export async function settleInOrder(db: JobRedis, jobId: string, eventId: string): Promise<void> {
  await db.redis.zrem(jobKeys.webhookPending(db, jobId), eventId);
}

/** Oldest first. */
export async function readDeliveryLog(db: JobRedis, jobId: string): Promise<DeliveryAttempt[]> {
  return (await db.redis.lrange(jobKeys.webhookDeliveries(db, jobId), 0, -1)).map((line) => JSON.parse(line) as DeliveryAttempt);
}
