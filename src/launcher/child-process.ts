// A service process started by `npm start`: its stdout and stderr lines are
// prefixed with its name ("[api] ") and, on a terminal, pino's JSON is prettified.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import pinoPretty from "pino-pretty";

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** Resolves when the process has exited and all its output has been written. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export type LineFormatter = (line: string) => string;

/** Pretty-prints pino JSON lines (anything else passes through unchanged). */
export function prettyLines(colorize: boolean): LineFormatter {
  const pretty = pinoPretty.prettyFactory({ colorize, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,name" });
  return (line) => {
    if (!line.startsWith("{")) return line;
    try {
      return pretty(JSON.parse(line)).replace(/\n$/, "");
    } catch {
      return line;
    }
  };
}

/**
 * Runs `node <script>` in its own process group, so a Ctrl-C in the terminal
 * reaches only the launcher, which forwards it once.
 */
export function startService(
  name: string,
  script: string,
  env: NodeJS.ProcessEnv,
  write: (text: string) => void,
  format: LineFormatter = (l) => l,
): ServiceProcess {
  const child = spawn(process.execPath, [...process.execArgv, script], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: 1, signal: null }));
  });
  for (const stream of [child.stdout, child.stderr]) {
    const lines = createInterface({ input: stream!, crlfDelay: Infinity });
    lines.on("line", (line) => {
      const prefix = `[${name}] `;
      write(`${prefix}${format(line).split("\n").join(`\n${prefix}`)}\n`);
    });
  }
  return { name, child, exited };
}
