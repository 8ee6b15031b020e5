// Real service processes for end-to-end tests: started with the README's
// commands, their output kept for failure messages, stopped when the test ends.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import path from "node:path";

export interface ServiceProcess {
  child: ChildProcess;
  readonly output: string;
  /** Resolves with the first output line matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then waits for the exit; SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<number | null>;
}

const TSX = path.resolve("node_modules/.bin/tsx");

/** `tsx <entry>` (what `npm run worker` and `npm run start:api` run) with `env` on top of this process's. */
export function startService(name: string, entry: string, env: Record<string, string>): ServiceProcess {
  const child = spawn(TSX, [entry], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const check of waiters) check();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    get output() {
      return output;
    },
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name}: no output matching ${pattern} within ${timeoutMs} ms; output:\n${output.slice(-4000)}`));
        }, timeoutMs);
        const check = () => {
          const line = output.split("\n").find((l) => pattern.test(l));
          if (line === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(line);
        };
        waiters.add(check);
        check();
        void exited.then((code) => {
          if (!waiters.has(check)) return;
          clearTimeout(timer);
          waiters.delete(check);
          reject(new Error(`${name} exited (code ${code}) before printing ${pattern}; output:\n${output.slice(-4000)}`));
        });
      });
    },
    async stop(timeoutMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Every process below `pid` (children, grandchildren...) with its command line. */
export function descendants(pid: number): { pid: number; args: string }[] {
  const rows = execFileSync("ps", ["-e", "-o", "pid=,ppid=,args="], { encoding: "utf8" })
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] }));
  const out: { pid: number; args: string }[] = [];
  const walk = (parent: number) => {
    for (const row of rows.filter((r) => r.ppid === parent)) {
      out.push({ pid: row.pid, args: row.args });
      walk(row.pid);
    }
  };
  walk(pid);
  return out;
}

/**
 * The environment of an API or worker started by an end-to-end test: its own Redis, data dir and port, wasm,
 * and a killed attempt retried at once, a dead worker's job found within seconds.
 */
export function e2eServiceEnv(redisUrl: string, dataDir: string, port: number): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    DATA_DIR: dataDir,
    PORT: String(port),
    LOG_LEVEL: "info",
    TFJS_BACKEND: "wasm",
    RETRY_BACKOFF_MS: "100",
    WORKER_LOCK_DURATION_MS: "4000",
    WORKER_STALLED_INTERVAL_MS: "2000",
  };
}
