// The API's in-process cache of job reads (GET /v1/jobs/{id}), kept exact by
// Redis' server-assisted client-side caching: Redis tells this process the
// name of every key written under the prefixes READ_JOB reads, and the entries
// that depend on it go. A hit costs no Redis command.
import { Redis } from "ioredis";
import { jobKeys, type JobRedis } from "./job-records.js";
import { QUEUE_STATE_KEYS, readJob, type JobRead } from "./job-read.js";
import { redisOptions } from "./redis.js";
import type { TrainingQueue } from "./training-queue.js";

/** The cache connection's CLIENT SETNAME (tests find it in CLIENT LIST). */
export const JOB_READ_CACHE_CONNECTION = "rf-job-read-cache";
const INVALIDATE_CHANNEL = "__redis__:invalidate";

export interface JobReadCacheOptions {
  /** Entries kept at most; the oldest go first. */
  maxEntries: number;
  /**
   * Age after which an entry is read again. A safety net, not the mechanism: Redis sends
   * the invalidation of an expired key only once it deletes it, which it does lazily.
   */
  maxAgeMs: number;
}

export const JOB_READ_CACHE_DEFAULTS: JobReadCacheOptions = { maxEntries: 10_000, maxAgeMs: 1_000 };

export interface JobReadCacheDeps {
  redisUrl: string;
  db: JobRedis;
  queue: Pick<TrainingQueue, "keys" | "toKey">;
  log: { warn(obj: object, msg: string): void };
  options?: Partial<JobReadCacheOptions>;
}

/** The key prefixes the cache has Redis track: every key READ_JOB reads starts with one of them, and neither starts the other. */
export function trackedPrefixes(db: JobRedis, queue: Pick<TrainingQueue, "toKey">): string[] {
  return [jobKeys.record(db, ""), queue.toKey("")];
}

interface Entry {
  read: JobRead;
  storedAt: number;
}

/** A read sent to Redis and not answered yet: an invalidation of its job meanwhile spoils its reply for the cache. */
interface PendingRead {
  jobId: string;
  spoiled: boolean;
}

export function createJobReadCache({ redisUrl, db, queue, log, options }: JobReadCacheDeps) {
  const { maxEntries, maxAgeMs } = { ...JOB_READ_CACHE_DEFAULTS, ...options };
  const prefixes = trackedPrefixes(db, queue);
  const queueStateKeys = new Set<string>(QUEUE_STATE_KEYS.map((name) => queue.keys[name]));
  const otherQueueKeys = new Set<string>(Object.values(queue.keys));
  const entries = new Map<string, Entry>();
  const pending = new Set<PendingRead>();
  let enabled = false;
  // Bumped whenever the connection comes or goes: a setup that a reconnect overtook must not enable the cache.
  let generation = 0;
  let warned = false;

  const connection = new Redis(redisUrl, {
    ...redisOptions("producer"),
    // Tracking and the subscription are lost together with the connection: each "ready" sets both up again.
    autoResubscribe: false,
    // Invalidations arrive as pub/sub messages on the redirect connection under RESP2; ioredis drops RESP3's push frames for them.
    protocol: 2,
    connectionName: JOB_READ_CACHE_CONNECTION,
  });

  const entryKey = (jobId: string, metrics: boolean) => `${jobId}\n${metrics ? 1 : 0}`;

  function drop(jobId: string): void {
    entries.delete(entryKey(jobId, true));
    entries.delete(entryKey(jobId, false));
    for (const read of pending) if (read.jobId === jobId) read.spoiled = true;
  }

  function dropAll(): void {
    entries.clear();
    for (const read of pending) read.spoiled = true;
  }

  /** The job whose entries depend on `key`, "all" for the queue-wide keys, null for keys no entry depends on (events, locks, logs...). */
  function dependants(key: string): string | "all" | null {
    if (queueStateKeys.has(key)) return "all";
    if (otherQueueKeys.has(key)) return null;
    for (const prefix of prefixes) {
      if (!key.startsWith(prefix)) continue;
      const jobId = key.slice(prefix.length).split(":")[0];
      const jobsKeys = [jobKeys.record(db, jobId), jobKeys.metrics(db, jobId), queue.toKey(jobId)];
      return jobsKeys.includes(key) ? jobId : null;
    }
    return null;
  }

  function onInvalidate(channel: Buffer, message: Buffer | Buffer[] | null): void {
    if (channel.toString() !== INVALIDATE_CHANNEL) return;
    // null: Redis flushed its keyspace (FLUSHALL, FLUSHDB) or dropped its tracking table.
    const affected = message === null ? ["all" as const] : [message].flat().map((key) => dependants(key.toString()));
    if (affected.includes("all")) dropAll();
    else for (const jobId of affected) if (jobId !== null) drop(jobId);
  }

  async function enable(ownGeneration: number): Promise<void> {
    try {
      const id = await connection.client("ID");
      const prefixArgs = prefixes.flatMap((prefix) => ["PREFIX", prefix]);
      await connection.call("CLIENT", "TRACKING", "ON", "REDIRECT", String(id), "BCAST", ...prefixArgs);
      await connection.subscribe(INVALIDATE_CHANNEL);
      if (ownGeneration === generation) enabled = true;
    } catch (err) {
      if (ownGeneration !== generation || warned) return;
      warned = true;
      log.warn({ err: { message: (err as Error).message } }, "job read cache unavailable: job reads go to Redis every time");
    }
  }

  function disable(): void {
    generation++;
    enabled = false;
    dropAll();
  }

  connection.on("messageBuffer", onInvalidate);
  connection.on("ready", () => {
    disable();
    void enable(generation);
  });
  for (const event of ["close", "end", "reconnecting"]) connection.on(event, disable);
  connection.on("error", () => {
    disable();
    // An error on a live connection leaves its tracking unknown: start it over.
    if (connection.status === "ready") connection.disconnect(true);
  });

  /** What readJob returns for the job, from the cache when it holds a current entry. */
  async function read(jobId: string, opts: { metrics: boolean }): Promise<JobRead | null> {
    if (!enabled) return readJob(db, queue, jobId, opts);
    const key = entryKey(jobId, opts.metrics);
    const hit = entries.get(key);
    if (hit && performance.now() - hit.storedAt <= maxAgeMs) return hit.read;
    entries.delete(key);
    // The reply and the invalidations travel on different connections, so an invalidation of a write made after
    // the read can arrive before the read's reply: the reply is kept only if none did (disabling spoils them all).
    const sent: PendingRead = { jobId, spoiled: false };
    pending.add(sent);
    try {
      const result = await readJob(db, queue, jobId, opts);
      // A missing job is not kept: ids that do not exist would push real jobs out, and a job being created has no entry.
      if (result && !sent.spoiled) store(key, result);
      return result;
    } finally {
      pending.delete(sent);
    }
  }

  function store(key: string, result: JobRead): void {
    entries.set(key, { read: result, storedAt: performance.now() });
    if (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
  }

  return {
    read,
    /** Forgets the job's entries at once: the API calls it after its own writes, so its next read sees them. */
    drop,
    /** Whether reads are served from the cache now (tracking and subscription set up on a live connection). */
    isEnabled: () => enabled,
    /** The connection, for logging its trouble. */
    connection,
    async close(): Promise<void> {
      connection.disconnect();
      disable();
    },
  };
}

export type JobReadCache = ReturnType<typeof createJobReadCache>;
