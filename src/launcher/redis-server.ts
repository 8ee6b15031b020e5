// Talking to and running redis-server without a client library: a PING probe
// and a private server process (AOF on). Used by `npm start` and by the tests.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  pid: number;
  /** SIGTERM (redis flushes the AOF), then waits for the process to exit. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True when a Redis at `host:port` answers PING with PONG within `timeoutMs` (no auth). */
export async function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
    socket.once("error", () => done(false));
  });
}

/** True when an executable named `name` is on the PATH. */
export function onPath(name: string, envPath = process.env.PATH ?? ""): boolean {
  return envPath.split(path.delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

async function waitForPing(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    if (await pingRedis("127.0.0.1", port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server did not answer on port ${port} within ${timeoutMs} ms`);
}

/**
 * Starts redis-server on loopback, keeping its data (AOF) in `dir`. Queue
 * state must never be evicted, hence noeviction, as in docker-compose.yml.
 * `extraArgs` go last (e.g. `--appendfsync always`).
 */
export async function startRedisServer(dir: string, port?: number, extraArgs: string[] = []): Promise<RedisServer> {
  await fs.mkdir(dir, { recursive: true });
  const chosen = port ?? (await freePort());
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(chosen),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--save",
      "",
      "--maxmemory-policy",
      "noeviction",
      ...extraArgs,
    ],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    await waitForPing(chosen, child, 10_000);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    dir,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
