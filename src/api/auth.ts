// API keys: `Authorization: Bearer <key>` names the tenant that owns every
// dataset, weights file, job and model the request touches. Keys are compared
// in constant time and never logged. With no keys configured, every request
// belongs to the tenant "default".
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError } from "../errors.js";

export const DEFAULT_TENANT = "default";

declare module "fastify" {
  interface FastifyRequest {
    tenant: string;
  }
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** Finds the tenant whose key matches, comparing every key so timing reveals nothing. */
export function tenantForKey(keys: Map<string, string>, presented: string): string | undefined {
  const given = digest(presented);
  let found: string | undefined;
  for (const [tenant, key] of keys) {
    if (timingSafeEqual(digest(key), given) && found === undefined) found = tenant;
  }
  return found;
}

/** Paths that need no key: liveness, readiness, metrics, the API docs and the console's static files. */
export function isPublicPath(url: string): boolean {
  const p = url.split("?")[0];
  return p === "/" || p.startsWith("/console/") || p === "/healthz" || p === "/readyz" || p === "/metrics" || p === "/openapi.json" || p === "/docs" || p.startsWith("/docs/");
}

export function registerAuth(app: FastifyInstance, keys: Map<string, string>): void {
  app.decorateRequest("tenant", DEFAULT_TENANT);
  if (keys.size === 0) return;
  app.addHook("onRequest", async (request: FastifyRequest) => {
    if (isPublicPath(request.url)) return;
    const header = request.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const tenant = match ? tenantForKey(keys, match[1]) : undefined;
    if (!tenant) throw new AppError("UNAUTHORIZED", "missing or invalid API key: send Authorization: Bearer <key>");
    request.tenant = tenant;
  });
}
