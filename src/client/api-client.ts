// The typed client of the HTTP API: openapi-fetch over the types that
// `npm run gen:client` generates from openapi.yaml into api-types.ts (a test
// fails when they drift), so a call's path, parameters and answer are checked
// by the compiler against the contract.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./api-types.js";

export type ApiClient = Client<paths>;
export type Job = components["schemas"]["Job"];
export type JobSpec = components["schemas"]["JobSpec"];
export type Dataset = components["schemas"]["Dataset"];
export type ApiErrorBody = components["schemas"]["Error"];

export interface Connection {
  /** Base URL of the service, e.g. http://127.0.0.1:3000 */
  url: string;
  /** API key; undefined when the service runs without API_KEYS. */
  key?: string;
}

export function authHeaders(connection: Connection): Record<string, string> {
  return connection.key ? { authorization: `Bearer ${connection.key}` } : {};
}

export function createApiClient(connection: Connection): ApiClient {
  return createClient<paths>({ baseUrl: connection.url.replace(/\/+$/, ""), headers: authHeaders(connection) });
}
