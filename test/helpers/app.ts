// build(t): the Fastify app on a temporary DATA_DIR, closed when the test ends.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestContext } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApp, type AppDeps } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config.js";

export async function tempDir(label = "rf-test-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), label));
}

export async function testConfig(env: Record<string, string> = {}): Promise<Config> {
  const dataDir = await tempDir("rf-data-");
  return loadConfig({ LOG_LEVEL: "silent", DATA_DIR: dataDir, ...env });
}

export async function build(
  t: Pick<TestContext, "after">,
  env: Record<string, string> = {},
  deps: Partial<AppDeps> = {},
): Promise<{ app: FastifyInstance; config: Config }> {
  const config = await testConfig(env);
  const app = await buildApp(config, deps);
  t.after(async () => {
    await app.close();
    await fs.rm(config.dataDir, { recursive: true, force: true });
  });
  await app.ready();
  return { app, config };
}
