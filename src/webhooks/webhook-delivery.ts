// Delivering webhook events: the `webhooks` queue's worker POSTs each event,
// signed with its tenant's secret, and logs every attempt. A non-2xx answer or
// a network error fails the attempt (BullMQ retries it with backoff); a URL
// that now resolves to a private address is given up at once. A job's events
// go out in the order of its changes: an event waits while an earlier one of
// the same job is still being delivered or retried.
import http from "node:http";
import https from "node:https";
import { DelayedError, Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from "bullmq";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { isAppError } from "../errors.js";
import type { JobRedis } from "../jobs/job-records.js";
import { assertPublicLiteral, parseWebhookUrl, publicOnlyLookup } from "./webhook-address.js";
import { serverWebhookSecret, signWebhook, tenantWebhookSecret } from "./webhook-signing.js";
import { appendDeliveryAttempt, isNextInOrder, settleInOrder, WEBHOOK_QUEUE, type WebhookDelivery } from "./webhook-queue.js";

/** A receiver has this long to answer; Standard Webhooks asks receivers to answer quickly and work later. */
const DELIVERY_TIMEOUT_MS = 10_000;
/** How long an event waits before looking again whether the earlier one of its job went out. */
const ORDER_WAIT_MS = 250;

/** One POST; resolves with the status code (any), rejects on network errors, timeouts and refused addresses. */
export async function postWebhook(
  delivery: Pick<WebhookDelivery, "eventId" | "url" | "body">,
  secret: string,
  allowPrivate: boolean,
): Promise<number> {
  const url = parseWebhookUrl(delivery.url);
  if (!allowPrivate) assertPublicLiteral(url);
  const timestamp = Math.floor(Date.now() / 1000);
  const body = Buffer.from(delivery.body);
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": body.length,
        "user-agent": "resnet-finetune-webhooks",
        "webhook-id": delivery.eventId,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(secret, delivery.eventId, timestamp, delivery.body),
      },
      timeout: DELIVERY_TIMEOUT_MS,
      ...(allowPrivate ? {} : { lookup: publicOnlyLookup(delivery.url) }),
    });
    request.on("response", (response) => {
      // The answer's body is not used; drain it so the socket is freed.
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`no answer within ${DELIVERY_TIMEOUT_MS} ms`)));
    request.on("error", reject);
    request.end(body);
  });
}

export function createWebhookWorker(opts: {
  config: Pick<Config, "redisPrefix" | "webhookSecret" | "webhookAllowPrivate" | "jobRetentionDays">;
  connection: ConnectionOptions;
  db: JobRedis;
  log: Logger;
}): Worker<WebhookDelivery> {
  const { config, db, log } = opts;
  const queue = new Queue<WebhookDelivery>(WEBHOOK_QUEUE, { connection: opts.connection, prefix: config.redisPrefix });
  async function deliver(job: Job<WebhookDelivery>, token?: string): Promise<{ statusCode: number }> {
    const delivery = job.data;
    if (!(await isNextInOrder(db, queue, delivery.jobId, delivery.eventId))) {
      await job.moveToDelayed(Date.now() + ORDER_WAIT_MS, token);
      throw new DelayedError();
    }
    try {
      const result = await attempt(job);
      await settleInOrder(db, delivery.jobId, delivery.eventId);
      return result;
    } catch (err) {
      if (err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1))
        await settleInOrder(db, delivery.jobId, delivery.eventId);
      throw err;
    }
  }
  async function attempt(job: Job<WebhookDelivery>): Promise<{ statusCode: number }> {
    const delivery = job.data;
    const secret = tenantWebhookSecret(await serverWebhookSecret(db, config), delivery.tenant);
    const started = Date.now();
    const attemptNumber = job.attemptsMade + 1;
    const record = (ok: boolean, statusCode: number | null, error: string | null) =>
      appendDeliveryAttempt(db, config, delivery.jobId, {
        eventId: delivery.eventId,
        type: delivery.type,
        attempt: attemptNumber,
        url: delivery.url,
        ok,
        statusCode,
        error,
        at: new Date(started).toISOString(),
        durationMs: Date.now() - started,
      });
    let statusCode: number;
    try {
      statusCode = await postWebhook(delivery, secret, config.webhookAllowPrivate);
    } catch (err) {
      const message = (err as Error).message;
      await record(false, null, message);
      log.info({ jobId: delivery.jobId, eventId: delivery.eventId, attempt: attemptNumber, err: { message } }, "webhook delivery failed");
      if (isAppError(err)) throw new UnrecoverableError(message);
      throw err;
    }
    const ok = statusCode >= 200 && statusCode < 300;
    await record(ok, statusCode, ok ? null : `receiver answered ${statusCode}`);
    if (!ok) {
      log.info({ jobId: delivery.jobId, eventId: delivery.eventId, attempt: attemptNumber, statusCode }, "webhook delivery failed");
      throw new Error(`receiver answered ${statusCode}`);
    }
    return { statusCode };
  }
  const worker = new Worker<WebhookDelivery>(WEBHOOK_QUEUE, deliver, {
    connection: opts.connection,
    prefix: config.redisPrefix,
    concurrency: 8,
  });
  worker.on("error", (err) => log.error({ err }, "webhook worker error"));
  worker.on("closed", () => void queue.close());
  return worker;
}
