// GET /v1/jobs/{id}/events as Server-Sent Events. Event ids are "<E>.<n>": E is
// the last epoch whose `epoch` event the client has, n counts the events since
// it. A client reconnecting with Last-Event-ID first gets the epochs after E
// from the persisted metrics, then live events; a final completed, failed or
// cancelled event ends the stream.
import type { FastifyReply, FastifyRequest } from "fastify";
import { readEpochMetrics, type JobRedis } from "../jobs/job-records.js";
import type { EpochMetrics } from "../training/epoch-metrics.js";
import type { JobEvent, JobEventsHub } from "../jobs/job-events.js";
import { isFinalState, type JobService, type JobView } from "../jobs/job-service.js";

export interface EventStreamOptions {
  /** Comment line sent this often so proxies keep the connection open. */
  heartbeatMs: number;
  /** Batch-level progress events are sent at most this often per client. */
  progressIntervalMs: number;
}

export const EVENT_STREAM_DEFAULTS: EventStreamOptions = { heartbeatMs: 15_000, progressIntervalMs: 250 };

/** "3.17" -> {epoch: 3, seq: 17}; anything else starts from the beginning. */
export function parseLastEventId(header: string | undefined): { epoch: number; seq: number } {
  const match = header ? /^(\d{1,6})\.(\d{1,12})$/.exec(header.trim()) : null;
  return match ? { epoch: Number(match[1]), seq: Number(match[2]) } : { epoch: 0, seq: 0 };
}

function stateData(view: JobView) {
  return {
    id: view.id,
    state: view.state,
    queuePosition: view.queuePosition,
    attempts: view.attempts,
    cancelRequested: view.cancelRequested,
  };
}

/** Streams one job's events to the client; resolves once the stream is set up (it ends on its own). */
export async function streamJobEvents(args: {
  request: FastifyRequest;
  reply: FastifyReply;
  jobs: JobService;
  hub: JobEventsHub;
  db: JobRedis;
  view: JobView;
  tenant: string;
  options: EventStreamOptions;
  /** Open streams, ended when the server closes. */
  streams: Set<() => void>;
}): Promise<void> {
  const { request, reply, jobs, hub, db, tenant, options, streams } = args;
  const jobId = args.view.id;
  const res = reply.raw;
  const last = parseLastEventId(request.headers["last-event-id"] as string | undefined);
  let epoch = last.epoch;
  let seq = last.seq;
  let ended = false;
  let lastProgressAt = 0;

  reply.hijack();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });

  function send(event: string, data: unknown, id = `${epoch}.${++seq}`): void {
    if (ended) return;
    res.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  function sendEpoch(metrics: EpochMetrics): void {
    if (metrics.epoch <= epoch) return;
    epoch = metrics.epoch;
    seq = 0;
    send("epoch", metrics, `${epoch}.0`);
  }

  // Listen before reading the job, so nothing between the read and the subscription is lost.
  const queued: JobEvent[] = [];
  let live = false;
  let chain = Promise.resolve();
  const unsubscribe = hub.subscribe(jobId, (event) => {
    if (!live) queued.push(event);
    else chain = chain.then(() => handle(event)).catch((err) => finish(err));
  });
  const heartbeat = setInterval(() => res.write(": heartbeat\n\n"), options.heartbeatMs);

  function finish(err?: unknown): void {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    streams.delete(end);
    if (err) request.log.warn({ err, jobId }, "event stream failed");
    res.end();
  }
  const end = () => finish();
  streams.add(end);
  res.on("close", end);

  async function sendFinal(view: JobView): Promise<void> {
    for (const m of await readEpochMetrics(db, jobId, epoch)) sendEpoch(m);
    send(view.state, view);
    finish();
  }

  async function handle(event: JobEvent): Promise<void> {
    if (ended) return;
    if (event.type === "progress") {
      const p = event.progress;
      if (p.metrics) sendEpoch(p.metrics);
      else if (p.checkpoint) send("checkpoint", { epoch: p.checkpoint.epoch });
      else if (Date.now() - lastProgressAt >= options.progressIntervalMs) {
        lastProgressAt = Date.now();
        send("progress", { epoch: p.epoch, epochs: p.epochs, batch: p.batch, batches: p.batches, fraction: p.fraction });
      }
      return;
    }
    const view = await jobs.get(tenant, jobId, { metrics: false });
    if (!view) return finish();
    if (isFinalState(view.state)) return sendFinal(view);
    if (event.type === "state") send("state", stateData(view));
  }

  try {
    const view = await jobs.get(tenant, jobId, { metrics: false });
    if (!view) return finish();
    for (const m of await readEpochMetrics(db, jobId, epoch)) sendEpoch(m);
    if (isFinalState(view.state)) return await sendFinal(view);
    send("state", stateData(view));
    live = true;
    for (const event of queued.splice(0)) chain = chain.then(() => handle(event));
    chain = chain.catch((err) => finish(err));
  } catch (err) {
    finish(err);
  }
}
