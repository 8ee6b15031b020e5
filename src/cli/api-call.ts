// What the commands that talk to a running service share: --url/--key (or
// RESNET_FINETUNE_URL / RESNET_FINETUNE_KEY), and the service's coded errors
// passed through to the command line's error line and exit code.
import type { ApiErrorBody, Connection } from "../client/api-client.js";

export const DEFAULT_URL = "http://127.0.0.1:3000";

/** Options every API command takes. */
export const CONNECTION_OPTIONS = { url: { type: "string" }, key: { type: "string" } } as const;

export function connectionFrom(values: { url?: string; key?: string }, env: NodeJS.ProcessEnv = process.env): Connection {
  return { url: values.url ?? env.RESNET_FINETUNE_URL ?? DEFAULT_URL, key: values.key ?? env.RESNET_FINETUNE_KEY ?? undefined };
}

/** The service answered with an error (status >= 400), or could not be reached (status 0). */
export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody["error"],
  ) {
    super(body.message);
  }

  /** 2: the request was refused (the caller can fix it); 1: the service failed or is unreachable. */
  get exitCode(): number {
    return this.status >= 400 && this.status < 500 ? 2 : 1;
  }
}

/** The `data` of an openapi-fetch answer, or an ApiCallError carrying the service's error. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok && result.data !== undefined) return result.data;
  throw errorOf(result.response.status, result.error);
}

export function errorOf(status: number, body: unknown): ApiCallError {
  const error = (body as ApiErrorBody | undefined)?.error;
  return new ApiCallError(status, error ?? { code: "UNEXPECTED_RESPONSE", message: `the service answered ${status}`, details: null });
}

/** fetch, with a refused connection turned into a coded error naming the URL. */
export async function reach<T>(connection: Connection, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApiCallError) throw err;
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new ApiCallError(0, {
      code: "SERVICE_UNREACHABLE",
      message: `cannot reach ${connection.url} (${cause}); is the service running? (--url or RESNET_FINETUNE_URL)`,
      details: { url: connection.url },
    });
  }
}
