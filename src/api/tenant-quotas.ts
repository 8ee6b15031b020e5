// Per-tenant quotas, kept in Redis so they hold across API replicas:
// - active jobs (queued + running): a sorted set of the tenant's job ids, each
//   removed once its job is final (checked when the next job is claimed);
// - event streams and uploads in flight: leases that expire unless renewed, so
//   a replica that dies does not hold its tenants' slots for ever;
// - stored bytes: what the tenant's datasets, weights, checkpoints and models
//   take in storage, checked before an upload is read.
// A claim adds itself first and counts after, so two racing requests cannot
// both take the last slot.
import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { storageKeys } from "../storage/keys.js";

export type QuotaName = "activeJobs" | "eventStreams" | "uploads" | "storedBytes";

/** A lease lives this long unless renewed (renewed every third of it while held). */
export const LEASE_MS = 60_000;
/** A claimed job slot whose job record does not exist yet is kept this long (its request may still be creating it). */
const PENDING_CLAIM_MS = 60_000;

export function quotaExceeded(quota: QuotaName, limit: number, current: number): AppError {
  return new AppError("QUOTA_EXCEEDED", `quota ${quota} reached: ${current} of ${limit}`, { quota, limit, current });
}

export interface TenantQuotasDeps {
  redis: Redis;
  storage: Storage;
  config: Pick<
    Config,
    "redisPrefix" | "maxActiveJobsPerTenant" | "maxEventStreamsPerTenant" | "maxUploadsPerTenant" | "maxStoredBytesPerTenant"
  >;
}

export function createTenantQuotas({ redis, storage, config }: TenantQuotasDeps) {
  const key = (quota: QuotaName, tenant: string) => `${config.redisPrefix}:quota:${quota}:${tenant}`;

  /** Adds `member` to the set `k`, then counts; over `limit`, takes it back and refuses. */
  async function claim(quota: QuotaName, tenant: string, member: string, score: number, limit: number): Promise<void> {
    const k = key(quota, tenant);
    const replies = await redis.multi().zadd(k, score, member).zcard(k).exec();
    const count = Number(replies?.[1]?.[1] ?? 0);
    if (count > limit) {
      await redis.zrem(k, member);
      throw quotaExceeded(quota, limit, count - 1);
    }
  }

  /** Takes a lease on one of `quota`'s slots; the returned function gives it back. */
  async function lease(quota: "eventStreams" | "uploads", tenant: string, limit: number): Promise<() => Promise<void>> {
    const k = key(quota, tenant);
    const id = randomUUID();
    await redis.zremrangebyscore(k, "-inf", Date.now());
    await claim(quota, tenant, id, Date.now() + LEASE_MS, limit);
    const renew = setInterval(() => void redis.zadd(k, "XX", Date.now() + LEASE_MS, id).catch(() => {}), LEASE_MS / 3);
    renew.unref();
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      clearInterval(renew);
      await redis.zrem(k, id).catch(() => {});
    };
  }

  const eventStream = (tenant: string) => lease("eventStreams", tenant, config.maxEventStreamsPerTenant);
  const upload = (tenant: string) => lease("uploads", tenant, config.maxUploadsPerTenant);

  async function checkStoredBytes(tenant: string, incomingBytes: number): Promise<void> {
    const limit = config.maxStoredBytesPerTenant;
    const current = (await storage.list(storageKeys.tenant(tenant))).reduce((sum, o) => sum + o.size, 0);
    if (current + incomingBytes > limit) {
      throw new AppError(
        "STORAGE_FULL",
        `the tenant's storage quota is full: ${current} of ${limit} bytes used, the upload is ${incomingBytes}`,
        {
          reason: "quota",
          quota: "storedBytes",
          limit,
          current,
        },
      );
    }
  }

  return {
    /**
     * Claims a slot for `jobId` before its job is created; `isActive` says whether
     * an earlier job (null: no record yet) is still queued or running.
     */
    async claimJob(tenant: string, jobId: string, isActive: (jobId: string) => Promise<boolean | null>): Promise<void> {
      const k = key("activeJobs", tenant);
      const members = await redis.zrange(k, "0", "-1", "WITHSCORES");
      for (let i = 0; i < members.length; i += 2) {
        const active = await isActive(members[i]);
        const pending = active === null && Date.now() - Number(members[i + 1]) < PENDING_CLAIM_MS;
        if (!active && !pending) await redis.zrem(k, members[i]);
      }
      await claim("activeJobs", tenant, jobId, Date.now(), config.maxActiveJobsPerTenant);
    },
    async releaseJob(tenant: string, jobId: string): Promise<void> {
      await redis.zrem(key("activeJobs", tenant), jobId);
    },
    eventStream,
    /**
     * Refuses an upload of `incomingBytes` (its Content-Length; 0 when unknown)
     * when the tenant's stored bytes would exceed the quota: 507 STORAGE_FULL,
     * the tenant's share of storage being full.
     */
    checkStoredBytes,
    /** preHandler of upload routes: the stored-bytes check, then an upload slot held until the response is done. */
    async uploadSlot(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      await checkStoredBytes(request.tenant, Number(request.headers["content-length"]) || 0);
      const release = await upload(request.tenant);
      reply.raw.once("close", () => void release());
    },
  };
}

export type TenantQuotas = ReturnType<typeof createTenantQuotas>;
