// The service's configuration: the environment parsed once, checked up front,
// and described in one table that the README's configuration section follows.
import path from "node:path";
import { ENGINE_NAMES, type EngineSetting } from "./engine/engine.js";
import { IMAGENET_WEIGHTS_FILE } from "./model/weights/imagenet.js";

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

/** `tenant:key,tenant2:key2` -> Map(tenant -> key). */
export function parseApiKeys(raw: string | undefined): Map<string, string> {
  const keys = new Map<string, string>();
  if (!raw) return keys;
  for (const entry of raw.split(",").map((s) => s.trim()).filter(Boolean)) {
    const colon = entry.indexOf(":");
    const tenant = entry.slice(0, colon);
    const key = entry.slice(colon + 1);
    if (colon <= 0 || !key || !/^[A-Za-z0-9_-]{1,64}$/.test(tenant)) {
      throw new ConfigError(`API_KEYS entries must be tenant:key with tenant in [A-Za-z0-9_-], got an entry for "${tenant || "?"}"`);
    }
    if (keys.has(tenant)) throw new ConfigError(`API_KEYS names tenant "${tenant}" twice`);
    keys.set(tenant, key);
  }
  return keys;
}

function redisPrefix(env: Env): string {
  const raw = env.REDIS_PREFIX || "rf";
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(raw)) throw new ConfigError(`REDIS_PREFIX must match [A-Za-z0-9_.-]{1,64}, got "${raw}"`);
  return raw;
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(env.DATA_DIR || "./data");
  return {
    port: int(env, "PORT", 3000, 0, 65535),
    host: env.HOST || undefined,
    redisUrl: env.REDIS_URL || DEFAULT_REDIS_URL,
    redisPrefix: redisPrefix(env),
    dataDir,
    apiKeys: parseApiKeys(env.API_KEYS),
    maxUploadBytes: int(env, "MAX_UPLOAD_BYTES", 2 * 1024 ** 3, 1),
    maxArchiveEntries: int(env, "MAX_ARCHIVE_ENTRIES", 100_000, 1),
    maxUncompressedBytes: int(env, "MAX_UNCOMPRESSED_BYTES", 8 * 1024 ** 3, 1),
    maxCompressionRatio: int(env, "MAX_COMPRESSION_RATIO", 100, 1),
    maxImagePixels: int(env, "MAX_IMAGE_PIXELS", 50_000_000, 1),
    maxLabelsBytes: int(env, "MAX_LABELS_BYTES", 8 * 1024 ** 2, 1),
    maxPredictPixels: int(env, "MAX_PREDICT_PIXELS", 100_000_000, 1),
    predictDecodeConcurrency: int(env, "PREDICT_DECODE_CONCURRENCY", 2, 1, 64),
    tfjsBackend: oneOf(env, "TFJS_BACKEND", ["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu"] as const, "auto"),
    trainingEngine: oneOf(env, "TRAINING_ENGINE", ["auto", ...ENGINE_NAMES] as const, "auto"),
    workerConcurrency: int(env, "WORKER_CONCURRENCY", 1, 1, 64),
    workerLockDurationMs: int(env, "WORKER_LOCK_DURATION_MS", 30_000, 1000),
    workerStalledIntervalMs: int(env, "WORKER_STALLED_INTERVAL_MS", 30_000, 500),
    retryBackoffMs: int(env, "RETRY_BACKOFF_MS", 30_000, 0),
    modelCacheSize: int(env, "MODEL_CACHE_SIZE", 2, 1, 100),
    imagenetWeights: path.resolve(
      env.IMAGENET_WEIGHTS || path.join(dataDir, "imagenet", IMAGENET_WEIGHTS_FILE),
    ),
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
  };
}
