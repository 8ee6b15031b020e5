// Request rate limiting per tenant (per IP for requests without a valid key),
// counted in Redis so the limit holds across API replicas (within the bound
// rate-limit-store.ts states). Probes are exempt.
// When Redis is away the limit is skipped: /readyz reports the outage, and
// refusing every request for it would turn a Redis blip into an outage.
import type { FastifyInstance, FastifyRequest } from "fastify";
import rateLimit from "@fastify/rate-limit";
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import { keyTenant } from "./auth.js";
import { createBatchedStore, RATE_LIMIT_SLACK_SHARE } from "./rate-limit-store.js";

const EXEMPT = new Set(["/healthz", "/readyz"]);

function rateLimitKey(request: FastifyRequest, apiKeys: Map<string, string>): string {
  const tenant = keyTenant(request, apiKeys);
  return tenant !== undefined ? `tenant:${tenant}` : `ip:${request.ip}`;
}

export async function registerRateLimit(
  app: FastifyInstance,
  redis: Redis,
  config: Pick<Config, "rateLimitMax" | "rateLimitWindowMs" | "redisPrefix" | "apiKeys">,
): Promise<void> {
  const store = createBatchedStore({
    redis,
    nameSpace: `${config.redisPrefix}:rate-limit:`,
    slack: Math.floor(config.rateLimitMax * RATE_LIMIT_SLACK_SHARE),
  });
  // Counts admitted but not yet sent go to Redis before the connections close.
  app.addHook("onClose", () => store.close());
  await app.register(rateLimit, {
    global: true,
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    // The plugin builds its store with `new`; this one is made above, with its Redis client.
    store: function BatchedStore() {
      return store;
    } as never,
    skipOnError: true,
    keyGenerator: (request) => rateLimitKey(request, config.apiKeys),
    allowList: (request) => EXEMPT.has(request.url.split("?")[0]),
    errorResponseBuilder: (_request, context) =>
      new AppError("TOO_MANY_REQUESTS", `more than ${context.max} requests in ${config.rateLimitWindowMs} ms; retry in ${context.after}`, {
        limit: context.max,
        windowMs: config.rateLimitWindowMs,
        retryAfterSeconds: Math.ceil(context.ttl / 1000),
      }),
  });
}
