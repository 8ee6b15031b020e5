// The processes a soak run drives: a private redis-server with AOF (fsync on
// every write), the API and one worker, each started as the README says
// (node with the tsx loader), logging to files, and restartable after a fault.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import path from "node:path";
import { startRedisServer, type RedisServer } from "../../src/launcher/redis-server.js";

export interface Service {
  readonly name: string;
  pid(): number;
  /** Starts it again (after it died or was stopped). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface NodeService extends Service {
  /** Resolves when the current process has exited. */
  exited(): Promise<void>;
}

/** A node service (`src/server.ts`, `src/worker.ts`); `ready` is a log line pattern that says it is up. */
export async function nodeService(
  name: string,
  entry: string,
  env: NodeJS.ProcessEnv,
  logDir: string,
  ready: RegExp,
): Promise<NodeService> {
  const log: WriteStream = createWriteStream(path.join(logDir, `${name}.log`), { flags: "a" });
  let child: ChildProcess;
  let exit: Promise<void>;

  async function start(): Promise<void> {
    child = spawn(process.execPath, ["--import", "tsx", entry], { env, stdio: ["ignore", "pipe", "pipe"] });
    exit = new Promise((resolve) => child.once("exit", () => resolve()));
    let waiting = true;
    let seen = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not log ${ready} within 120 s (see ${name}.log)`)), 120_000);
      const onData = (chunk: Buffer) => {
        log.write(chunk);
        if (!waiting) return;
        seen += chunk.toString();
        if (!ready.test(seen)) return;
        waiting = false;
        seen = "";
        clearTimeout(timer);
        resolve();
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      void exit.then(() => {
        if (!waiting) return;
        clearTimeout(timer);
        reject(new Error(`${name} exited before it was ready (see ${name}.log)`));
      });
    });
  }
  await start();
  return {
    name,
    pid: () => child.pid!,
    restart: start,
    exited: () => exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** redis-server with AOF and `appendfsync always`, restartable on the same port and directory. */
export async function redisService(dir: string, port: number): Promise<Service & { url: string }> {
  const args = ["--appendfsync", "always"];
  let server: RedisServer = await startRedisServer(dir, port, args);
  return {
    name: "redis",
    url: server.url,
    pid: () => server.pid,
    async restart() {
      await server.stop();
      server = await startRedisServer(dir, port, args);
    },
    stop: () => server.stop(),
  };
}
