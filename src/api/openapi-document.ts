// The parts of openapi.yaml that the code reads, typed. Schemas are passed on to
// Fastify and Ajv as they are, so only the keywords read here have a type.

export interface JsonSchema {
  $ref?: string;
  properties?: Record<string, JsonSchema>;
  default?: unknown;
  maximum?: number;
  maxItems?: number;
  [keyword: string]: unknown;
}

/** `{ $ref: "#/components/parameters/JobId" }` in place of the object it names. */
export interface Ref {
  $ref: string;
}

export interface Parameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema?: JsonSchema;
}

export type Content = Record<string, { schema?: JsonSchema }>;

export interface ResponseObject {
  description?: string;
  content?: Content;
}

export interface Operation {
  tags?: string[];
  summary?: string;
  parameters?: (Parameter | Ref)[];
  requestBody?: { content?: Content };
  responses?: Record<string, ResponseObject | Ref>;
}

export const HTTP_METHODS = ["get", "post", "put", "patch", "delete"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export type PathItem = { parameters?: (Parameter | Ref)[] } & { [M in HttpMethod]?: Operation };

export interface OpenApiDocument {
  paths: Record<string, PathItem>;
  components: {
    schemas: Record<string, JsonSchema>;
    parameters: Record<string, Parameter>;
    responses: Record<string, ResponseObject>;
  };
  [key: string]: unknown;
}

export function isRef(value: object): value is Ref {
  return typeof (value as Partial<Ref>).$ref === "string";
}

/** `#/components/parameters/JobId` -> `JobId` */
export function refName(ref: string): string {
  return ref.slice(ref.lastIndexOf("/") + 1);
}
