// Idempotency-Key for POST /v1/jobs: the first request with a key claims it for
// 24 h with a hash of its body; the same key and body later answer the same
// job, the same key with another body is refused.
import { createHash } from "node:crypto";
import type { JobRedis } from "../queue/job-records.js";
import { AppError } from "../errors.js";

export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

/** JSON with sorted keys, so key order does not make two bodies differ. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

export function bodyHash(body: unknown): string {
  return createHash("sha256").update(canonical(body)).digest("hex");
}

function keyOf(db: JobRedis, tenant: string, idempotencyKey: string): string {
  return `${db.prefix}:idem:${tenant}:${createHash("sha256").update(idempotencyKey).digest("hex")}`;
}

/**
 * Claims the key for `jobId`. Returns null when this request owns it (create
 * the job, or release() on failure), or the job id an earlier request made.
 */
export async function claimIdempotencyKey(db: JobRedis, tenant: string, idempotencyKey: string, hash: string, jobId: string): Promise<string | null> {
  const key = keyOf(db, tenant, idempotencyKey);
  const claimed = await db.redis.set(key, JSON.stringify({ hash, jobId }), "EX", IDEMPOTENCY_TTL_SECONDS, "NX");
  if (claimed === "OK") return null;
  const raw = await db.redis.get(key);
  if (raw === null) return claimIdempotencyKey(db, tenant, idempotencyKey, hash, jobId);
  const earlier = JSON.parse(raw) as { hash: string; jobId: string };
  if (earlier.hash !== hash) {
    throw new AppError("IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with another request body in the last 24 h");
  }
  return earlier.jobId;
}

/** A request that failed gives its key back, so the client can retry with it. */
export async function releaseIdempotencyKey(db: JobRedis, tenant: string, idempotencyKey: string): Promise<void> {
  await db.redis.del(keyOf(db, tenant, idempotencyKey));
}
