// One error handler: AppError -> its status and code; Fastify's own validation
// and client errors -> 4xx with a code; anything else -> 500 without internals.
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, type ErrorCode } from "../errors.js";
import { isRedisUnavailable } from "../jobs/redis.js";
import { isStorageFull, storageFull } from "../storage/storage-full.js";

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_BODY_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  FST_ERR_CTP_EMPTY_JSON_BODY: "VALIDATION_FAILED",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "VALIDATION_FAILED",
  FST_ERR_CTP_INVALID_JSON_BODY: "VALIDATION_FAILED",
  FST_ERR_INVALID_MULTIPART_CONTENT_TYPE: "NOT_MULTIPART",
  FST_REQ_FILE_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  FST_PARTS_LIMIT: "PAYLOAD_TOO_LARGE",
  FST_FILES_LIMIT: "PAYLOAD_TOO_LARGE",
  FST_FIELDS_LIMIT: "PAYLOAD_TOO_LARGE",
  FST_PROTO_VIOLATION: "VALIDATION_FAILED",
  FST_ERR_BAD_URL: "VALIDATION_FAILED",
  FST_ERR_MAX_PARAM_LENGTH: "URI_TOO_LONG",
};

/** Messages of Fastify errors that would echo a client's (possibly huge) URL. */
const FIXED_MESSAGES: Partial<Record<string, string>> = {
  FST_ERR_BAD_URL: "the URL is not valid (a malformed percent-encoding?)",
  FST_ERR_MAX_PARAM_LENGTH: "a path parameter is longer than 100 characters",
};

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as FastifyError;
  if (e?.validation) {
    return new AppError("VALIDATION_FAILED", `invalid ${e.validationContext ?? "request"}: ${e.message}`, {
      errors: e.validation.map((v) => ({ path: v.instancePath, message: v.message, params: v.params })),
    });
  }
  if (isStorageFull(err)) return storageFull();
  if (isRedisUnavailable(err)) return new AppError("SERVICE_UNAVAILABLE", "the job store (Redis) is unavailable; retry shortly");
  const mapped = e?.code ? FASTIFY_CODES[e.code] : undefined;
  if (mapped) return new AppError(mapped, FIXED_MESSAGES[e.code] ?? e.message);
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    const byStatus: Record<number, ErrorCode> = {
      401: "UNAUTHORIZED",
      403: "PATH_FORBIDDEN",
      404: "NOT_FOUND",
      409: "CONFLICT",
      413: "PAYLOAD_TOO_LARGE",
      414: "URI_TOO_LONG",
      415: "UNSUPPORTED_MEDIA_TYPE",
      429: "TOO_MANY_REQUESTS",
    };
    return new AppError(byStatus[e.statusCode] ?? "VALIDATION_FAILED", e.message);
  }
  return new AppError("INTERNAL", "internal error");
}

export function sendError(reply: FastifyReply, err: AppError): FastifyReply {
  return reply
    .status(err.statusCode)
    .type("application/json")
    .send(JSON.stringify({ error: err.toJSON() }));
}

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const appErr = toAppError(err);
    if (appErr.statusCode >= 500) request.log.error({ err }, "request failed");
    else request.log.info({ code: appErr.code }, appErr.message);
    return sendError(reply, appErr);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new AppError("ROUTE_NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`)),
  );
}

/** What Node's HTTP parser reports before Fastify has a request, by its error code. */
const CLIENT_ERRORS: Record<string, () => AppError> = {
  ERR_HTTP_REQUEST_TIMEOUT: () => new AppError("REQUEST_TIMEOUT", "the request's headers or body did not arrive in time"),
  HPE_HEADER_OVERFLOW: () => new AppError("HEADERS_TOO_LARGE", "the request's headers are larger than the server accepts"),
};

/**
 * Fastify's clientErrorHandler: a slow client cut by a timeout, oversized headers or bytes that are
 * not HTTP get the error shape too, written on the socket (there is no request to reply to).
 */
export function writeClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const error = CLIENT_ERRORS[err.code ?? ""]?.() ?? new AppError("VALIDATION_FAILED", "the request is not valid HTTP");
  const body = JSON.stringify({ error: error.toJSON() });
  if (socket.writable) {
    const status = `${error.statusCode} ${STATUS_CODES[error.statusCode]}`;
    socket.write(
      `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
