// The service's configuration: the environment parsed once, checked up front,
// and described in one table that the README's configuration section follows.
import path from "node:path";
import { ENGINE_NAMES, type EngineSetting } from "./engine/engine.js";
import { IMAGENET_WEIGHTS_FILE } from "./weight-files/imagenet.js";

/** Where a Redis on this machine answers by default (REDIS_URL unset). */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

export type TfjsBackendName = "auto" | "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu";

export interface Config {
  port: number;
  /** Undefined when HOST is unset: the server then picks loopback or all interfaces by auth. */
  host: string | undefined;
  redisUrl: string;
  /** Prefix of every Redis key (BullMQ's and the job records'), so deployments can share a Redis. */
  redisPrefix: string;
  dataDir: string;
  /** tenant -> key; empty when auth is off. */
  apiKeys: Map<string, string>;
  /** admin name -> key: open the admin routes (the queue dashboard), which tenant keys never do. */
  adminKeys: Map<string, string>;
  /** Bearer token /metrics requires; undefined = /metrics is public. */
  metricsToken: string | undefined;
  maxUploadBytes: number;
  maxArchiveEntries: number;
  maxUncompressedBytes: number;
  maxCompressionRatio: number;
  maxImagePixels: number;
  /** Pixels (width x height, summed over its images) one predict request may ask the API to decode. */
  maxPredictPixels: number;
  /** Predict images the API process decodes at once, all requests together. */
  predictDecodeConcurrency: number;
  /** Largest labels.csv a dataset archive may hold (it is parsed row by row, but every row is kept). */
  maxLabelsBytes: number;
  tfjsBackend: TfjsBackendName;
  /** Engine of training's frozen trunk and of predict: auto = tfjs on a native TF.js backend, else onnxruntime. */
  trainingEngine: EngineSetting;
  workerConcurrency: number;
  /** BullMQ lock of a running job, renewed by the worker process every half of it. */
  workerLockDurationMs: number;
  /** How often a worker looks for jobs whose lock expired (their worker died). */
  workerStalledIntervalMs: number;
  /** First retry delay of a failed training attempt (exponential: doubled for the next). */
  retryBackoffMs: number;
  /** Trained models the API keeps loaded for predict (LRU). */
  modelCacheSize: number;
  imagenetWeights: string;
  logLevel: string;
  jobRetentionDays: number;
  featureCache: boolean;
  featureCacheDtype: "float32" | "float16";
  featureCacheBytes: number;
  /** Threads computing the frozen trunk on the wasm and cpu backends; 0 = one per core. */
  trunkThreads: number;
  /** On wasm with more than one core, a helper thread computes convolution filter gradients while training computes the rest. */
  gradientThread: boolean;
  shutdownTimeoutMs: number;
  /** Webhook URLs may reach private, loopback and link-local addresses (tests, trusted networks). */
  webhookAllowPrivate: boolean;
  /** Server secret the tenants' webhook signing secrets derive from; undefined = a random one kept in Redis. */
  webhookSecret: string | undefined;
  /** First retry delay of a failed webhook delivery (exponential: doubled for each next one). */
  webhookRetryBackoffMs: number;
  /** Requests one tenant (or, unauthenticated, one IP) may make per rate-limit window, counted in Redis across replicas. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** Slowloris guards: all headers within this time... */
  headersTimeoutMs: number;
  /** ...the whole request body within this time (uploads: generous)... */
  requestTimeoutMs: number;
  /** ...and never this long without a byte of body. */
  bodyIdleTimeoutMs: number;
  /** Per-tenant quotas. */
  maxActiveJobsPerTenant: number;
  maxStoredBytesPerTenant: number;
  maxEventStreamsPerTenant: number;
  maxUploadsPerTenant: number;
  /** Scratch entries untouched this long are swept at start even when their owner cannot be checked (another host). */
  scratchMaxAgeMs: number;
  /** Memory one training job may take on a worker; POST /v1/jobs refuses a spec whose estimate is larger. */
  workerMemoryBytes: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got "${raw}"`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!allowed.includes(raw as T)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

/** `tenant:key,tenant2:key2` -> Map(tenant -> key); `variable` names the setting in errors. */
export function parseApiKeys(raw: string | undefined, variable = "API_KEYS"): Map<string, string> {
  const keys = new Map<string, string>();
  if (!raw) return keys;
  for (const entry of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const colon = entry.indexOf(":");
    const tenant = entry.slice(0, colon);
    const key = entry.slice(colon + 1);
    if (colon <= 0 || !key || !/^[A-Za-z0-9_-]{1,64}$/.test(tenant)) {
      throw new ConfigError(`${variable} entries must be name:key with name in [A-Za-z0-9_-], got an entry for "${tenant || "?"}"`);
    }
    if (keys.has(tenant)) throw new ConfigError(`${variable} names "${tenant}" twice`);
    keys.set(tenant, key);
  }
  return keys;
}

function redisPrefix(env: Env): string {
  const raw = env.REDIS_PREFIX || "rf";
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(raw)) throw new ConfigError(`REDIS_PREFIX must match [A-Za-z0-9_.-]{1,64}, got "${raw}"`);
  return raw;
}

/**
 * WORKER_MEMORY_BYTES when unset, by the backend TFJS_BACKEND names: wasm's heap
 * is 32-bit (4 GiB), less 10% because the estimate came out up to 5% under the
 * measured heap, which grows in steps (docs/security.md); `auto` and `cpu` may
 * end up on wasm or on plain JS arrays on a small host, so they get the same;
 * the native backends get 16 GiB (a typical worker's RAM, or a 16 GB GPU).
 */
const WASM_BUDGET = Math.floor(0.9 * 4 * 1024 ** 3);
export const WORKER_MEMORY_DEFAULTS: Record<TfjsBackendName, number> = {
  auto: WASM_BUDGET,
  wasm: WASM_BUDGET,
  cpu: WASM_BUDGET,
  tensorflow: 16 * 1024 ** 3,
  "tensorflow-gpu": 16 * 1024 ** 3,
};

export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(env.DATA_DIR || "./data");
  const apiKeys = parseApiKeys(env.API_KEYS);
  const adminKeys = parseApiKeys(env.ADMIN_KEYS, "ADMIN_KEYS");
  const shared = [...adminKeys.values()].filter((key) => [...apiKeys.values()].includes(key));
  if (shared.length > 0) throw new ConfigError("ADMIN_KEYS and API_KEYS share a key: an admin key must not also be a tenant's");
  const tfjsBackend = oneOf(env, "TFJS_BACKEND", ["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu"] as const, "auto");
  const config: Config = {
    port: int(env, "PORT", 3000, 0, 65535),
    host: env.HOST || undefined,
    redisUrl: env.REDIS_URL || DEFAULT_REDIS_URL,
    redisPrefix: redisPrefix(env),
    dataDir,
    apiKeys,
    adminKeys,
    metricsToken: env.METRICS_TOKEN || undefined,
    maxUploadBytes: int(env, "MAX_UPLOAD_BYTES", 2 * 1024 ** 3, 1),
    maxArchiveEntries: int(env, "MAX_ARCHIVE_ENTRIES", 100_000, 1),
    maxUncompressedBytes: int(env, "MAX_UNCOMPRESSED_BYTES", 8 * 1024 ** 3, 1),
    maxCompressionRatio: int(env, "MAX_COMPRESSION_RATIO", 100, 1),
    maxImagePixels: int(env, "MAX_IMAGE_PIXELS", 50_000_000, 1),
    maxLabelsBytes: int(env, "MAX_LABELS_BYTES", 8 * 1024 ** 2, 1),
    maxPredictPixels: int(env, "MAX_PREDICT_PIXELS", 100_000_000, 1),
    predictDecodeConcurrency: int(env, "PREDICT_DECODE_CONCURRENCY", 2, 1, 64),
    tfjsBackend,
    trainingEngine: oneOf(env, "TRAINING_ENGINE", ["auto", ...ENGINE_NAMES] as const, "auto"),
    workerConcurrency: int(env, "WORKER_CONCURRENCY", 1, 1, 64),
    workerLockDurationMs: int(env, "WORKER_LOCK_DURATION_MS", 30_000, 1000),
    workerStalledIntervalMs: int(env, "WORKER_STALLED_INTERVAL_MS", 30_000, 500),
    retryBackoffMs: int(env, "RETRY_BACKOFF_MS", 30_000, 0),
    modelCacheSize: int(env, "MODEL_CACHE_SIZE", 2, 1, 100),
    imagenetWeights: path.resolve(env.IMAGENET_WEIGHTS || path.join(dataDir, "imagenet", IMAGENET_WEIGHTS_FILE)),
    logLevel: oneOf(env, "LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, "info"),
    jobRetentionDays: int(env, "JOB_RETENTION_DAYS", 7, 1, 3650),
    featureCache: oneOf(env, "FEATURE_CACHE", ["on", "off"] as const, "on") === "on",
    featureCacheDtype: oneOf(env, "FEATURE_CACHE_DTYPE", ["float32", "float16"] as const, "float32"),
    featureCacheBytes: int(env, "FEATURE_CACHE_BYTES", 10 * 1024 ** 3, 0),
    trunkThreads: int(env, "TRUNK_THREADS", 0, 0, 256),
    gradientThread: oneOf(env, "GRADIENT_THREAD", ["on", "off"] as const, "on") === "on",
    shutdownTimeoutMs: int(env, "SHUTDOWN_TIMEOUT_MS", 30_000, 0),
    webhookAllowPrivate: oneOf(env, "WEBHOOK_ALLOW_PRIVATE", ["0", "1"] as const, "0") === "1",
    webhookSecret: env.WEBHOOK_SECRET || undefined,
    webhookRetryBackoffMs: int(env, "WEBHOOK_RETRY_BACKOFF_MS", 5000, 0),
    rateLimitMax: int(env, "RATE_LIMIT_MAX", 600, 1),
    rateLimitWindowMs: int(env, "RATE_LIMIT_WINDOW_MS", 60_000, 1000),
    headersTimeoutMs: int(env, "HEADERS_TIMEOUT_MS", 30_000, 100),
    requestTimeoutMs: int(env, "REQUEST_TIMEOUT_MS", 3600_000, 1000),
    bodyIdleTimeoutMs: int(env, "BODY_IDLE_TIMEOUT_MS", 60_000, 100),
    maxActiveJobsPerTenant: int(env, "MAX_ACTIVE_JOBS_PER_TENANT", 20, 1),
    maxStoredBytesPerTenant: int(env, "MAX_STORED_BYTES_PER_TENANT", 100 * 1024 ** 3, 1),
    maxEventStreamsPerTenant: int(env, "MAX_EVENT_STREAMS_PER_TENANT", 20, 1),
    maxUploadsPerTenant: int(env, "MAX_UPLOADS_PER_TENANT", 2, 1),
    scratchMaxAgeMs: int(env, "SCRATCH_MAX_AGE_MS", 6 * 3600 * 1000, 60_000),
    workerMemoryBytes: int(env, "WORKER_MEMORY_BYTES", WORKER_MEMORY_DEFAULTS[tfjsBackend], 1),
  };
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new ConfigError(
      `HEADERS_TIMEOUT_MS (${config.headersTimeoutMs}) must not exceed REQUEST_TIMEOUT_MS (${config.requestTimeoutMs})`,
    );
  }
  return config;
}
