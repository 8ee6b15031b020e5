// Entry point of the API process: build the app and listen.
import { buildApp } from "./app.js";
import { loadConfig } from "./config.js";

const config = loadConfig();
const app = await buildApp(config);
const auth = config.apiKeys.size > 0;
const host = config.host ?? (auth ? "0.0.0.0" : "127.0.0.1");
if (!auth) {
  app.log.warn(
    { host },
    config.host ? "API_KEYS is not set: authentication is off" : "API_KEYS is not set: authentication is off, listening on loopback only",
  );
}

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  app.log.info({ signal }, "shutting down");
  const timer = setTimeout(() => {
    app.log.error("shutdown timed out");
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  await app.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

await app.listen({ port: config.port, host });
