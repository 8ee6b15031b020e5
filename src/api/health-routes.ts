// Liveness and readiness.
import type { FastifyPluginAsync } from "fastify";
import type { Storage } from "../storage/storage.js";
import { routeSchema } from "./openapi.js";

export const healthRoutes: FastifyPluginAsync<{ storage: Storage }> = async (app, { storage }) => {
  app.get("/healthz", { schema: routeSchema("GET", "/healthz") }, async () => ({ status: "ok" }));

  app.get("/readyz", { schema: routeSchema("GET", "/readyz") }, async (_request, reply) => {
    const checks: Record<string, string> = {};
    try {
      await storage.checkWritable();
      checks.storage = "ok";
    } catch (err) {
      checks.storage = `failed: ${(err as Error).message}`;
    }
    const ready = Object.values(checks).every((v) => v === "ok");
    return reply.status(ready ? 200 : 503).send({ status: ready ? "ready" : "not ready", checks });
  });
};
