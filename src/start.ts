// Entry point of `npm start`: picks or starts a Redis, runs the API and one
// worker as child processes with prefixed logs, restarts either when it dies
// (with backoff), and stops them all on Ctrl-C or SIGTERM.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_REDIS_URL, loadConfig } from "./config.js";
import { dashboardEnabled } from "./api/auth.js";
import { chooseRedis } from "./launcher/choose-redis.js";
import { onPath, pingRedis, startRedisServer, type RedisServer } from "./launcher/redis-server.js";
import { prettyLines, startService } from "./launcher/child-process.js";
import { supervise, type SupervisedService } from "./launcher/supervisor.js";
import { childEnvironment } from "./worker/child-env.js";

const config = loadConfig();
const here = fileURLToPath(import.meta.url);
// The services sit next to this file: dist/*.js after a build, src/*.ts under tsx.
const sibling = (name: string) => path.join(path.dirname(here), name + path.extname(here));
const say = (line: string) => process.stdout.write(`[start] ${line}\n`);
/** Exits once the last line is written: stdout is asynchronous when it is a pipe. */
const sayAndExit = (line: string, code: number, stream: NodeJS.WriteStream = process.stdout): Promise<never> =>
  new Promise(() => stream.write(`[start] ${line}\n`, () => process.exit(code)));

const DEFAULT_REDIS = new URL(DEFAULT_REDIS_URL);

/** The Redis URL the services get, and the private server to stop at the end, if one was started. */
async function resolveRedis(): Promise<{ url: string; server?: RedisServer }> {
  const choice = await chooseRedis(process.env, config.dataDir, {
    defaultAnswers: () => pingRedis(DEFAULT_REDIS.hostname, Number(DEFAULT_REDIS.port)),
    hasRedisServer: () => onPath("redis-server"),
  });
  if (choice.kind === "missing") return sayAndExit(choice.message, 1, process.stderr);
  if (choice.kind === "configured") {
    say("Redis: using REDIS_URL");
    return { url: choice.url };
  }
  if (choice.kind === "running") {
    say(`Redis: using the one answering on ${choice.url}`);
    return { url: choice.url };
  }
  try {
    const server = await startRedisServer(choice.dir);
    say(`Redis: started a private redis-server on ${server.url} (AOF on, data in ${choice.dir}); it stops with npm start`);
    return { url: server.url, server };
  } catch (err) {
    return sayAndExit(`could not start redis-server in ${choice.dir}: ${(err as Error).message}`, 1, process.stderr);
  }
}

const redis = await resolveRedis();
const env = { ...process.env, REDIS_URL: redis.url };
const format = process.stdout.isTTY ? prettyLines(true) : undefined;
const write = (text: string) => void process.stdout.write(text);
const run = (name: string, entry: string, serviceEnv: NodeJS.ProcessEnv) =>
  supervise(name, () => startService(name, sibling(entry), serviceEnv, write, format), say);
const services: SupervisedService[] = [run("api", "server", env)];
if (existsSync(sibling("worker"))) {
  // The worker holds no tenant's key: it gets the allow-listed environment its training children get.
  services.push(run("worker", "worker", childEnvironment(env)));
} else {
  say("no worker found next to the API: jobs will wait in the queue until a worker runs");
}

let stopping = false;
async function stop(signal: NodeJS.Signals, exitCode: number): Promise<never> {
  if (stopping) {
    // A second Ctrl-C: do not wait for checkpoints.
    for (const s of services) s.current()?.child.kill("SIGKILL");
    process.exit(1);
  }
  stopping = true;
  say(`stopping (${signal})...`);
  const force = setTimeout(() => {
    say("services did not stop in time: killing them");
    for (const s of services) s.current()?.child.kill("SIGKILL");
  }, config.shutdownTimeoutMs + 10_000);
  const results = await Promise.all(services.map((s) => s.stop(signal)));
  clearTimeout(force);
  await redis.server?.stop();
  const clean = results.every((r) => r.code === 0);
  return sayAndExit("stopped", clean ? exitCode : exitCode || 1);
}
process.on("SIGINT", () => void stop("SIGINT", 0));
process.on("SIGTERM", () => void stop("SIGTERM", 0));

const hostForUrl = !config.host || config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
const base = `http://${hostForUrl}:${config.port}`;
const deadline = Date.now() + 60_000;
while (!stopping) {
  const up = await fetch(`${base}/healthz`).then(
    (r) => r.ok,
    () => false,
  );
  if (up) {
    say(`API:       ${base}`);
    say(`API docs:  ${base}/docs`);
    // Off with API_KEYS but no ADMIN_KEYS (see auth.ts): no link to a page that is not served.
    if (dashboardEnabled(config)) say(`Queues:    ${base}/admin/queues`);
    say(`Console:   ${base}/`);
    say("Ctrl-C stops everything.");
    break;
  }
  if (Date.now() > deadline) {
    say(`the API did not answer ${base}/healthz within 60 s`);
    await stop("SIGTERM", 1);
  }
  await new Promise((r) => setTimeout(r, 200));
}
