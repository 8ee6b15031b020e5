// Checks a response against the schema openapi.yaml documents for it.
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { loadOpenApi, toOpenApiPath } from "../../src/api/openapi.js";
import { type HttpMethod, isRef, refName } from "../../src/api/openapi-document.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ components: loadOpenApi().components }, "openapi");

function rewrite(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewrite);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, k === "$ref" && typeof v === "string" && v.startsWith("#/") ? `openapi${v}` : rewrite(v)]),
    );
  }
  return value;
}

/** Asserts the status is documented for the operation and the JSON body matches its schema. */
export function assertDocumented(res: { statusCode: number; body: unknown }, method: string, fastifyPath: string): void {
  const doc = loadOpenApi();
  const op = doc.paths[toOpenApiPath(fastifyPath)]?.[method.toLowerCase() as HttpMethod];
  assert.ok(op, `openapi.yaml documents ${method} ${fastifyPath}`);
  const documented = op.responses?.[String(res.statusCode)];
  assert.ok(documented, `openapi.yaml documents status ${res.statusCode} of ${method} ${fastifyPath}`);
  const response = isRef(documented) ? doc.components.responses[refName(documented.$ref)] : documented;
  const schema = response.content?.["application/json"]?.schema;
  if (!schema) return;
  const validate = ajv.compile(rewrite(schema) as object);
  const body = typeof res.body === "string" ? JSON.parse(res.body) : res.body;
  assert.ok(validate(body), `${method} ${fastifyPath} ${res.statusCode}: ${ajv.errorsText(validate.errors)}`);
}
