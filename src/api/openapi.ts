// openapi.yaml is the contract. Routes take their request and response schemas
// from it (routeSchema), so validation and documentation cannot drift apart.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { FastifyInstance, FastifySchema } from "fastify";
import { HTTP_METHODS, type HttpMethod, isRef, type OpenApiDocument, type Parameter, refName } from "./openapi-document.js";

export const OPENAPI_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "openapi.yaml");

let cached: OpenApiDocument | undefined;

export function loadOpenApi(): OpenApiDocument {
  cached ??= parse(readFileSync(OPENAPI_PATH, "utf8")) as OpenApiDocument;
  return cached;
}

/** `#/components/schemas/Job` -> `Job#` (a schema added with app.addSchema). */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/")) {
        out[k] = `${v.slice("#/components/schemas/".length)}#`;
      } else if (k !== "example" && k !== "examples") {
        out[k] = rewriteRefs(v);
      }
    }
    return out;
  }
  return value;
}

/** Adds every component schema to the app so route schemas can refer to them. */
export function addOpenApiSchemas(app: FastifyInstance): void {
  const schemas = loadOpenApi().components?.schemas ?? {};
  for (const [name, schema] of Object.entries(schemas)) {
    app.addSchema({ $id: name, ...(rewriteRefs(schema) as Record<string, unknown>) });
  }
}

/** `/v1/jobs/:id` -> `/v1/jobs/{id}` */
export function toOpenApiPath(fastifyPath: string): string {
  return fastifyPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

/**
 * The Fastify schema of one operation of openapi.yaml: path, query and header
 * parameters, a JSON request body, and the JSON responses.
 */
export function routeSchema(method: string, fastifyPath: string): FastifySchema {
  const doc = loadOpenApi();
  const pathItem = doc.paths?.[toOpenApiPath(fastifyPath)];
  const op = pathItem?.[method.toLowerCase() as HttpMethod];
  if (!op) throw new Error(`openapi.yaml has no operation ${method.toUpperCase()} ${toOpenApiPath(fastifyPath)}`);

  const schema: Record<string, unknown> = {};
  if (op.tags) schema.tags = op.tags;
  if (op.summary) schema.summary = op.summary;
  const params = [...(pathItem?.parameters ?? []), ...(op.parameters ?? [])].map((p) =>
    isRef(p) ? doc.components.parameters[refName(p.$ref)] : p,
  );
  for (const [where, key] of [
    ["path", "params"],
    ["query", "querystring"],
    ["header", "headers"],
  ] as const) {
    const list = params.filter((p) => p.in === where);
    if (list.length === 0) continue;
    // Fastify sees header names in lower case.
    const name = (p: Parameter): string => (where === "header" ? p.name.toLowerCase() : p.name);
    schema[key] = {
      type: "object",
      properties: Object.fromEntries(list.map((p) => [name(p), rewriteRefs(p.schema ?? {})])),
      required: list.filter((p) => p.required).map(name),
      additionalProperties: where !== "query",
    };
  }
  const jsonBody = op.requestBody?.content?.["application/json"]?.schema;
  if (jsonBody) schema.body = rewriteRefs(jsonBody);

  const responses: Record<string, unknown> = {};
  for (const [status, res] of Object.entries(op.responses ?? {})) {
    const resolved = isRef(res) ? doc.components.responses[refName(res.$ref)] : res;
    const body = resolved?.content?.["application/json"]?.schema;
    if (body) responses[status] = rewriteRefs(body);
  }
  if (Object.keys(responses).length > 0) schema.response = responses;
  return schema as FastifySchema;
}

/** Every "METHOD /path" that openapi.yaml documents. */
export function documentedOperations(): string[] {
  const out: string[] = [];
  for (const [p, item] of Object.entries(loadOpenApi().paths ?? {})) {
    for (const method of HTTP_METHODS) {
      if (item[method]) out.push(`${method.toUpperCase()} ${p}`);
    }
  }
  return out.sort();
}
