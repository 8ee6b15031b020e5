// Idempotency-Key for POST /v1/jobs. A request first claims the key for a
// short while (IDEMPOTENCY_CLAIM_SECONDS, renewed while it runs); the job's
// creation transaction then makes it final for 24 h with the job id. A crash
// between the two frees the key within the claim time instead of answering
// 409 for a day. The same key and body later answer the same job; the same
// key with another body is refused.
import { createHash } from "node:crypto";
import type { JobRedis } from "../jobs/job-records.js";
import type { KeyToSet } from "../jobs/job-service.js";
import { AppError } from "../errors.js";

export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** How long a claim lasts without its request renewing it: long enough for no renewal to be late on a busy host. */
export const IDEMPOTENCY_CLAIM_SECONDS = 30;

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

export function idempotencyRedisKey(db: JobRedis, tenant: string, idempotencyKey: string): string {
  return `${db.prefix}:idem:${tenant}:${createHash("sha256").update(idempotencyKey).digest("hex")}`;
}

/** This request owns the key until it commits the job (with `final`) or releases it. */
export interface IdempotencyClaim {
  /** The key's final value, to set in the job's creation transaction. */
  final: KeyToSet;
  /** Gives the key back (the request failed): the client can retry with it. */
  release(): Promise<void>;
  /** Stops renewing the claim (the request is over, either way). */
  end(): void;
}

/**
 * Claims the key for `jobId`. Returns `{ claim }` when this request owns it,
 * or `{ earlierJobId }`, the job an earlier request with the same body made
 * (or is making); IDEMPOTENCY_KEY_REUSED for another body.
 */
export async function claimIdempotencyKey(
  db: JobRedis,
  tenant: string,
  idempotencyKey: string,
  hash: string,
  jobId: string,
  claimSeconds = IDEMPOTENCY_CLAIM_SECONDS,
): Promise<{ claim: IdempotencyClaim } | { earlierJobId: string }> {
  const key = idempotencyRedisKey(db, tenant, idempotencyKey);
  const value = JSON.stringify({ hash, jobId });
  const claimed = await db.redis.set(key, value, "EX", claimSeconds, "NX");
  if (claimed === "OK") {
    // GT: a renewal that reaches Redis after the creation transaction (another
    // connection) must not cut the committed 24 h back to the claim's time.
    const renew = setInterval(
      () => {
        db.redis.expire(key, claimSeconds, "GT").catch(() => undefined); // a missed renewal only shortens the claim
      },
      (claimSeconds * 1000) / 3,
    );
    renew.unref();
    return {
      claim: {
        final: { key, value, ttlSeconds: IDEMPOTENCY_TTL_SECONDS },
        async release() {
          clearInterval(renew);
          await db.redis.del(key);
        },
        end: () => clearInterval(renew),
      },
    };
  }
  const raw = await db.redis.get(key);
  if (raw === null) return claimIdempotencyKey(db, tenant, idempotencyKey, hash, jobId, claimSeconds);
  const earlier = JSON.parse(raw) as { hash: string; jobId: string };
  if (earlier.hash !== hash) {
    throw new AppError("IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with another request body in the last 24 h");
  }
  return { earlierJobId: earlier.jobId };
}
