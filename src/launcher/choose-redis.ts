// Which Redis `npm start` uses: REDIS_URL when set, else one already answering
// on the default port, else a private redis-server under DATA_DIR/redis, else
// none (with one line telling the user how to get Redis).
import path from "node:path";
import { DEFAULT_REDIS_URL } from "../config.js";

export const REDIS_MISSING_MESSAGE =
  "No Redis found: set REDIS_URL, or install redis-server (Debian/Ubuntu: sudo apt-get install redis-server), or run `docker compose up -d redis`, then run npm start again.";

export type RedisChoice =
  | { kind: "configured"; url: string }
  | { kind: "running"; url: string }
  | { kind: "private"; dir: string }
  | { kind: "missing"; message: string };

export interface RedisProbes {
  /** Does a Redis answer PING at DEFAULT_REDIS_URL? */
  defaultAnswers(): Promise<boolean>;
  /** Is a redis-server binary on the PATH? */
  hasRedisServer(): boolean;
}

export async function chooseRedis(env: Record<string, string | undefined>, dataDir: string, probes: RedisProbes): Promise<RedisChoice> {
  if (env.REDIS_URL) return { kind: "configured", url: env.REDIS_URL };
  if (await probes.defaultAnswers()) return { kind: "running", url: DEFAULT_REDIS_URL };
  if (probes.hasRedisServer()) return { kind: "private", dir: path.join(dataDir, "redis") };
  return { kind: "missing", message: REDIS_MISSING_MESSAGE };
}
