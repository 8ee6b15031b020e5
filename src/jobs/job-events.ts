// The API process's one BullMQ QueueEvents subscription, fanned out to the SSE
// clients of each job. A client's listener is dropped when it unsubscribes,
// and a job with no listener left leaves the map, so nothing outlives a client.
import type { QueueEvents } from "bullmq";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { expireJobRecord, type JobRedis } from "./job-records.js";
import type { JobProgress } from "./training-queue.js";

export type JobEvent =
  | { type: "state"; state: "queued" | "running" }
  | { type: "progress"; progress: JobProgress }
  /** BullMQ is done with the job (completed, failed or removed); read the job to know how it ended. */
  | { type: "finished" };

export type JobEventListener = (event: JobEvent) => void;

export interface JobEventsHub {
  subscribe(jobId: string, listener: JobEventListener): () => void;
  /** Listeners currently registered, over all jobs (tests check nothing leaks). */
  listenerCount(): number;
}

/** Listens on `queueEvents` (createTrainingQueueEvents; its owner closes it). */
export function createJobEventsHub(opts: {
  queueEvents: QueueEvents;
  config: Pick<Config, "jobRetentionDays">;
  db: JobRedis;
  log: Pick<Logger, "warn">;
}): JobEventsHub {
  const { queueEvents, config, db, log } = opts;
  const listeners = new Map<string, Set<JobEventListener>>();

  function dispatch(jobId: string, event: JobEvent): void {
    for (const listener of listeners.get(jobId) ?? []) listener(event);
  }

  queueEvents.on("waiting", ({ jobId }) => dispatch(jobId, { type: "state", state: "queued" }));
  queueEvents.on("delayed", ({ jobId }) => dispatch(jobId, { type: "state", state: "queued" }));
  queueEvents.on("active", ({ jobId }) => dispatch(jobId, { type: "state", state: "running" }));
  queueEvents.on("progress", ({ jobId, data }) => {
    if (data && typeof data === "object") dispatch(jobId, { type: "progress", progress: data as JobProgress });
  });
  const finished = ({ jobId }: { jobId: string }) => {
    // Every replica sees it; setting the same expiry twice is harmless.
    expireJobRecord(db, jobId, config.jobRetentionDays * 24 * 3600).catch((err) => log.warn({ err, jobId }, "could not set job expiry"));
    dispatch(jobId, { type: "finished" });
  };
  queueEvents.on("completed", finished);
  queueEvents.on("failed", finished);
  queueEvents.on("removed", finished);

  return {
    subscribe(jobId, listener) {
      let set = listeners.get(jobId);
      if (!set) {
        set = new Set();
        listeners.set(jobId, set);
      }
      set.add(listener);
      return () => {
        const current = listeners.get(jobId);
        if (!current) return;
        current.delete(listener);
        if (current.size === 0) listeners.delete(jobId);
      };
    },
    listenerCount() {
      let n = 0;
      for (const set of listeners.values()) n += set.size;
      return n;
    },
  };
}
