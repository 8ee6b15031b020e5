// One hostile input of the benchmark: what it attacks and
// how to fire it at a running service.
import { multipartBody } from "../test/helpers/dataset-archives.js";
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

export interface HostileInput<P = unknown> {
  name: string;
  /** What it attacks, as docs/security.md groups the threats. */
  threat: string;
  /** Fired this many times at once (default 4). */
  copies?: number;
  /** Builds what is sent (a bomb takes seconds of CPU) before the measurement starts, so it is not measured. */
  prepare?(ctx: HostileContext): Promise<P>;
  run(ctx: HostileContext, prepared: P): Promise<Outcome | Outcome[]>;
}

/** An input that uploads `build()`'s bytes to `url`: built once, sent by every copy. */
export function upload(
  name: string,
  threat: string,
  url: string | ((ctx: HostileContext) => Promise<string | undefined>),
  filename: string,
  build: () => Promise<Buffer>,
  field = "file",
): HostileInput<Buffer> {
  return {
    name,
    threat,
    prepare: build,
    async run(ctx, bytes) {
      const target = typeof url === "string" ? url : await url(ctx);
      if (!target) return { status: "skipped", code: "no trained model" };
      const body = multipartBody(bytes, {}, filename, field);
      const res = await fetch(`${ctx.base}${target}`, { method: "POST", headers: { ...ctx.headers, ...body.headers }, body: body.payload });
      const text = await res.text();
      return { status: res.status, code: /"code":"([A-Z_]+)"/.exec(text)?.[1] };
    },
  };
}
