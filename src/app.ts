// buildApp: the whole HTTP API as a Fastify instance that does not listen, so
// tests inject requests or listen on a free port themselves.
import Fastify, { type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import multipart from "@fastify/multipart";
import type { Config } from "./config.js";
import { loggerOptions } from "./log.js";
import type { Storage } from "./storage/storage.js";
import { createLocalStorage } from "./storage/local-storage.js";
import { registerErrorHandler } from "./api/error-handler.js";
import { registerAuth } from "./api/auth.js";
import { addOpenApiSchemas, loadOpenApi, OPENAPI_PATH } from "./api/openapi.js";
import { healthRoutes } from "./api/health-routes.js";
import { datasetsRoutes } from "./api/datasets-routes.js";

export interface AppDeps {
  storage: Storage;
  /** Whether a queued or running job uses a dataset (DELETE answers 409 then). */
  isDatasetInUse: (tenant: string, datasetId: string) => Promise<boolean>;
}

export async function buildApp(config: Config, deps: Partial<AppDeps> = {}): Promise<FastifyInstance> {
  const storage = deps.storage ?? createLocalStorage(config.dataDir);
  const app = Fastify({
    logger: loggerOptions(config.logLevel, "api"),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true, allErrors: false } },
    bodyLimit: 1024 * 1024,
  });

  // External plugins first, then the app's own, then routes.
  await app.register(swagger, { mode: "static", specification: { document: loadOpenApi() as never, path: OPENAPI_PATH, baseDir: "." } });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  // Uploads are streamed part by part (request.parts()); each route sets its own size limits.
  await app.register(multipart, { limits: { fileSize: config.maxUploadBytes, files: 1, parts: 10, fieldSize: 64 * 1024 } });
  registerErrorHandler(app);
  registerAuth(app, config.apiKeys);
  addOpenApiSchemas(app);

  app.get("/openapi.json", { schema: { hide: true } }, async () => loadOpenApi());
  await app.register(healthRoutes, { storage });
  await app.register(datasetsRoutes, { storage, config, isDatasetInUse: deps.isDatasetInUse });

  return app;
}
