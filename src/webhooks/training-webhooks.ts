// The training worker's state changes as webhook events: running when an
// attempt starts, completed, and failed or cancelled once BullMQ gives up on
// the job (a failed attempt that will be retried is no state change).
import type { Job, Worker } from "bullmq";
import type { Logger } from "../log.js";
import { readJobRecord, type JobRedis } from "../jobs/job-records.js";
import type { JobWebhooks } from "./webhook-queue.js";
import type { WebhookEventType } from "./webhook-events.js";

export function emitTrainingWebhooks(
  worker: Pick<Worker, "on">,
  deps: { webhooks: JobWebhooks; db: JobRedis; log: Pick<Logger, "warn"> },
): void {
  const { webhooks, db, log } = deps;
  const send = (job: Job | undefined, type: WebhookEventType | Promise<WebhookEventType | null>) => {
    if (!job?.id) return;
    const jobId = job.id;
    void Promise.resolve(type)
      .then((t) => t && webhooks.notify(jobId, t, job.attemptsStarted))
      .catch((err) => log.warn({ jobId, err: { message: (err as Error).message } }, "could not queue a webhook event"));
  };
  worker.on("active", (job: Job) => send(job, "job.running"));
  worker.on("completed", (job: Job) => send(job, "job.completed"));
  worker.on("failed", (job: Job | undefined) =>
    send(
      job,
      (async () => {
        if (!job || (await job.getState()) !== "failed") return null;
        return (await readJobRecord(db, job.id!))?.cancelledAt ? "job.cancelled" : "job.failed";
      })(),
    ),
  );
}
