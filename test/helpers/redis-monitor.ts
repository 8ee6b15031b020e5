// What clients send to Redis, as its MONITOR feed shows it: tests that count
// the commands a request costs.
import type { Redis } from "ioredis";

/**
 * The commands clients sent to Redis while `run` ran, as Redis' MONITOR feed
 * shows them (commands a Lua script runs are its own, not a client's). Two
 * ECHO markers bracket the window: MONITOR reports commands in the order
 * Redis ran them.
 */
export async function clientCommands(redis: Redis, run: () => Promise<void>): Promise<string[][]> {
  // Its own offline queue: the ECHO below may be sent before this new connection is up (the API's fails fast instead).
  const probe = redis.duplicate({ enableOfflineQueue: true });
  const monitor = await probe.monitor();
  const seen: string[][] = [];
  let inside = false;
  let ended: () => void;
  const end = new Promise<void>((resolve) => (ended = resolve));
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    if (args[0]?.toLowerCase() === "echo" && args[1] === "rf-test-start") inside = true;
    else if (args[0]?.toLowerCase() === "echo" && args[1] === "rf-test-end") {
      inside = false;
      ended();
    } else if (inside && source !== "lua") seen.push(args);
  });
  try {
    await probe.echo("rf-test-start");
    await run();
    await probe.echo("rf-test-end");
    await end;
    return seen;
  } finally {
    // MONITOR lines still in flight when the feed closes (the rate limit's counts are flushed in the background)
    // reach a connection no longer in monitor mode, which ioredis reports as an error: they are of no interest here.
    monitor.on("error", () => {});
    monitor.disconnect();
    probe.disconnect();
  }
}
