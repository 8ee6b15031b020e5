// Standard Webhooks signing (https://www.standardwebhooks.com): each delivery
// carries webhook-id, webhook-timestamp and webhook-signature
// "v1,<base64 HMAC-SHA256 of `id.timestamp.body`>", keyed by the tenant's
// secret "whsec_<base64 key>". Tenant secrets derive from one server secret,
// so the API (which shows them) and the worker (which signs) agree without
// storing one per tenant.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Config } from "../config.js";
import type { JobRedis } from "../jobs/job-records.js";

export const SECRET_PREFIX = "whsec_";

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, "base64");
}

/** The `webhook-signature` header value for one delivery attempt. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac("sha256", keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** Whether any of the space-separated `v1,...` signatures matches (what a receiver checks). */
export function verifyWebhook(secret: string, headers: { id: string; timestamp: string; signature: string }, body: string): boolean {
  const expected = Buffer.from(signWebhook(secret, headers.id, Number(headers.timestamp), body));
  return headers.signature.split(" ").some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** WEBHOOK_SECRET, or a random one created once in Redis and shared by every API and worker on it. */
export async function serverWebhookSecret(db: JobRedis, config: Pick<Config, "webhookSecret">): Promise<string> {
  if (config.webhookSecret) return config.webhookSecret;
  const key = `${db.prefix}:webhook-secret`;
  await db.redis.set(key, randomBytes(32).toString("base64"), "NX");
  return (await db.redis.get(key))!;
}

/** The tenant's signing secret: HMAC(server secret, tenant), in the whsec_ form receivers' libraries take. */
export function tenantWebhookSecret(serverSecret: string, tenant: string): string {
  return SECRET_PREFIX + createHmac("sha256", serverSecret).update(`tenant:${tenant}`).digest("base64");
}
