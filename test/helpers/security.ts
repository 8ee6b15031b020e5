// What every hostile-input test checks after the attack: the API still answers
// /readyz, and nothing is left in DATA_DIR/.tmp.
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import type { Config } from "../../src/config.js";
import { filesUnder } from "./dataset-upload.js";

export async function assertStillServing(app: FastifyInstance, config: Pick<Config, "dataDir">): Promise<void> {
  const ready = await app.inject({ method: "GET", url: "/readyz" });
  assert.equal(ready.statusCode, 200, ready.body);
  const tmp = path.join(config.dataDir, ".tmp");
  const left = await fs.access(tmp).then(
    () => filesUnder(tmp),
    () => [],
  );
  assert.deepEqual(left, [], "no files left in DATA_DIR/.tmp");
}

/** The JSON error body's code and details. */
export function errorOf(res: { json(): unknown }): { code: string; details: Record<string, unknown> } {
  return (res.json() as { error: { code: string; details: Record<string, unknown> } }).error;
}
