// Every error the service reports on purpose: a code, an HTTP status and a
// message. The HTTP layer maps them to responses; the worker treats 4xx codes
// as the client's fault (no retry) and anything else as transient.

/** code -> HTTP status. Add new codes here, grouped by area. */
export const ERROR_STATUS = {
  // generic request problems
  VALIDATION_FAILED: 400,
  NOT_MULTIPART: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE: 422,
  TOO_MANY_REQUESTS: 429,
  // datasets: the upload and its archive (each limit has its own code)
  MISSING_FILE: 400,
  NOT_AN_ARCHIVE: 400,
  ARCHIVE_CORRUPT: 400,
  ARCHIVE_PATH_ESCAPE: 400,
  ARCHIVE_LINK_ENTRY: 400,
  ARCHIVE_SPECIAL_ENTRY: 400,
  ARCHIVE_NESTED: 400,
  UPLOAD_TOO_LARGE: 413,
  ARCHIVE_TOO_MANY_ENTRIES: 413,
  ARCHIVE_TOO_LARGE_UNCOMPRESSED: 413,
  ARCHIVE_COMPRESSION_RATIO: 413,
  // datasets: content and lifecycle
  DATASET_LAYOUT_INVALID: 422,
  DATASET_LABELS_INVALID: 422,
  DATASET_TOO_FEW_CLASSES: 422,
  DATASET_NOT_FOUND: 404,
  DATASET_IN_USE: 409,
  // engine: model and weights
  INVALID_MODEL_OPTIONS: 400,
  WEIGHTS_UNREADABLE: 422,
  WEIGHTS_MISMATCH: 422,
  IMAGENET_WEIGHTS_MISSING: 422,
  BACKEND_UNAVAILABLE: 503,
  // engine: training (our own inputs, not the client's: a bug or a damaged checkpoint)
  INVALID_TRAINING_OPTIONS: 500,
  OPTIMIZER_STATE_INVALID: 500,
  // worker: trained models and checkpoints
  MODEL_NOT_FOUND: 404,
  CHECKPOINT_NOT_FOUND: 404,
  WEIGHTS_NOT_FOUND: 404,
  PREDICT_IMAGE_INVALID: 422,
  MODEL_OUTPUT_INVALID: 422,
  TRAINING_FAILED: 500,
  TRAINING_DIVERGED: 422,
  // jobs
  INVALID_CURSOR: 400,
  IDEMPOTENCY_KEY_REUSED: 422,
  IDEMPOTENCY_KEY_IN_USE: 409,
  JOB_FINISHED: 409,
  UNKNOWN_CLASSES: 422,
  TOO_FEW_CLASSES: 422,
  SPLIT_LEAVES_CLASS_EMPTY: 422,
  EARLY_STOPPING_NEEDS_VALIDATION: 422,
  WEIGHTS_IN_USE: 409,
  DATASET_NOT_READY: 409,
  // webhooks
  WEBHOOK_URL_REFUSED: 422,
  // server side
  INTERNAL: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = "AppError";
    this.code = code;
    this.statusCode = ERROR_STATUS[code];
    this.details = details ?? null;
  }

  /** The client caused it: retrying the same request or job cannot help. */
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
