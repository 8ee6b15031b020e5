// Entry point of a worker process (`npm run worker`): trains jobs of the
// `training` queue in sandboxed children, relays cancel requests to them, and
// on SIGTERM/SIGINT hands running jobs back to the queue before exiting.
import { loadConfig } from "./config.js";
import { createLogger } from "./log.js";
import { createRedis } from "./queue/redis.js";
import { jobRedis } from "./queue/job-records.js";
import { onCancel } from "./queue/cancel.js";
import { createTrainingWorker } from "./worker/training-worker.js";
import { STOP_REASON } from "./worker/stop-reasons.js";
import { sweepDataDirScratch } from "./storage/scratch-sweep.js";

const config = loadConfig();
const log = createLogger(config.logLevel, "worker");
await sweepDataDirScratch(config, log);
const connection = createRedis(config.redisUrl, "consumer");
const training = createTrainingWorker({ config, connection, log });
const stopListening = await onCancel(jobRedis(connection, config), (jobId) => {
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
  connection.disconnect();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
