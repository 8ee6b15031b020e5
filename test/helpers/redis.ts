// A private redis-server for a test file: free port, temporary directory,
// AOF on (persistence tests need it), stopped when the test file ends.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startRedisServer, type RedisServer } from "../../src/launcher/redis-server.js";

export { freePort } from "../../src/launcher/redis-server.js";

export type TestRedis = RedisServer;

export async function startRedis(): Promise<TestRedis> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rf-redis-"));
  const server = await startRedisServer(dir);
  return {
    ...server,
    async stop() {
      await server.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
