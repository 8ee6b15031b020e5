// buildApp: the whole HTTP API as a Fastify instance that does not listen, so
// tests inject requests or listen on a free port themselves.
import type { EventEmitter } from "node:events";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import multipart from "@fastify/multipart";
import type { Config } from "./config.js";
import { loggerOptions } from "./log.js";
import type { Storage } from "./storage/storage.js";
import { createLocalStorage } from "./storage/local-storage.js";
import { registerErrorHandler, sendError, toAppError, writeClientError } from "./api/error-handler.js";
import { registerRateLimit } from "./api/rate-limit.js";
import { registerBodyIdleTimeout, serverTimeoutOptions } from "./api/timeouts.js";
import { dashboardEnabled, registerAuth } from "./api/auth.js";
import { addOpenApiSchemas, loadOpenApi, OPENAPI_PATH, toOpenApiPath } from "./api/openapi.js";
import { healthRoutes } from "./api/health-routes.js";
import { datasetsRoutes } from "./api/datasets-routes.js";
import { registerMetrics } from "./api/prometheus-metrics.js";
import { registerQueueDashboard } from "./api/queue-dashboard.js";
import { jobsRoutes } from "./api/jobs-routes.js";
import { weightsRoutes } from "./api/weights-routes.js";
import { modelsRoutes } from "./api/models-routes.js";
import { checkpointsRoutes } from "./api/checkpoints-routes.js";
import { EVENT_STREAM_DEFAULTS, type EventStreamOptions } from "./api/job-events-stream.js";
import type { Redis } from "ioredis";
import { createRedis, waitForRedis } from "./jobs/redis.js";
import { createTrainingQueue, type TrainingQueue } from "./jobs/training-queue.js";
import { createTrainingQueueEvents } from "./jobs/training-queue-events.js";
import { jobRedis } from "./jobs/job-records.js";
import { createJobEventsHub, type JobEventsHub } from "./jobs/job-events.js";
import { createJobService, type JobService } from "./jobs/job-service.js";
import { createJobReadCache, type JobReadCache, type JobReadCacheOptions } from "./jobs/job-read-cache.js";
import { createJobWebhooks, createWebhookQueue } from "./webhooks/webhook-queue.js";
import { webhooksRoutes } from "./api/webhooks-routes.js";
import { datasetImagesRoutes } from "./api/dataset-images-routes.js";
import { registerConsole } from "./api/console-files.js";
import { warmMemoryEstimate } from "./network/memory-estimate.js";
import { createTenantQuotas } from "./api/tenant-quotas.js";
import { sweepDataDirScratch } from "./storage/scratch-sweep.js";

export interface AppDeps {
  storage: Storage;
  /** Whether a queued or running job uses a dataset (DELETE answers 409 then); by default, the job records say. */
  isDatasetInUse: (tenant: string, datasetId: string) => Promise<boolean>;
  /** Producer connection (createRedis(url, "producer")). */
  redis: Redis;
  queue: TrainingQueue;
  /** SSE heartbeat and progress throttling (tests shorten them). */
  events: Partial<EventStreamOptions>;
  /** How long an Idempotency-Key claim lasts without renewal (tests shorten it). */
  idempotencyClaimSeconds: number;
  /** The job read cache's bounds (tests lengthen the age bound so that only an invalidation can refresh an entry). */
  jobReadCache: Partial<JobReadCacheOptions>;
  /** Test seam: runs just before a job's creation transaction (see JobServiceDeps). */
  beforeJobCommit: (jobId: string) => Promise<void>;
}

declare module "fastify" {
  interface FastifyInstance {
    /** The API's producer connection (fails fast when Redis is away). */
    redis: Redis;
    /** The training queue this API adds jobs to. */
    queue: TrainingQueue;
    jobs: JobService;
    /** What GET /v1/jobs/{id} reads through (tests check when it is enabled). */
    jobReadCache: JobReadCache;
    /** The process's QueueEvents fan-out to SSE clients (tests check that clients leave no listener behind). */
    jobEvents: JobEventsHub;
    /** "METHOD /path" of every documented route the app serves (openapi.yaml must list the same). */
    routeTable: string[];
  }
}

/** Redis trouble is logged once per distinct message (clients retry every second or two), never thrown. */
function logConnectionErrors(log: FastifyBaseLogger, emitters: Record<string, Pick<EventEmitter, "on">>): void {
  for (const [name, emitter] of Object.entries(emitters)) {
    let last = "";
    emitter.on("error", (err: Error) => {
      if (err.message !== last) log.warn({ connection: name, err: { message: err.message } }, "redis connection trouble");
      last = err.message;
    });
    emitter.on("ready", () => (last = ""));
  }
}

