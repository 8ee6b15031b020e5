// Liveness (/healthz: the process answers) and readiness (/readyz: Redis
// answers PING and storage is writable; 503 naming the failing part).
import type { FastifyPluginAsync } from "fastify";
import type { Redis } from "ioredis";
import type { Storage } from "../storage/storage.js";
import { currentBackend } from "../backend/select-backend.js";
import { routeSchema } from "./openapi.js";

/** A dependency slower than this counts as failing: a probe must answer quickly. */
export const READINESS_TIMEOUT_MS = 1000;

async function check(run: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${READINESS_TIMEOUT_MS} ms`)), READINESS_TIMEOUT_MS);
  });
  try {
    await Promise.race([run(), timeout]);
    return "ok";
  } catch (err) {
    return `failed: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

export const healthRoutes: FastifyPluginAsync<{ storage: Storage; redis: Pick<Redis, "ping"> }> = async (app, { storage, redis }) => {
  app.get("/healthz", { schema: routeSchema("GET", "/healthz") }, async () => ({ status: "ok" }));

  app.get("/readyz", { schema: routeSchema("GET", "/readyz") }, async (_request, reply) => {
    const [redisCheck, storageCheck] = await Promise.all([check(() => redis.ping()), check(() => storage.checkWritable())]);
    const checks = { redis: redisCheck, storage: storageCheck };
    const ready = Object.values(checks).every((v) => v === "ok");
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "not ready", checks, backend: currentBackend()?.name ?? null });
  });
};
