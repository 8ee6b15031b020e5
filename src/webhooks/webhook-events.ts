// What a job tells its webhook: one event per state change, as the Standard
// Webhooks payload {type, timestamp, data}. Event ids are fixed by job, type
// and attempt, so the same change reported twice is one delivery.
import { randomUUID } from "node:crypto";

export const WEBHOOK_EVENT_TYPES = ["job.queued", "job.running", "job.completed", "job.failed", "job.cancelled"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** `webhook` of a job spec: where to POST and which events (all by default). */
export interface WebhookSpec {
  url: string;
  events: WebhookEventType[];
}

export interface WebhookEventData {
  jobId: string;
  state: "queued" | "running" | "completed" | "failed" | "cancelled";
  datasetId: string;
  /** Attempts started so far. */
  attempt: number;
  modelId: string | null;
  error: { code: string; message: string } | null;
}

export interface WebhookEvent {
  type: WebhookEventType;
  /** When the change happened, ISO 8601. */
  timestamp: string;
  data: WebhookEventData;
}

/** `msg_<job uuid>_<state>_<attempt>`: stable, so a second report of one change is the same message. */
export function webhookEventId(jobId: string, type: WebhookEventType, attempt: number): string {
  const uuid = /^job_(.+)$/.exec(jobId)?.[1] ?? randomUUID();
  return `msg_${uuid}_${type.slice("job.".length)}_${attempt}`;
}
