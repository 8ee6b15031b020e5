// The rate limit's counter store (a @fastify/rate-limit store): counts in Redis, so the limit holds
// across API replicas, without a Redis round trip per request. Each replica admits up to `slack`
// requests of a key on its own knowledge before their count has reached Redis; the rest waits for
// Redis' answer. So across R replicas a window admits at most max + (R - 1) * slack requests
// (one replica alone: exactly max), and slack 0 asks Redis on every request.
import type { Redis } from "ioredis";

/** Share of the limit a replica may admit before its count is in Redis (rounded down: limits under 100 are exact). */
export const RATE_LIMIT_SLACK_SHARE = 0.01;
/** How often counts admitted locally are sent to Redis (the slack bounds the overshoot, this only how stale other replicas' view is). */
export const RATE_LIMIT_FLUSH_MS = 50;

/** Adds ARGV[1] to a window's count (a new window lives ARGV[2] ms); returns the count and the window's remaining ms. */
const ADD = `
local count = redis.call("INCRBY", KEYS[1], ARGV[1])
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
`;
const COMMAND = "rfRateLimitAdd";

/** What @fastify/rate-limit asks a store for: the count including this request, and the window's remaining ms. */
export interface Count {
  current: number;
  ttl: number;
}
type Done = (err: Error | null, count: Count | null) => void;

/** One key's window as this replica knows it. */
interface Window {
  /** The count in Redis at the last answer (everyone's requests, this replica's sent ones). */
  known: number;
  /** When the window ends (Date.now() ms); the next request after it asks Redis. */
  resetAt: number;
  /** Admitted here, not yet sent to Redis. */
  queued: number;
  /** Admitted here and sent, the answer not back yet. */
  sending: number;
  /** Requests waiting for Redis' answer: their count is their position in it. */
  waiting: Done[];
  flushing: boolean;
}

export interface BatchedStoreOptions {
  redis: Redis;
  /** Key prefix of the counters. */
  nameSpace: string;
  slack: number;
  flushMs?: number;
}

export interface BatchedStore {
  incr(key: string, done: Done, timeWindow: number, max: number): void;
  /** Per-route limits (a route's config.rateLimit) would need counters of their own: refused. */
  child(): never;
  /** Sends what is queued and stops the timer. */
  close(): Promise<void>;
}

export function createBatchedStore({ redis, nameSpace, slack, flushMs = RATE_LIMIT_FLUSH_MS }: BatchedStoreOptions): BatchedStore {
  if (!(redis as unknown as Record<string, unknown>)[COMMAND]) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: ADD });
  const add = (redis as unknown as Record<string, (key: string, n: number, windowMs: number) => Promise<[number, number]>>)[COMMAND].bind(
    redis,
  );
  const windows = new Map<string, Window>();
  let windowMs = 0;

  /** One round trip for everything queued and waiting on `key`; then the next one if requests waited meanwhile. */
  async function flush(key: string, w: Window): Promise<void> {
    if (w.flushing || w.queued + w.waiting.length === 0) return;
    w.flushing = true;
    const queued = w.queued;
    const waiting = w.waiting;
    const n = queued + waiting.length;
    w.queued = 0;
    w.waiting = [];
    w.sending += queued;
    try {
      const [count, ttl] = await add(nameSpace + key, n, windowMs);
      w.known = count;
      w.resetAt = Date.now() + ttl;
      // The waiting requests came last: the i-th of them is request count - waiting + i of the window.
      waiting.forEach((done, i) => {
        done(null, { current: count - waiting.length + i + 1, ttl });
      });
    } catch (err) {
      // Redis away: the limit is skipped (skipOnError) and the next request asks Redis again.
      w.resetAt = 0;
      for (const done of waiting) done(err as Error, null);
    } finally {
      w.sending -= queued;
      w.flushing = false;
    }
    if (w.waiting.length > 0) await flush(key, w);
  }

  function flushAll(): Promise<unknown> {
    const now = Date.now();
    const sent: Promise<void>[] = [];
    for (const [key, w] of windows) {
      if (w.queued > 0) sent.push(flush(key, w));
      else if (now >= w.resetAt && !w.flushing && w.waiting.length === 0) windows.delete(key);
    }
    return Promise.all(sent);
  }
  const timer = setInterval(() => void flushAll(), flushMs);
  timer.unref();

  function incr(key: string, done: Done, timeWindow: number, max: number): void {
    windowMs = timeWindow;
    let w = windows.get(key);
    if (!w) {
      w = { known: 0, resetAt: 0, queued: 0, sending: 0, waiting: [], flushing: false };
      windows.set(key, w);
    }
    const now = Date.now();
    const unsent = w.queued + w.sending;
    if (now < w.resetAt && w.waiting.length === 0) {
      const count = w.known + unsent + 1;
      // Over the limit on what Redis said: refused here, and not counted (counts never fall within a window).
      if (count > max) {
        done(null, { current: count, ttl: w.resetAt - now });
        return;
      }
      if (unsent < slack) {
        w.queued += 1;
        done(null, { current: count, ttl: w.resetAt - now });
        return;
      }
    }
    // A new window, or this replica's slack is used up: Redis decides.
    w.waiting.push(done);
    void flush(key, w);
  }

  const store: BatchedStore = {
    incr,
    child() {
      throw new Error("per-route rate limits (config.rateLimit) are not supported: every route shares the global limit");
    },
    async close() {
      clearInterval(timer);
      await flushAll();
    },
  };
  return store;
}
