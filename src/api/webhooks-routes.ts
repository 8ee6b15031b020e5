// Webhooks as the API shows them: the caller's signing secret and a job's
// delivery log (every attempt, oldest first).
import type { FastifyPluginAsync } from "fastify";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { JobRedis } from "../jobs/job-records.js";
import type { JobService } from "../jobs/job-service.js";
import { readDeliveryLog } from "../webhooks/webhook-queue.js";
import { serverWebhookSecret, tenantWebhookSecret } from "../webhooks/webhook-signing.js";
import { routeSchema } from "./openapi.js";

export interface WebhooksRoutesOptions {
  config: Config;
  db: JobRedis;
  jobs: Pick<JobService, "get">;
}

export const webhooksRoutes: FastifyPluginAsync<WebhooksRoutesOptions> = async (app, { config, db, jobs }) => {
  app.get("/v1/webhook-secret", { schema: routeSchema("GET", "/v1/webhook-secret") }, async (request, reply) => {
    reply.header("cache-control", "no-store");
    return { secret: tenantWebhookSecret(await serverWebhookSecret(db, config), request.tenant) };
  });

  app.get("/v1/jobs/:id/webhook-deliveries", { schema: routeSchema("GET", "/v1/jobs/:id/webhook-deliveries") }, async (request) => {
    const { id } = request.params as { id: string };
    if (!(await jobs.get(request.tenant, id, { metrics: false }))) throw new AppError("NOT_FOUND", `job ${id} does not exist`, { id });
    return { items: await readDeliveryLog(db, id) };
  });
};
