// The BullMQ Worker of the training queue. Training runs in a sandboxed child
// process per job (it blocks its event loop for seconds at a time); this
// process only holds the job's lock, relays stop requests and survives the
// child's crash, which BullMQ reports as a failed attempt and retries.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, type ConnectionOptions } from "bullmq";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { TRAINING_QUEUE, type TrainingJobPayload } from "../jobs/training-queue.js";
import { expireJobRecord, type JobRedis } from "../jobs/job-records.js";
import { childEnvironment } from "./child-env.js";
import { ORT_MALLOC_ENV } from "../engine/onnx/ort-session.js";
import { STOP_REASON, type StopReason } from "./stop-reasons.js";

/**
 * A job whose lock expired (its worker died: kill -9, host lost) goes back to
 * the queue at most this many times; one more stall fails it. Two lets a job
 * survive one lost worker plus one unlucky shutdown.
 */
const MAX_STALLED_COUNT = 2;

/** The processor next to this file: .ts under tsx, .js once built into dist/. */
export function defaultProcessorFile(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), `training-processor${path.extname(here)}`);
}

/**
 * Node flags the child needs to load the processor: the loaders of this
 * process (`--import tsx` in development and tests), none of the others
 * (`--test`, `--inspect`, `--watch` would change what the child does).
 */
export function childExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i];
    if (["--import", "--require", "-r", "--loader", "--experimental-loader"].includes(arg) && i + 1 < execArgv.length) {
      out.push(arg, execArgv[++i]);
    } else if (/^--(import|require|loader|experimental-loader|conditions|enable-source-maps|max-old-space-size)(=|$)/.test(arg)) {
      out.push(arg);
    }
  }
  return out;
}

export interface TrainingWorkerOptions {
  config: Config;
  connection: ConnectionOptions;
  /** Where a finished job's record gets its expiry (the API's event listeners set it too, but may be down then). */
  db: JobRedis;
  log: Logger;
  /** Defaults to the training processor; tests pass their own. */
  processorFile?: string;
  /**
   * Environment of the training children on top of this process's (tests give their REDIS_URL and
   * DATA_DIR); both are reduced to the allow-list of childEnvironment().
   */
  env?: NodeJS.ProcessEnv;
}

export interface TrainingWorker {
  worker: Worker;
  /** Asks the job's child to stop at the next batch boundary; false when this worker does not run it. */
  stopJob(jobId: string, reason: StopReason): boolean;
  /** Running jobs stop at the next batch boundary and go back to the queue; then the worker closes. */
  shutdown(): Promise<void>;
}

export function createTrainingWorker(opts: TrainingWorkerOptions): TrainingWorker {
  const { config, log } = opts;
  const worker = new Worker<TrainingJobPayload>(TRAINING_QUEUE, opts.processorFile ?? defaultProcessorFile(), {
    connection: opts.connection,
    prefix: config.redisPrefix,
    concurrency: config.workerConcurrency,
    // The lock is renewed by this process, whose event loop training never
    // blocks, so it can be short: a dead worker's job is picked up again
    // within about lockDuration + stalledInterval.
    lockDuration: config.workerLockDurationMs,
    stalledInterval: config.workerStalledIntervalMs,
    maxStalledCount: MAX_STALLED_COUNT,
    workerForkOptions: {
      execArgv: childExecArgv(),
      // A child that may run the tail's step on ONNX Runtime needs glibc's settings from its start (ORT_MALLOC_ENV).
      env: { ...childEnvironment({ ...process.env, ...opts.env }), ...(config.trainingEngine === "tfjs" ? {} : ORT_MALLOC_ENV) },
    },
  });
  worker.on("active", (job) => log.info({ jobId: job.id, attemptsMade: job.attemptsMade }, "job started"));
  const retentionSeconds = config.jobRetentionDays * 24 * 3600;
  const expire = (jobId: string) =>
    expireJobRecord(opts.db, jobId, retentionSeconds).catch((err) => log.warn({ jobId, err }, "could not set job expiry"));
  worker.on("completed", (job) => {
    log.info({ jobId: job.id }, "job completed");
    void expire(job.id!);
  });
  worker.on("failed", (job, err) => {
    log.warn({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: { name: err.name, message: err.message } }, "job attempt failed");
    // A failed attempt may be retried; only the last one finishes the job.
    if (job) {
      void job.isFailed().then(
        (final) => (final ? expire(job.id!) : undefined),
        () => undefined,
      );
    }
  });
  worker.on("error", (err) => log.error({ err }, "worker error"));

  let shuttingDown: Promise<void> | undefined;
  return {
    worker,
    stopJob(jobId, reason) {
      return worker.cancelJob(jobId, reason);
    },
    shutdown() {
      shuttingDown ??= (async () => {
        // close() first: from then on no new job is taken, then the running ones are told to stop.
        const closed = worker.close();
        worker.cancelAllJobs(STOP_REASON.shutdown);
        await closed;
      })();
      return shuttingDown;
    },
  };
}
