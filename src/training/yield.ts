// Training steps are synchronous and batch sources may resolve without real
// I/O, so an epoch could hold the event loop for minutes: between batches we
// let pending I/O run (a cancel message, a lock renewal, an abort).
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
