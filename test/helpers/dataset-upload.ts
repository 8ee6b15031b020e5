// Uploading archives to the app in tests, and checking nothing was left behind.
import fs from "node:fs/promises";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { multipartBody } from "./dataset-archives.js";

export async function uploadArchive(
  app: FastifyInstance,
  archive: Buffer,
  fields: Record<string, string> = {},
  headers: Record<string, string> = {},
) {
  const body = multipartBody(archive, fields);
  return app.inject({ method: "POST", url: "/v1/datasets", payload: body.payload, headers: { ...body.headers, ...headers } });
}

/** Every regular file or link under a directory, relative to it (empty directories do not count). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isDirectory()) out.push(path.relative(dir, path.join(entry.parentPath, entry.name)));
  }
  return out.sort();
}
