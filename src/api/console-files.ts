// The web console: static files under /console/ (public/, and uPlot's and
// openapi-fetch's browser builds from node_modules), and / sending a browser there. No key is needed
// for the files; the console asks for one and calls the /v1 API with it.
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import fastifyStatic from "@fastify/static";

export const CONSOLE_PREFIX = "/console/";
const PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "public");
const require = createRequire(import.meta.url);
const UPLOT_DIR = path.dirname(require.resolve("uplot/dist/uPlot.iife.min.js"));
const OPENAPI_FETCH_DIR = path.dirname(require.resolve("openapi-fetch/dist/index.mjs"));

export async function registerConsole(app: FastifyInstance): Promise<void> {
  // decorateReply: false, as swagger-ui's own instance of the plugin already decorates the reply.
  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: CONSOLE_PREFIX,
    decorateReply: false,
    cacheControl: false,
    index: ["index.html"],
  });
  await app.register(fastifyStatic, {
    root: UPLOT_DIR,
    prefix: `${CONSOLE_PREFIX}vendor/uplot/`,
    decorateReply: false,
    allowedPath: (pathName) => pathName === "/uPlot.iife.min.js" || pathName === "/uPlot.min.css",
  });
  await app.register(fastifyStatic, {
    root: OPENAPI_FETCH_DIR,
    prefix: `${CONSOLE_PREFIX}vendor/openapi-fetch/`,
    decorateReply: false,
    allowedPath: (pathName) => pathName === "/index.mjs",
  });
  app.get("/", { schema: { hide: true } }, async (_request, reply) => reply.redirect(CONSOLE_PREFIX));
}