export async function buildApp(config: Config, deps: Partial<AppDeps> = {}): Promise<FastifyInstance> {
  const storage = deps.storage ?? createLocalStorage(config.dataDir);
  const redis = deps.redis ?? createRedis(config.redisUrl, "producer");
  const queue = deps.queue ?? createTrainingQueue(redis, config);
  const queueEvents = createTrainingQueueEvents(config);
  const db = jobRedis(redis, config);
  const webhookQueue = createWebhookQueue(redis, config);
  const quotas = createTenantQuotas({ redis, storage, config });
  // Queues first, then connections; deps given by the caller are the caller's to close.
  // QueueEvents' close never settles while Redis is unreachable, hence the bound.
  const closeConnections = async () => {
    await Promise.race([queueEvents.close(), new Promise((r) => setTimeout(r, 1000).unref())]);
    if (!deps.queue) await queue.close();
    await webhookQueue.close();
    await readCache.close();
    if (!deps.redis) await redis.quit().catch(() => redis.disconnect());
  };

  const app = Fastify({
    logger: loggerOptions(config.logLevel, "api"),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true, allErrors: false } },
    bodyLimit: 1024 * 1024,
    ...serverTimeoutOptions(config),
    // Errors the router raises before any route runs (a malformed or over-long URL) get the error shape too.
    frameworkErrors: (err, _request, reply) => sendError(reply, toAppError(err)),
    clientErrorHandler: writeClientError,
    // onReady waits up to 5 s for Redis after building the memory estimate's model description and sweeping
    // scratch: on a busy host that passes Fastify's default 10 s, and a slow start is not a failed one.
    pluginTimeout: 60_000,
  });
  // GET /v1/jobs/{id} reads through it; its own connection, so a failure leaves the API working uncached.
  const readCache = createJobReadCache({ redisUrl: config.redisUrl, db, queue, log: app.log, options: deps.jobReadCache });
  const jobs = createJobService({ db, queue, config, readCache, beforeCommit: deps.beforeJobCommit });
  // onClose hooks run after Fastify has stopped the server and finished in-flight requests.
  app.addHook("onClose", closeConnections);
  logConnectionErrors(app.log, { redis, queue, queueEvents, jobReadCache: readCache.connection });
  const hub = createJobEventsHub({ queueEvents, config, db, log: app.log });
  app.decorate("redis", redis);
  app.decorate("queue", queue);
  app.decorate("jobs", jobs);
  app.decorate("jobReadCache", readCache);
  app.decorate("jobEvents", hub);
  const routeTable: string[] = [];
  app.decorate("routeTable", routeTable);
  app.addHook("onRoute", (route) => {
    if ((route.schema as { hide?: boolean } | undefined)?.hide || route.url.startsWith("/docs")) return;
    for (const method of [route.method].flat()) if (method !== "HEAD") routeTable.push(`${method} ${toOpenApiPath(route.url)}`);
  });
  // Requests right after start should not fail only because the connection is still opening.
  app.addHook("onReady", async () => {
    // The memory estimate builds its model description once (about a second): before the first POST /v1/jobs, not during it.
    warmMemoryEstimate();
    await sweepDataDirScratch(config, app.log);
    if (!(await waitForRedis(redis, 5_000))) app.log.warn({ redisUrl: config.redisUrl }, "Redis is not reachable yet");
  });

  try {
    // External plugins first, then the app's own, then routes.
    await app.register(swagger, { mode: "static", specification: { document: loadOpenApi() as never, path: OPENAPI_PATH, baseDir: "." } });
    await app.register(swaggerUi, { routePrefix: "/docs" });
    // Uploads are streamed part by part (request.parts()); each route sets its own size limits.
    await app.register(multipart, { limits: { fileSize: config.maxUploadBytes, files: 1, parts: 10, fieldSize: 64 * 1024 } });
    await registerRateLimit(app, redis, config);
    registerErrorHandler(app);
    registerBodyIdleTimeout(app, config);
    registerAuth(app, config);
    addOpenApiSchemas(app);
    registerMetrics(app, { queue, queueEvents });

    app.get("/openapi.json", { schema: { hide: true } }, async () => loadOpenApi());
    await app.register(healthRoutes, { storage, redis });
    await app.register(datasetsRoutes, {
      storage,
      config,
      quotas,
      isDatasetInUse: deps.isDatasetInUse ?? ((tenant, datasetId) => jobs.isInUse(tenant, "dataset", datasetId)),
    });
    await app.register(datasetImagesRoutes, { storage, config });
    await app.register(weightsRoutes, { storage, config, jobs, quotas });
    await app.register(jobsRoutes, {
      storage,
      config,
      db,
      jobs,
      hub,
      quotas,
      events: { ...EVENT_STREAM_DEFAULTS, ...deps.events },
      idempotencyClaimSeconds: deps.idempotencyClaimSeconds,
      webhooks: createJobWebhooks({ queue: webhookQueue, db }),
    });
    await app.register(webhooksRoutes, { config, db, jobs });
    await app.register(checkpointsRoutes, { storage, config, jobs });
    await app.register(modelsRoutes, { storage, config });
    if (dashboardEnabled(config)) await registerQueueDashboard(app, [queue]);
    await registerConsole(app);
  } catch (err) {
    await closeConnections();
    throw err;
  }
  return app;
}
