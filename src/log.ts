// The one logger factory: JSON lines, pretty only when stdout is a terminal.
import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

export function loggerOptions(level: string, name?: string): LoggerOptions {
  const pretty = process.stdout.isTTY && process.env.NODE_ENV !== "production";
  return {
    level,
    name,
    redact: { paths: ["req.headers.authorization", "headers.authorization", "apiKey", "key"], censor: "[redacted]" },
    ...(pretty ? { transport: { target: "pino-pretty", options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" } } } : {}),
  };
}

export function createLogger(level: string, name?: string): Logger {
  return pino(loggerOptions(level, name));
}
