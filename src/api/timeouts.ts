// Slow clients must not hold connections for ever (slowloris): headers must
// arrive within HEADERS_TIMEOUT_MS and the whole request within
// REQUEST_TIMEOUT_MS (Node's own checks, which answer 408), and a request body
// that stops arriving for BODY_IDLE_TIMEOUT_MS is cut. A large upload that
// keeps progressing is never cut by the idle timeout; once the body is in, the
// connection may stay quiet while the server works (ingesting an archive,
// streaming events).
import type { ServerOptions } from "node:http";
import type { FastifyInstance } from "fastify";
import type { Config } from "../config.js";

type TimeoutConfig = Pick<Config, "headersTimeoutMs" | "requestTimeoutMs" | "bodyIdleTimeoutMs">;

/** Fastify server options for the header and whole-request timeouts. */
export function serverTimeoutOptions(config: TimeoutConfig): { requestTimeout: number; http: ServerOptions } {
  return {
    requestTimeout: config.requestTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // How often Node checks the two timeouts above (its default, 30 s, would let a slow client stay that much longer).
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
    },
  };
}

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  return headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;
}

/** While a request's body is arriving, its socket times out after BODY_IDLE_TIMEOUT_MS without a byte. */
export function registerBodyIdleTimeout(app: FastifyInstance, config: TimeoutConfig): void {
  app.addHook("onRequest", async (request) => {
    const raw = request.raw;
    if (!hasBody(raw.headers) || raw.complete) return;
    const socket = raw.socket;
    // Injected requests (tests, app.inject) have a stand-in socket without timeouts.
    if (typeof socket?.setTimeout !== "function") return;
    // Node destroys a timed-out socket itself (that is the point); this only logs who it was.
    const stalled = () =>
      request.log.warn({ url: request.url, bodyIdleTimeoutMs: config.bodyIdleTimeoutMs }, "request body stalled: connection closed");
    socket.setTimeout(config.bodyIdleTimeoutMs);
    socket.once("timeout", stalled);
    // A keep-alive socket serves many requests: each one takes its listener back.
    const received = () => {
      socket.setTimeout(0);
      socket.off("timeout", stalled);
    };
    raw.once("end", received);
    raw.once("close", received);
  });
}
