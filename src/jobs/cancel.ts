// Cancelling across processes: the API records the request on the job and
// publishes the id; a worker on any host hears it (onCancel) and stops the job
// at the next batch, and a worker that starts the job later sees the flag.
import type { JobRedis } from "./job-records.js";
import { jobKeys } from "./job-records.js";

export async function requestCancel(db: JobRedis, jobId: string, at = new Date()): Promise<void> {
  await db.redis
    .multi()
    .hsetnx(jobKeys.record(db, jobId), "cancelRequestedAt", JSON.stringify(at.toISOString()))
    .publish(jobKeys.cancelChannel(db), jobId)
    .exec();
}

export async function isCancelRequested(db: JobRedis, jobId: string): Promise<boolean> {
  return (await db.redis.hexists(jobKeys.record(db, jobId), "cancelRequestedAt")) === 1;
}

/**
 * Calls `handler(jobId)` for every cancel request published from now on, on a
 * dedicated subscriber connection (resubscribed after a reconnect). Resolves
 * once subscribed, to a function that unsubscribes and closes it.
 */
export async function onCancel(db: JobRedis, handler: (jobId: string) => void): Promise<() => Promise<void>> {
  const channel = jobKeys.cancelChannel(db);
  const subscriber = db.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  subscriber.on("error", () => {
    // Reconnects on its own; the owner of `db.redis` logs connection trouble.
  });
  subscriber.on("message", (ch: string, jobId: string) => {
    if (ch === channel) handler(jobId);
  });
  await subscriber.subscribe(channel);
  return async () => {
    subscriber.disconnect();
  };
}
