// GET /metrics in Prometheus format, from a registry owned by the app: HTTP
// request durations, accepted upload bytes, the training queue's depth (read
// from BullMQ at scrape time) and the training metrics the workers report.
import type { FastifyInstance } from "fastify";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Queue, QueueEvents } from "bullmq";
import { routeSchema } from "./openapi.js";
import { observeTraining } from "./prometheus-training-metrics.js";

/** The queue states /metrics reports, as BullMQ names them. */
export const QUEUE_STATES = ["waiting", "prioritized", "active", "delayed", "completed", "failed"] as const;

export interface MetricsOptions {
  queue: Pick<Queue, "getJobCounts" | "getJob">;
  /** Progress/completed/failed events of the training queue, shared with the SSE routes. */
  queueEvents: Pick<QueueEvents, "on" | "off">;
}

/** Registers on the root instance (like registerAuth) so the hooks see every route. */
export function registerMetrics(app: FastifyInstance, { queue, queueEvents }: MetricsOptions): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const requestDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request duration by method, route pattern and status code.",
    labelNames: ["method", "route", "status_code"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers: [registry],
  });
  const uploadBytes = new Counter({
    name: "upload_bytes_total",
    help: "Bytes of accepted multipart uploads (their Content-Length), by route pattern.",
    labelNames: ["route"],
    registers: [registry],
  });
  new Gauge({
    name: "training_queue_jobs",
    help: "Jobs in the training queue by BullMQ state, read at scrape time.",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      try {
        const counts = await queue.getJobCounts(...QUEUE_STATES);
        for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
      } catch (err) {
        // Redis away: the scrape still answers, without queue depth; /readyz says why.
        this.reset();
        app.log.warn({ err: (err as Error).message }, "queue depth unavailable for /metrics");
      }
    },
  });
  const stopObserving = observeTraining(queueEvents, queue, registry, app.log);
  app.addHook("onClose", async () => stopObserving());

  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    requestDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    const length = Number(request.headers["content-length"]);
    const multipart = request.headers["content-type"]?.startsWith("multipart/") ?? false;
    if (multipart && reply.statusCode < 300 && Number.isFinite(length)) uploadBytes.inc({ route }, length);
  });

  app.get("/metrics", { schema: routeSchema("GET", "/metrics") }, async (_request, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
}
