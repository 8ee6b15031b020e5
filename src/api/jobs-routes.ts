// /v1/jobs: create (with Idempotency-Key), read, list, cancel, and the live
// event stream of a job.
import { randomUUID } from "node:crypto";
import type { FastifyPluginAsync } from "fastify";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import type { JobRedis } from "../jobs/job-records.js";
import type { JobEventsHub } from "../jobs/job-events.js";
import type { JobService, JobState } from "../jobs/job-service.js";
import type { JobSpec } from "../jobs/job-spec.js";
import { routeSchema } from "./openapi.js";
import { checkJobSpec } from "../jobs/job-spec-check.js";
import { bodyHash, claimIdempotencyKey, IDEMPOTENCY_CLAIM_SECONDS, type IdempotencyClaim } from "./idempotency.js";
import { streamJobEvents, type EventStreamOptions } from "./job-events-stream.js";
import type { JobWebhooks } from "../webhooks/webhook-queue.js";
import type { TenantQuotas } from "./tenant-quotas.js";
import { isFinalState } from "../jobs/job-service.js";

export interface JobsRoutesOptions {
  storage: Storage;
  config: Config;
  db: JobRedis;
  jobs: JobService;
  hub: JobEventsHub;
  quotas: Pick<TenantQuotas, "claimJob" | "releaseJob" | "eventStream">;
  events: EventStreamOptions;
  /** How long an Idempotency-Key claim lasts without renewal (tests shorten it). */
  idempotencyClaimSeconds?: number;
  /** Queues the job's `job.queued` event, and `job.cancelled` for a job cancelled before a worker took it. */
  webhooks: JobWebhooks;
}

function notFound(id: string): AppError {
  return new AppError("NOT_FOUND", `job ${id} does not exist`, { id });
}

export const jobsRoutes: FastifyPluginAsync<JobsRoutesOptions> = async (app, opts) => {
  const { storage, config, db, jobs, hub, quotas, events, webhooks, idempotencyClaimSeconds = IDEMPOTENCY_CLAIM_SECONDS } = opts;
  // Open event streams end before the server waits for its connections to close.
  const streams = new Set<() => void>();
  app.addHook("preClose", async () => {
    for (const end of streams) end();
  });

  app.post("/v1/jobs", { schema: routeSchema("POST", "/v1/jobs") }, async (request, reply) => {
    // The schema applied the defaults: two bodies that mean the same spec hash the same.
    const spec = request.body as JobSpec;
    const tenant = request.tenant;
    const idempotencyKey = request.headers["idempotency-key"] as string | undefined;
    const jobId = `job_${randomUUID()}`;
    let claim: IdempotencyClaim | undefined;
    if (idempotencyKey !== undefined) {
      const claimed = await claimIdempotencyKey(db, tenant, idempotencyKey, bodyHash(spec), jobId, idempotencyClaimSeconds);
      if ("earlierJobId" in claimed) {
        const view = await jobs.get(tenant, claimed.earlierJobId);
        if (!view)
          throw new AppError("IDEMPOTENCY_KEY_IN_USE", "a request with this Idempotency-Key is still being processed; retry shortly");
        return reply.status(200).send(view);
      }
      claim = claimed.claim;
    }
    let slotTaken = false;
    try {
      await checkJobSpec(spec, tenant, { storage, config });
      await quotas.claimJob(tenant, jobId, async (id) => {
        const earlier = await jobs.get(tenant, id, { metrics: false });
        return earlier && !isFinalState(earlier.state);
      });
      slotTaken = true;
      // The event's time is the job's creation time, so it sorts before the worker's job.running.
      const createdAt = new Date();
      const view = await jobs.create(
        { jobId, tenant, spec, createdAt: createdAt.toISOString() },
        { alsoSet: claim?.final, afterCommit: () => webhooks.notify(jobId, "job.queued", 0, createdAt) },
      );
      request.log.info({ jobId, datasetId: spec.datasetId }, "job queued");
      return reply.status(202).header("location", `/v1/jobs/${jobId}`).send(view);
    } catch (err) {
      if (slotTaken) await quotas.releaseJob(tenant, jobId);
      await claim?.release();
      throw err;
    } finally {
      claim?.end();
    }
  });

  app.get("/v1/jobs", { schema: routeSchema("GET", "/v1/jobs") }, async (request) => {
    const q = request.query as { state?: JobState; limit: number; cursor?: string };
    return jobs.list(request.tenant, q);
  });

  app.get("/v1/jobs/:id", { schema: routeSchema("GET", "/v1/jobs/:id") }, async (request) => {
    const { id } = request.params as { id: string };
    const view = await jobs.get(request.tenant, id, { cached: true });
    if (!view) throw notFound(id);
    return view;
  });

  app.post("/v1/jobs/:id/cancel", { schema: routeSchema("POST", "/v1/jobs/:id/cancel") }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const result = await jobs.cancel(request.tenant, id);
    if (!result) throw notFound(id);
    if (result.accepted) request.log.info({ jobId: id }, "cancel requested");
    else if (result.view.state === "cancelled") await webhooks.notify(id, "job.cancelled", result.view.attempts);
    return reply.status(result.accepted ? 202 : 200).send(result.view);
  });

  app.get("/v1/jobs/:id/events", { schema: routeSchema("GET", "/v1/jobs/:id/events") }, async (request, reply) => {
    const { id } = request.params as { id: string };
    // The quota first: a flood of streams is refused at the cost of two Redis commands each.
    const release = await quotas.eventStream(request.tenant);
    reply.raw.once("close", () => void release());
    const view = await jobs.get(request.tenant, id, { metrics: false });
    if (!view) throw notFound(id);
    await streamJobEvents({ request, reply, jobs, hub, db, view, tenant: request.tenant, options: events, streams });
  });
};
