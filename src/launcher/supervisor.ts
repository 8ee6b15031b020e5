// Keeps a service of `npm start` running, as compose's `restart: unless-stopped`
// does: a service that exits is started again after a delay that doubles with
// each quick crash (1 s up to 30 s) and starts over once it has run a minute.
import type { ServiceProcess } from "./child-process.js";

export interface RestartPolicy {
  firstDelayMs: number;
  maxDelayMs: number;
  /** A run at least this long counts as healthy: the next crash waits firstDelayMs again. */
  healthyAfterMs: number;
}

export const RESTART_POLICY: RestartPolicy = { firstDelayMs: 1_000, maxDelayMs: 30_000, healthyAfterMs: 60_000 };

/** The wait before the next start, given the wait before this run (0 for the first run) and how long it lasted. */
export function restartDelay(previousDelayMs: number, uptimeMs: number, policy: RestartPolicy = RESTART_POLICY): number {
  if (previousDelayMs === 0 || uptimeMs >= policy.healthyAfterMs) return policy.firstDelayMs;
  return Math.min(policy.maxDelayMs, previousDelayMs * 2);
}

export interface SupervisedService {
  name: string;
  /** The running process, or undefined while waiting to restart it. */
  current(): ServiceProcess | undefined;
  /** No more restarts; `signal` to the running process; resolves with its exit (code 0 when none was running). */
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function supervise(
  name: string,
  start: () => ServiceProcess,
  say: (line: string) => void,
  policy: RestartPolicy = RESTART_POLICY,
): SupervisedService {
  let running: ServiceProcess | undefined;
  let stopped = false;
  let delay = 0;
  let timer: NodeJS.Timeout | undefined;

  const launch = () => {
    timer = undefined;
    const startedAt = Date.now();
    const service = start();
    running = service;
    void service.exited.then(({ code, signal }) => {
      running = undefined;
      if (stopped) return;
      delay = restartDelay(delay, Date.now() - startedAt, policy);
      say(
        `${name} exited (${signal ?? `code ${code}`}) after ${formatSeconds(Date.now() - startedAt)}: restarting in ${formatSeconds(delay)}`,
      );
      timer = setTimeout(launch, delay);
    });
  };
  launch();

  return {
    name,
    current: () => running,
    async stop(signal) {
      stopped = true;
      if (timer) clearTimeout(timer);
      const service = running;
      if (!service) return { code: 0, signal: null };
      if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill(signal);
      return service.exited;
    },
  };
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
