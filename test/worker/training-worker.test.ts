import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, type Job } from "bullmq";
import { Redis } from "ioredis";
import { startRedis } from "../helpers/redis.js";
import { testConfig } from "../helpers/app.js";
import { createLogger } from "../../src/log.js";
import { childExecArgv, createTrainingWorker } from "../../src/worker/training-worker.js";
import { TRAINING_QUEUE } from "../../src/jobs/training-queue.js";
import { jobRedis } from "../../src/jobs/job-records.js";
import { STOP_REASON } from "../../src/worker/stop-reasons.js";

const echoProcessor = fileURLToPath(new URL("./fixtures/echo-processor.ts", import.meta.url));

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const redis = await startRedis();
  const config = await testConfig({ REDIS_URL: redis.url, WORKER_LOCK_DURATION_MS: "2000", WORKER_STALLED_INTERVAL_MS: "1000" });
  const connections = [1, 2, 3].map(() => new Redis(redis.url, { maxRetriesPerRequest: null }));
  const queue = new Queue(TRAINING_QUEUE, { connection: connections[0], prefix: config.redisPrefix });
  const events = new QueueEvents(TRAINING_QUEUE, { connection: connections[1], prefix: config.redisPrefix });
  await events.waitUntilReady();
  const tw = createTrainingWorker({
    config,
    connection: connections[2],
    db: jobRedis(connections[2], config),
    log: createLogger("silent"),
    processorFile: echoProcessor,
  });
  t.after(async () => {
    await tw.shutdown();
    await events.close();
    await queue.close();
    for (const c of connections) c.disconnect();
    await redis.stop();
  });
  return { queue, events, tw };
}

function progressPid(job: Job | undefined): number | undefined {
  return (job?.progress as { pid?: number } | undefined)?.pid;
}

async function waitForPid(events: QueueEvents, jobId: string, not?: number): Promise<number> {
  return new Promise((resolve) => {
    const onProgress = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
      const pid = (data as { pid?: number }).pid;
      if (id === jobId && pid && pid !== not) {
        events.off("progress", onProgress);
        resolve(pid);
      }
    };
    events.on("progress", onProgress);
  });
}

test("childExecArgv keeps the loaders and drops test and inspector flags", () => {
  assert.deepEqual(
    childExecArgv([
      "--import",
      "tsx",
      "--test",
      "--test-reporter=spec",
      "--inspect=9229",
      "--require",
      "/x/preflight.cjs",
      "--conditions=dev",
    ]),
    ["--import", "tsx", "--require", "/x/preflight.cjs", "--conditions=dev"],
  );
});

test("a job runs in a TypeScript child process, which survives kill -9 by retrying, and stops on request", {
  timeout: 60_000,
}, async (t) => {
  const { queue, events, tw } = await setup(t);

  const quick = await queue.add("train", { value: 7 });
  const result = (await quick.waitUntilFinished(events, 20_000)) as { pid: number; echoed: number };
  assert.equal(result.echoed, 7);
  assert.notEqual(result.pid, process.pid);
  const finished = await queue.getJob(quick.id!);
  assert.ok(finished);
  assert.equal((finished.progress as { typescript: boolean }).typescript, true);

  const pidSeen = waitForPid(events, "long");
  const long = await queue.add("train", { mode: "wait" }, { jobId: "long", attempts: 2 });
  const firstPid = await pidSeen;
  const secondPidSeen = waitForPid(events, "long", firstPid);
  process.kill(firstPid, "SIGKILL");
  const secondPid = await secondPidSeen;
  assert.notEqual(secondPid, firstPid);
  assert.equal(tw.stopJob("long", STOP_REASON.cancel), true);
  assert.deepEqual(await long.waitUntilFinished(events, 20_000), { stoppedBy: "cancel" });
  const done = await queue.getJob("long");
  // One failed attempt (the killed child), then the completed one.
  assert.equal(done?.attemptsMade, 2);
  assert.equal(progressPid(done), secondPid);
});

test("shutdown hands a running job back to the queue and closes the worker", { timeout: 60_000 }, async (t) => {
  const { queue, events, tw } = await setup(t);
  const pidSeen = waitForPid(events, "held");
  await queue.add("train", { mode: "wait" }, { jobId: "held", attempts: 1 });
  await pidSeen;
  await tw.shutdown();
  assert.equal(tw.worker.isRunning(), false);
  assert.equal(await queue.getJobState("held"), "waiting");
  assert.equal((await queue.getJob("held"))?.attemptsMade, 0);
});
