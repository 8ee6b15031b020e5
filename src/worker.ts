// Entry point of a worker process (`npm run worker`): refuses to start when
// TFJS_BACKEND cannot be loaded, trains jobs of the `training` queue in
// sandboxed children, relays cancel requests to them, delivers the jobs'
// webhook events, and on SIGTERM/SIGINT hands running jobs back to the queue
// before exiting.
import { loadConfig } from "./config.js";
import { createLogger } from "./log.js";
import { createRedis } from "./jobs/redis.js";
import { jobRedis } from "./jobs/job-records.js";
import { onCancel } from "./jobs/cancel.js";
import { createTrainingWorker } from "./worker/training-worker.js";
import { STOP_REASON } from "./worker/stop-reasons.js";
import { checkBackend } from "./worker/backend-check.js";
import { createJobWebhooks, createWebhookQueue } from "./webhooks/webhook-queue.js";
import { createWebhookWorker } from "./webhooks/webhook-delivery.js";
import { emitTrainingWebhooks } from "./webhooks/training-webhooks.js";
import { sweepDataDirScratch } from "./storage/scratch-sweep.js";

const config = loadConfig();
const log = createLogger(config.logLevel, "worker");
// Without its backend every job would fail here, attempt after attempt: better
// no worker at all (a supervisor shows the reason) than one that eats the queue.
try {
  const backend = await checkBackend(config.tfjsBackend);
  log.info({ requested: config.tfjsBackend, backend: backend.name, skipped: backend.skipped }, "tfjs backend available");
} catch (err) {
  const e = err as { code?: string; message?: string; details?: unknown };
  log.fatal(
    { code: e.code, requested: config.tfjsBackend, reason: e.message, details: e.details },
    "worker refuses to start: TFJS_BACKEND cannot be used",
  );
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  process.exit(1);
}
await sweepDataDirScratch(config, log);
const connection = createRedis(config.redisUrl, "consumer");
const db = jobRedis(connection, config);
const training = createTrainingWorker({ config, connection, db, log });
// Webhook deliveries are plain HTTP work: this process sends them next to supervising training.
const webhookQueue = createWebhookQueue(connection, config);
emitTrainingWebhooks(training.worker, { webhooks: createJobWebhooks({ queue: webhookQueue, db }), db, log });
const webhookWorker = createWebhookWorker({ config, connection, db, log });
const stopListening = await onCancel(db, (jobId) => {
  if (training.stopJob(jobId, STOP_REASON.cancel)) log.info({ jobId }, "cancel requested: stopping at the next batch");
});
log.info(
  { concurrency: config.workerConcurrency, lockDurationMs: config.workerLockDurationMs, stalledIntervalMs: config.workerStalledIntervalMs },
  "worker started",
);

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  log.info({ signal }, "shutting down: running jobs stop at the next batch and go back to the queue");
  const timer = setTimeout(() => {
    log.error("shutdown timed out");
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  await stopListening();
  await training.shutdown();
  await webhookWorker.close();
  await webhookQueue.close();
  connection.disconnect();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
