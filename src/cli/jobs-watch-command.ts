// `jobs watch ID`: follows a job's event stream until it ends, with a progress
// bar per epoch (batches, then loss and accuracy) on stderr, and prints the
// final job on stdout. The exit code says how the job ended, for scripts.
import cliProgress from "cli-progress";
import { AppError } from "../errors.js";
import { authHeaders, createApiClient, type Connection, type Job } from "../client/api-client.js";
import { readSse, type SseEvent } from "../client/sse.js";
import { parseCommandArgs, type CliCommand } from "./cli-command.js";
import { ApiCallError, CONNECTION_OPTIONS, connectionFrom, errorOf, reach, unwrap } from "./api-call.js";

/** Exit codes of `jobs watch` by final state (0 completed). */
export const WATCH_EXIT_CODES = { completed: 0, failed: 3, cancelled: 4 } as const;
const FINAL = Object.keys(WATCH_EXIT_CODES);
/** A dropped stream is resumed (Last-Event-ID) this many times in a row before giving up. */
const RECONNECTS = 10;

interface EpochMetrics {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
}

const fmt = (v: number | null | undefined) => (typeof v === "number" ? v.toFixed(4) : "-");

/** Bars on a terminal; one plain line per epoch otherwise (logs, CI). */
function epochDisplay(stream: NodeJS.WriteStream, totalEpochs: number) {
  const tty = Boolean(stream.isTTY);
  const bars = tty
    ? new cliProgress.MultiBar(
        {
          stream,
          format:
            "epoch {epoch}/{epochs} |{bar}| {value}/{total} batches  loss {loss}  acc {accuracy}  val_loss {valLoss}  val_acc {valAccuracy}",
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const open = new Map<number, cliProgress.SingleBar>();
  const payload = (epoch: number, epochs: number, m?: EpochMetrics) => ({
    epoch,
    epochs,
    loss: fmt(m?.loss),
    accuracy: fmt(m?.accuracy),
    valLoss: fmt(m?.valLoss),
    valAccuracy: fmt(m?.valAccuracy),
  });
  let epochs = totalEpochs;
  let batches = 1;
  return {
    progress(p: { epoch: number; epochs: number; batch: number; batches: number }) {
      epochs = p.epochs;
      batches = p.batches;
      if (!bars) return;
      let bar = open.get(p.epoch);
      if (!bar) {
        bar = bars.create(p.batches, 0, payload(p.epoch, p.epochs));
        open.set(p.epoch, bar);
      }
      bar.update(p.batch);
    },
    epoch(m: EpochMetrics) {
      if (!bars) {
        stream.write(
          `epoch ${m.epoch}/${epochs} loss ${fmt(m.loss)} acc ${fmt(m.accuracy)} val_loss ${fmt(m.valLoss)} val_acc ${fmt(m.valAccuracy)}\n`,
        );
        return;
      }
      let bar = open.get(m.epoch);
      if (!bar) {
        bar = bars.create(batches, 0, payload(m.epoch, epochs));
        open.set(m.epoch, bar);
      }
      bar.update(bar.getTotal(), payload(m.epoch, epochs, m));
      bar.stop();
    },
    line(text: string) {
      if (bars) bars.log(`${text}\n`);
      else stream.write(`${text}\n`);
    },
    stop() {
      bars?.stop();
    },
  };
}

async function openStream(connection: Connection, jobId: string, lastEventId: string | undefined): Promise<Response> {
  const response = await fetch(`${connection.url.replace(/\/+$/, "")}/v1/jobs/${encodeURIComponent(jobId)}/events`, {
    headers: { accept: "text/event-stream", ...authHeaders(connection), ...(lastEventId ? { "last-event-id": lastEventId } : {}) },
  });
  if (!response.ok) throw errorOf(response.status, await response.json().catch(() => undefined));
  return response;
}

export const jobsWatchCommand: CliCommand = {
  name: "jobs watch",
  usage: "jobs watch ID [--url URL] [--key KEY]",
  description: `follow a job to its end with a progress bar per epoch (stderr); prints the final job; exit ${WATCH_EXIT_CODES.completed} completed, ${WATCH_EXIT_CODES.failed} failed, ${WATCH_EXIT_CODES.cancelled} cancelled`,
  async run(args) {
    const { values, positionals } = parseCommandArgs(this, args, CONNECTION_OPTIONS, 1);
    const jobId = positionals[0];
    const connection = connectionFrom(values);
    const client = createApiClient(connection);
    // Asking for the job first turns a wrong id or key into its coded error rather than a broken stream.
    const job = await reach(connection, async () => unwrap(await client.GET("/v1/jobs/{id}", { params: { path: { id: jobId } } })));
    const display = epochDisplay(process.stderr, job.spec.epochs ?? 0);
    let lastEventId: string | undefined;
    let final: Job | undefined;
    try {
      for (let drops = 0; ; ) {
        try {
          const response = await reach(connection, () => openStream(connection, jobId, lastEventId));
          for await (const event of readSse(response) as AsyncGenerator<SseEvent>) {
            if (event.id) lastEventId = event.id;
            drops = 0;
            if (event.event === "progress") display.progress(event.data as never);
            else if (event.event === "epoch") display.epoch(event.data as EpochMetrics);
            else if (event.event === "state") display.line(`state: ${(event.data as { state: string }).state}`);
            else if (FINAL.includes(event.event)) {
              final = event.data as Job;
              break;
            }
          }
        } catch (err) {
          // A refused or dropped connection (the API restarting) is worth another try; an answer of the API is not.
          const transient = err instanceof TypeError || (err instanceof ApiCallError && err.status === 0);
          if (!transient) throw err;
        }
        if (final) break;
        if (++drops > RECONNECTS) {
          throw new AppError("SERVICE_UNAVAILABLE", `the event stream of ${jobId} kept closing before the job ended`, {
            jobId,
            lastEventId,
          });
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      display.stop();
    }
    return { output: final, exitCode: WATCH_EXIT_CODES[final.state as keyof typeof WATCH_EXIT_CODES] };
  },
};
