// Every error the service reports on purpose, in one catalogue: its code, its
// HTTP status and whether retrying the same request or job can help. The HTTP
// layer answers with the status; the worker retries a failed job only when the
// entry says a retry can help (an error outside the catalogue is taken as
// transient: a crash, a lost connection).

type Entry = { readonly status: number; readonly retry: boolean };
const client = (status: number): Entry => ({ status, retry: false });
const transient = (status: number): Entry => ({ status, retry: true });
const permanent = (status: number): Entry => ({ status, retry: false });

/** code -> { status, retry }. Add new codes here, grouped by area. */
export const ERRORS = {
  // generic request problems
  VALIDATION_FAILED: client(400),
  NOT_MULTIPART: client(400),
  UNAUTHORIZED: client(401),
  // an admin route called with a tenant key (or from afar with no admin key set)
  ADMIN_KEY_REQUIRED: client(403),
  NOT_FOUND: client(404),
  ROUTE_NOT_FOUND: client(404),
  // a static file path that tries to leave its folder (the docs' assets)
  PATH_FORBIDDEN: client(403),
  // a path parameter longer than the router accepts (100 characters)
  URI_TOO_LONG: client(414),
  // Node's HTTP server: headers or body not in within HEADERS_TIMEOUT_MS / REQUEST_TIMEOUT_MS, headers over its limit
  REQUEST_TIMEOUT: client(408),
  HEADERS_TOO_LARGE: client(431),
  CONFLICT: client(409),
  PAYLOAD_TOO_LARGE: client(413),
  UNSUPPORTED_MEDIA_TYPE: client(415),
  UNPROCESSABLE: client(422),
  TOO_MANY_REQUESTS: transient(429),
  // a per-tenant quota (active jobs, event streams, uploads in flight): retry once one ends
  QUOTA_EXCEEDED: transient(429),
  // datasets: the upload and its archive (each limit has its own code)
  MISSING_FILE: client(400),
  NOT_AN_ARCHIVE: client(400),
  ARCHIVE_CORRUPT: client(400),
  ARCHIVE_PATH_ESCAPE: client(400),
  ARCHIVE_LINK_ENTRY: client(400),
  ARCHIVE_SPECIAL_ENTRY: client(400),
  ARCHIVE_NESTED: client(400),
  UPLOAD_TOO_LARGE: client(413),
  ARCHIVE_TOO_MANY_ENTRIES: client(413),
  ARCHIVE_TOO_LARGE_UNCOMPRESSED: client(413),
  ARCHIVE_COMPRESSION_RATIO: client(413),
  LABELS_TOO_LARGE: client(413),
  // datasets: content and lifecycle
  DATASET_LAYOUT_INVALID: client(422),
  DATASET_LABELS_INVALID: client(422),
  DATASET_TOO_FEW_CLASSES: client(422),
  DATASET_NOT_FOUND: client(404),
  DATASET_IN_USE: client(409),
  // engine: model and weights
  INVALID_MODEL_OPTIONS: client(400),
  WEIGHTS_UNREADABLE: client(422),
  WEIGHTS_MISMATCH: client(422),
  // a dataset would be read from outside the file (external storage or link, virtual dataset)
  WEIGHTS_UNSAFE: client(422),
  IMAGENET_WEIGHTS_MISSING: client(422),
  // another worker (or this one, later) may have the backend
  BACKEND_UNAVAILABLE: transient(503),
  // engine: training (our own inputs, not the client's: a bug, the same on every attempt)
  INVALID_TRAINING_OPTIONS: permanent(500),
  // a damaged checkpoint: the next attempt skips it and resumes from an earlier one
  OPTIMIZER_STATE_INVALID: transient(500),
  // worker: trained models and checkpoints
  MODEL_NOT_FOUND: client(404),
  CHECKPOINT_NOT_FOUND: client(404),
  WEIGHTS_NOT_FOUND: client(404),
  PREDICT_IMAGE_INVALID: client(422),
  // predict: one image over MAX_IMAGE_PIXELS, or a request over MAX_PREDICT_PIXELS
  PREDICT_IMAGE_TOO_LARGE: client(413),
  PREDICT_TOO_MANY_PIXELS: client(413),
  MODEL_OUTPUT_INVALID: client(422),
  TRAINING_FAILED: transient(500),
  TRAINING_DIVERGED: client(422),
  // jobs
  INVALID_CURSOR: client(400),
  IDEMPOTENCY_KEY_REUSED: client(422),
  IDEMPOTENCY_KEY_IN_USE: client(409),
  JOB_FINISHED: client(409),
  // the queue entry of a job is gone (removed outside the service): nothing left to retry
  JOB_LOST: permanent(500),
  UNKNOWN_CLASSES: client(422),
  TOO_FEW_CLASSES: client(422),
  SPLIT_LEAVES_CLASS_EMPTY: client(422),
  EARLY_STOPPING_NEEDS_VALIDATION: client(422),
  WEIGHTS_IN_USE: client(409),
  // webhooks
  WEBHOOK_URL_REFUSED: client(422),
  // the spec's training cannot fit in the worker's memory (WORKER_MEMORY_BYTES)
  JOB_TOO_LARGE: client(422),
  // server side
  INTERNAL: transient(500),
  // the disk (or the tenant's stored-bytes quota) is full: retrying after space is freed helps
  STORAGE_FULL: transient(507),
  SERVICE_UNAVAILABLE: transient(503),
} as const satisfies Record<string, Entry>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = "AppError";
    this.code = code;
    this.statusCode = ERRORS[code].status;
    this.details = details ?? null;
  }

  /** Whether retrying the same request or job can help (the catalogue says). */
  get retryable(): boolean {
    return ERRORS[this.code].retry;
  }

  /** The client caused it (a 4xx). */
  get isClientError(): boolean {
    return this.statusCode < 500;
  }

  toJSON(): { code: ErrorCode; message: string; details: unknown } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}
