// Training metrics reported by the workers, observed by the API from the
// training queue's events (progress updates carrying epoch metrics, completed
// and failed jobs). Every API replica sees every event, so each replica reports
// the same cluster-wide values: aggregate them with max(), not sum().
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Queue, QueueEvents } from "bullmq";
import type { Logger } from "pino";
import type { JobProgress } from "../jobs/training-queue.js";

type JobEvents = Pick<QueueEvents, "on" | "off">;

/** Starts counting; returns the function that stops listening. */
export function observeTraining(
  events: JobEvents,
  queue: Pick<Queue, "getJob">,
  registry: Registry,
  log: Pick<Logger, "warn">,
): () => void {
  const labelNames = ["backend", "feature_cache"] as const;
  const epochDuration = new Histogram({
    name: "training_epoch_duration_seconds",
    help: "Duration of finished training epochs, by tfjs backend and whether the frozen-trunk feature cache was used.",
    labelNames,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600],
    registers: [registry],
  });
  const imagesPerSecond = new Gauge({
    name: "training_images_per_second",
    help: "Training throughput of the most recent finished epoch, by tfjs backend and feature cache use.",
    labelNames,
    registers: [registry],
  });
  const epochs = new Counter({
    name: "training_epochs_total",
    help: "Finished training epochs, by tfjs backend and feature cache use.",
    labelNames,
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: "training_job_duration_seconds",
    help: "Time from the start of a job's last attempt to its completion or final failure, by outcome.",
    labelNames: ["outcome"],
    buckets: [10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400],
    registers: [registry],
  });

  // A job's epoch is counted once, even if an update repeats its metrics.
  const lastEpoch = new Map<string, number>();

  const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
    const progress = data as Partial<JobProgress> | null;
    const metrics = progress && typeof progress === "object" ? progress.metrics : undefined;
    if (!metrics || metrics.epoch <= (lastEpoch.get(jobId) ?? 0)) return;
    lastEpoch.set(jobId, metrics.epoch);
    const labels = { backend: progress?.backend ?? "unknown", feature_cache: String(progress?.featureCache ?? false) };
    epochDuration.observe(labels, metrics.seconds);
    imagesPerSecond.set(labels, metrics.imagesPerSecond);
    epochs.inc(labels);
  };

  const onFinished =
    (outcome: "completed" | "failed") =>
    async ({ jobId }: { jobId: string }) => {
      lastEpoch.delete(jobId);
      try {
        const job = await queue.getJob(jobId);
        if (job?.processedOn && job.finishedOn) jobDuration.observe({ outcome }, (job.finishedOn - job.processedOn) / 1000);
      } catch (err) {
        log.warn({ jobId, err: (err as Error).message }, "job duration not recorded");
      }
    };
  const onCompleted = onFinished("completed");
  const onFailed = onFinished("failed");

  events.on("progress", onProgress);
  events.on("completed", onCompleted);
  events.on("failed", onFailed);
  return () => {
    events.off("progress", onProgress);
    events.off("completed", onCompleted);
    events.off("failed", onFailed);
  };
}
