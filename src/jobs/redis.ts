// Redis connections by role. The API produces: its commands fail fast when
// Redis is away (the request answers 503) instead of queueing in memory.
// Workers consume: BullMQ's blocking commands need maxRetriesPerRequest null.
import { Redis } from "ioredis";

export type RedisRole = "producer" | "consumer";

export function redisOptions(role: RedisRole): {
  enableOfflineQueue?: boolean;
  maxRetriesPerRequest: number | null;
  connectTimeout: number;
} {
  return role === "producer"
    ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000 }
    : { maxRetriesPerRequest: null, connectTimeout: 10_000 };
}

export function createRedis(url: string, role: RedisRole): Redis {
  return new Redis(url, redisOptions(role));
}

/** Resolves when the client is ready, or false after `timeoutMs` (Redis may come later; requests answer 503 meanwhile). */
export async function waitForRedis(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === "ready") return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      redis.off("ready", onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.on("ready", onReady);
  });
}

/** ioredis' own errors when the server is unreachable: the API answers 503 for them. */
export function isRedisUnavailable(err: unknown): boolean {
  const e = err as { name?: string; message?: string } | undefined;
  if (!e || typeof e.message !== "string") return false;
  return (
    e.name === "MaxRetriesPerRequestError" ||
    /enableOfflineQueue|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|connect ETIMEDOUT/.test(e.message)
  );
}
