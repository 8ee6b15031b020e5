// Streamed multipart uploads (datasets, weights): header checks before a byte is read, then the
// `file` part written to a scratch file under MAX_UPLOAD_BYTES, never buffered in memory.
import { createWriteStream } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { FastifyRequest } from "fastify";
import { AppError } from "../errors.js";

/** Room for the multipart framing and small fields on top of MAX_UPLOAD_BYTES. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

function tooLarge(limit: number): AppError {
  return new AppError("UPLOAD_TOO_LARGE", `the upload is larger than MAX_UPLOAD_BYTES=${limit} bytes`, { limit });
}

/** Refuses a body that cannot be an upload before a byte of it is read. */
export function checkUploadHeaders(maxUploadBytes: number) {
  return async (request: FastifyRequest) => {
    const type = request.headers["content-type"] ?? "";
    if (!/^multipart\/form-data\s*;/i.test(type)) {
      throw new AppError("NOT_MULTIPART", 'send the file as multipart/form-data in the field "file"');
    }
    const length = Number(request.headers["content-length"]);
    if (Number.isFinite(length) && length > maxUploadBytes + MULTIPART_OVERHEAD_BYTES) throw tooLarge(maxUploadBytes);
  };
}

export interface ReceivedUpload {
  file: string;
  filename: string;
  name: string | undefined;
}

/** Streams the `file` part to `dir/upload`; reads the small `name` field wherever it comes. */
export async function receiveUpload(request: FastifyRequest, dir: string, maxUploadBytes: number): Promise<ReceivedUpload> {
  const file = path.join(dir, "upload");
  let filename: string | undefined;
  let name: string | undefined;
  const parts = request.parts({ limits: { fileSize: maxUploadBytes, files: 1, fields: 4, fieldSize: 4 * 1024, parts: 5 } });
  for await (const part of parts) {
    if (part.type === "field") {
      if (part.fieldname === "name") name = String(part.value);
      continue;
    }
    if (part.fieldname !== "file") {
      part.file.resume();
      throw new AppError("VALIDATION_FAILED", `unexpected file field "${part.fieldname}": send the file in the field "file"`);
    }
    try {
      await pipeline(part.file, createWriteStream(file));
    } catch (err) {
      if ((err as { code?: string }).code === "FST_REQ_FILE_TOO_LARGE") throw tooLarge(maxUploadBytes);
      throw err;
    }
    if (part.file.truncated) throw tooLarge(maxUploadBytes);
    filename = part.filename;
  }
  if (filename === undefined) throw new AppError("MISSING_FILE", 'the request has no file: send it in the multipart field "file"');
  return { file, filename, name };
}
