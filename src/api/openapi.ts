// openapi.yaml is the contract. Routes take their request and response schemas
// from it (routeSchema), so validation and documentation cannot drift apart.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { FastifyInstance, FastifySchema } from "fastify";

type Json = Record<string, any>;

export const OPENAPI_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "openapi.yaml");

let cached: Json | undefined;

export function loadOpenApi(): Json {
  cached ??= parse(readFileSync(OPENAPI_PATH, "utf8")) as Json;
  return cached;
}

/** `#/components/schemas/Job` -> `Job#` (a schema added with app.addSchema). */
function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === "object") {
    const out: Json = {};
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
  const schemas: Json = loadOpenApi().components?.schemas ?? {};
  for (const [name, schema] of Object.entries(schemas)) {
    app.addSchema({ $id: name, ...(rewriteRefs(schema) as Json) });
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
  const pathItem: Json | undefined = doc.paths?.[toOpenApiPath(fastifyPath)];
  const op: Json | undefined = pathItem?.[method.toLowerCase()];
  if (!op) throw new Error(`openapi.yaml has no operation ${method.toUpperCase()} ${toOpenApiPath(fastifyPath)}`);

  const schema: Json = {};
  if (op.tags) schema.tags = op.tags;
  if (op.summary) schema.summary = op.summary;
  const params = [...(pathItem?.parameters ?? []), ...(op.parameters ?? [])].map((p: Json) =>
    p.$ref ? doc.components.parameters[p.$ref.split("/").pop()] : p,
  );
  for (const [where, key] of [["path", "params"], ["query", "querystring"], ["header", "headers"]] as const) {
    const list = params.filter((p: Json) => p.in === where);
    if (list.length === 0) continue;
    // Fastify sees header names in lower case.
    const name = (p: Json): string => (where === "header" ? String(p.name).toLowerCase() : p.name);
    schema[key] = {
      type: "object",
      properties: Object.fromEntries(list.map((p: Json) => [name(p), rewriteRefs(p.schema ?? {})])),
      required: list.filter((p: Json) => p.required).map(name),
      additionalProperties: where !== "query",
    };
  }
  const jsonBody = op.requestBody?.content?.["application/json"]?.schema;
  if (jsonBody) schema.body = rewriteRefs(jsonBody);

  const responses: Json = {};
  for (const [status, res] of Object.entries<Json>(op.responses ?? {})) {
    const resolved = res.$ref ? doc.components.responses[res.$ref.split("/").pop()] : res;
    const body = resolved?.content?.["application/json"]?.schema;
    if (body) responses[status] = rewriteRefs(body);
  }
  if (Object.keys(responses).length > 0) schema.response = responses;
  return schema as FastifySchema;
}

/** Every "METHOD /path" that openapi.yaml documents. */
export function documentedOperations(): string[] {
  const out: string[] = [];
  for (const [p, item] of Object.entries<Json>(loadOpenApi().paths ?? {})) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      if (item[method]) out.push(`${method.toUpperCase()} ${p}`);
    }
  }
  return out.sort();
}
