// Everything GET /v1/jobs/{id} shows, read in one Redis command: a Lua script
// returns the job's record, its epoch metrics, the BullMQ fields the view uses,
// the queue state and the queue position. Reading them call by call took five
// round trips per GET. It only reads.
import type { JobRedis } from "./job-records.js";
import { jobKeys } from "./job-records.js";
import type { TrainingQueue } from "./training-queue.js";

/** BullMQ's states as its getState script names them. */
export type BullState = "completed" | "failed" | "delayed" | "prioritized" | "active" | "waiting" | "waiting-children" | "unknown";

/** The BullMQ job hash fields the view uses (BullMQ 6's layout: `ats` is attemptsStarted). */
export interface BullJobFields {
  progress: unknown;
  attemptsStarted: number;
  processedOn?: number;
  finishedOn?: number;
  failedReason?: string;
}

export interface JobRead {
  record: Record<string, string>;
  /** Empty unless asked for. */
  metrics: Record<string, string>;
  /** Undefined when BullMQ no longer has the job. */
  bullJob: BullJobFields | undefined;
  bullState: BullState;
  /** 1 = the next job a worker takes; null unless in the wait list. */
  queuePosition: number | null;
}

// The state checks in the order of BullMQ's getState-8.lua (bullmq 6.7), so a job reads the same state.
const READ_JOB = `
local id = ARGV[1]
local record = redis.call("HGETALL", KEYS[1])
if #record == 0 then return {} end
local metrics = {}
if ARGV[2] == "1" then metrics = redis.call("HGETALL", KEYS[2]) end
local job = redis.call("HMGET", KEYS[3], "progress", "ats", "processedOn", "finishedOn", "failedReason", "timestamp")
local state = "unknown"
local position = -1
if redis.call("ZSCORE", KEYS[4], id) then state = "completed"
elseif redis.call("ZSCORE", KEYS[5], id) then state = "failed"
elseif redis.call("ZSCORE", KEYS[6], id) then state = "delayed"
elseif redis.call("ZSCORE", KEYS[7], id) then state = "prioritized"
elseif redis.call("LPOS", KEYS[8], id) then state = "active"
else
  local index = redis.call("LPOS", KEYS[9], id)
  if index then -- jobs are pushed on the left and taken from the right
    state = "waiting"
    position = redis.call("LLEN", KEYS[9]) - index
  elseif redis.call("LPOS", KEYS[10], id) then state = "waiting"
  elseif redis.call("ZSCORE", KEYS[11], id) then state = "waiting-children"
  end
end
return {record, metrics, job, state, position}
`;

/** The queue-wide keys READ_JOB reads (KEYS[4..11], in this order): a job's state and position depend on them. */
export const QUEUE_STATE_KEYS = ["completed", "failed", "delayed", "prioritized", "active", "wait", "paused", "waiting-children"] as const;

/** Every key READ_JOB reads for the job, in the script's KEYS order. */
export function readJobKeys(db: JobRedis, queue: Pick<TrainingQueue, "keys" | "toKey">, jobId: string): string[] {
  return [jobKeys.record(db, jobId), jobKeys.metrics(db, jobId), queue.toKey(jobId), ...QUEUE_STATE_KEYS.map((name) => queue.keys[name])];
}

const COMMAND = "rfReadJob";
const KEY_COUNT = 3 + QUEUE_STATE_KEYS.length;

/**
 * The script as a command of this client: ioredis sends its SHA (EVALSHA) and the body only when Redis
 * does not know it yet. Sending the 1 KB body with every EVAL took a fifth of a GET's CPU time.
 */
function readJobCommand(redis: JobRedis["redis"]): (...args: string[]) => Promise<unknown> {
  const client = redis as unknown as Record<string, ((...args: string[]) => Promise<unknown>) | undefined>;
  if (!client[COMMAND]) redis.defineCommand(COMMAND, { numberOfKeys: KEY_COUNT, lua: READ_JOB });
  return client[COMMAND]!.bind(redis);
}

type Reply = [] | [string[], string[], (string | null)[], BullState, number];

const pairs = (flat: string[]): Record<string, string> => {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
};

/** The job's parts, or null when its record does not exist (never created, or expired). */
export async function readJob(
  db: JobRedis,
  queue: Pick<TrainingQueue, "keys" | "toKey">,
  jobId: string,
  opts: { metrics: boolean },
): Promise<JobRead | null> {
  const reply = (await readJobCommand(db.redis)(...readJobKeys(db, queue, jobId), jobId, opts.metrics ? "1" : "0")) as Reply;
  if (reply.length === 0) return null;
  const [record, metrics, [progress, ats, processedOn, finishedOn, failedReason, timestamp], bullState, position] = reply;
  // A job hash always has its timestamp: without it BullMQ no longer has the job.
  const bullJob =
    timestamp === null
      ? undefined
      : {
          progress: JSON.parse(progress ?? "0") as unknown,
          attemptsStarted: Number(ats ?? 0),
          processedOn: processedOn ? Number(processedOn) : undefined,
          finishedOn: finishedOn ? Number(finishedOn) : undefined,
          failedReason: failedReason ?? undefined,
        };
  return { record: pairs(record), metrics: pairs(metrics), bullJob, bullState, queuePosition: position >= 0 ? position : null };
}
