// Why the worker process asks a training child to stop at the next batch
// boundary: the client cancelled the job, or the worker is shutting down and
// hands the job back to the queue. Travels as the abort signal's reason.
export const STOP_REASON = {
  cancel: "cancel",
  shutdown: "shutdown",
} as const;

export type StopReason = (typeof STOP_REASON)[keyof typeof STOP_REASON];

export function stopReasonOf(signal: AbortSignal | undefined): StopReason | undefined {
  if (!signal?.aborted) return undefined;
  return signal.reason === STOP_REASON.shutdown ? STOP_REASON.shutdown : STOP_REASON.cancel;
}
