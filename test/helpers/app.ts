// build(t): the Fastify app on a temporary DATA_DIR and a private Redis,
// closed (and removed) when the test ends.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestContext } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApp, type AppDeps } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config.js";
import { startRedis, type TestRedis } from "./redis.js";

export async function tempDir(label = "rf-test-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), label));
}

export async function testConfig(env: Record<string, string> = {}): Promise<Config> {
  const dataDir = await tempDir("rf-data-");
  return loadConfig({ LOG_LEVEL: "silent", DATA_DIR: dataDir, ...env });
}

/** The app on its own Redis (unless env.REDIS_URL names one) and DATA_DIR. */
export async function build(
  t: Pick<TestContext, "after">,
  env: Record<string, string> = {},
  deps: Partial<AppDeps> = {},
): Promise<{ app: FastifyInstance; config: Config; redis?: TestRedis }> {
  const redis = env.REDIS_URL ? undefined : await startRedis();
  const config = await testConfig({ ...(redis ? { REDIS_URL: redis.url } : {}), ...env });
  let app: FastifyInstance | undefined;
  t.after(async () => {
    await app?.close();
    await redis?.stop();
    await fs.rm(config.dataDir, { recursive: true, force: true });
  });
  app = await buildApp(config, deps);
  await app.ready();
  return { app, config, redis };
}
