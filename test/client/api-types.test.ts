// src/client/api-types.ts is generated from openapi.yaml (npm run gen:client);
// regenerating it must give the committed file, so the typed client cannot drift.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { tempDir } from "../helpers/app.js";

test("the committed client types are what npm run gen:client generates from openapi.yaml", { timeout: 60_000 }, async (t) => {
  const dir = await tempDir("rf-client-");
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const script = JSON.parse(await fs.readFile("package.json", "utf8")).scripts["gen:client"] as string;
  const committed = script.match(/--output (\S+)/)![1];
  const args = script
    .replace(/^openapi-typescript /, "")
    .replace(committed, path.join(dir, "api-types.ts"))
    .split(" ");
  await promisify(execFile)(path.resolve("node_modules/.bin/openapi-typescript"), args);
  const fresh = await fs.readFile(path.join(dir, "api-types.ts"), "utf8");
  assert.ok(fresh === (await fs.readFile(committed, "utf8")), `${committed} is stale: run npm run gen:client and commit it`);
});
