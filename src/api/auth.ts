// Who may call what. API keys: `Authorization: Bearer <key>` names the tenant
// that owns every dataset, weights file, job and model the request touches;
// with no keys configured every request belongs to the tenant "default".
// Admin keys (ADMIN_KEYS) open the queue dashboard, which shows every tenant's
// jobs: a tenant key never does. METRICS_TOKEN, when set, guards /metrics.
// Keys are compared in constant time and never logged.
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { AppError } from "../errors.js";
import type { Config } from "../config.js";

export const DEFAULT_TENANT = "default";
export const ADMIN_PREFIX = "/admin";

declare module "fastify" {
  interface FastifyRequest {
    tenant: string;
  }
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** The configured keys' digests, made once per key map (config maps are not changed after loading). */
const keyDigests = new WeakMap<Map<string, string>, [string, Buffer][]>();

function digestsOf(keys: Map<string, string>): [string, Buffer][] {
  let digests = keyDigests.get(keys);
  if (!digests) {
    digests = [...keys].map(([tenant, key]) => [tenant, digest(key)]);
    keyDigests.set(keys, digests);
  }
  return digests;
}

/** Finds the tenant whose key matches, comparing every key so timing reveals nothing. */
export function tenantForKey(keys: Map<string, string>, presented: string): string | undefined {
  const given = digest(presented);
  let found: string | undefined;
  for (const [tenant, key] of digestsOf(keys)) {
    if (timingSafeEqual(key, given) && found === undefined) found = tenant;
  }
  return found;
}

/** The tenant each request's API key names (undefined: no key, or not a tenant's): auth and the rate limit both ask. */
const keyTenants = new WeakMap<FastifyRequest, string | undefined>();

export function keyTenant(request: FastifyRequest, keys: Map<string, string>): string | undefined {
  if (keyTenants.has(request)) return keyTenants.get(request);
  const key = keys.size > 0 ? bearer(request) : undefined;
  const tenant = key !== undefined ? tenantForKey(keys, key) : undefined;
  keyTenants.set(request, tenant);
  return tenant;
}

/** Paths that need no key: liveness, readiness, the API docs and the console's static files (/metrics has its own token). */
export function isPublicPath(url: string): boolean {
  const p = url.split("?")[0];
  return (
    p === "/" ||
    p.startsWith("/console/") ||
    p === "/healthz" ||
    p === "/readyz" ||
    p === "/openapi.json" ||
    p === "/docs" ||
    p.startsWith("/docs/")
  );
}

function isAdminPath(url: string): boolean {
  const p = url.split("?")[0];
  return p === ADMIN_PREFIX || p.startsWith(`${ADMIN_PREFIX}/`);
}

function bearer(request: FastifyRequest): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
  return match?.[1];
}

function isLoopback(ip: string): boolean {
  return ip === "127.0.0.1" || ip === "::1" || ip === "::ffff:127.0.0.1";
}

/**
 * The dashboard is served with admin keys, or when authentication is off
 * altogether (then to loopback clients only). With tenant keys but no admin
 * key it is not served at all.
 */
export function dashboardEnabled(config: Pick<Config, "apiKeys" | "adminKeys">): boolean {
  return config.adminKeys.size > 0 || config.apiKeys.size === 0;
}

type AuthConfig = Pick<Config, "apiKeys" | "adminKeys" | "metricsToken">;

function checkAdmin(request: FastifyRequest, config: AuthConfig): void {
  if (config.adminKeys.size === 0) {
    if (!isLoopback(request.ip))
      throw new AppError("ADMIN_KEY_REQUIRED", "the queue dashboard answers loopback clients only while ADMIN_KEYS is unset");
    return;
  }
  const key = bearer(request);
  if (key !== undefined && tenantForKey(config.adminKeys, key) !== undefined) return;
  if (key !== undefined && tenantForKey(config.apiKeys, key) !== undefined) {
    throw new AppError("ADMIN_KEY_REQUIRED", "this route needs an admin key (ADMIN_KEYS); a tenant key does not open it");
  }
  throw new AppError("UNAUTHORIZED", "missing or invalid admin key: send Authorization: Bearer <admin key>");
}

function checkMetrics(request: FastifyRequest, token: string): void {
  const key = bearer(request);
  if (key === undefined || !timingSafeEqual(digest(key), digest(token))) {
    throw new AppError("UNAUTHORIZED", "missing or invalid metrics token: send Authorization: Bearer <METRICS_TOKEN>");
  }
}

export function registerAuth(app: FastifyInstance, config: AuthConfig): void {
  app.decorateRequest("tenant", DEFAULT_TENANT);
  app.addHook("onRequest", async (request: FastifyRequest) => {
    if (isPublicPath(request.url)) return;
    if (request.url.split("?")[0] === "/metrics") {
      if (config.metricsToken) checkMetrics(request, config.metricsToken);
      return;
    }
    if (isAdminPath(request.url)) return checkAdmin(request, config);
    if (config.apiKeys.size === 0) return;
    const tenant = keyTenant(request, config.apiKeys);
    if (!tenant) throw new AppError("UNAUTHORIZED", "missing or invalid API key: send Authorization: Bearer <key>");
    request.tenant = tenant;
  });
}
