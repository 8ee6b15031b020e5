// One hostile input of the benchmark: what it attacks (the item) and
// how to fire it at a running service.
export interface Outcome {
  /** HTTP status, or "closed" when the server cut the connection without answering. */
  status: number | string;
  code?: string;
}

export interface HostileContext {
  /** http://127.0.0.1:<port> of the API. */
  base: string;
  port: number;
  /** A ready dataset of the tenant "acme" (classes cat, dog). */
  datasetId: string;
  /** A small job of "acme" (event streams follow it; the worker trains it). */
  jobId: string;
  /** The model that job makes, once trained (waits for it; undefined if it fails or takes too long). */
  model(): Promise<string | undefined>;
  dataDir: string;
  /** acme's Authorization header. */
  headers: Record<string, string>;
}

export interface HostileInput {
  name: string;
  /** The numbered item of the security issue it belongs to. */
  item: number;
  /** Fired this many times at once (default 4). */
  copies?: number;
  run(ctx: HostileContext): Promise<Outcome | Outcome[]>;
}
