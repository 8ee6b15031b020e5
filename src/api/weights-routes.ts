// /v1/weights: base-weights files for jobs (`baseWeights: <id>`), inside the caller's tenant. An upload
// is checked by the engine as ResNet-50 weights before anything is stored.
import fs from "node:fs/promises";
import path from "node:path";
import type { FastifyPluginAsync } from "fastify";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { inspectWeightsFile } from "../weight-files/index.js";
import { archiveLimits } from "../datasets/archive-guard.js";
import { detectArchiveType } from "../datasets/archive-type.js";
import { isHdf5 } from "../weight-files/h5-file.js";
import {
  deleteWeights,
  getWeights,
  listWeights,
  newWeightsId,
  saveWeightsRecord,
  weightsKeys,
  type WeightsRecord,
} from "../base-weights/weights-store.js";
import type { JobService } from "../jobs/job-service.js";
import { routeSchema } from "./openapi.js";
import { checkUploadHeaders, receiveUpload } from "./multipart-upload.js";
import type { TenantQuotas } from "./tenant-quotas.js";

export interface WeightsRoutesOptions {
  storage: Storage;
  config: Config;
  jobs: Pick<JobService, "isInUse">;
  quotas: Pick<TenantQuotas, "uploadSlot">;
}

/**
 * Only the two container formats an upload can be: the engine would also read a lone model.json,
 * whose shard paths would then point anywhere on the server.
 */
async function uploadedFormat(file: string): Promise<"h5" | "zip"> {
  if (await isHdf5(file)) return "h5";
  if ((await detectArchiveType(file)) === "zip") return "zip";
  throw new AppError("WEIGHTS_UNREADABLE", "the file is neither HDF5 (Keras) nor a zip (TensorFlow.js model)", {
    reason: "not an HDF5 file or a zip archive",
  });
}

function notFound(id: string): AppError {
  return new AppError("WEIGHTS_NOT_FOUND", `no weights "${id}"`, { id });
}

export const weightsRoutes: FastifyPluginAsync<WeightsRoutesOptions> = async (app, { storage, config, jobs, quotas }) => {
  app.post(
    "/v1/weights",
    { schema: routeSchema("POST", "/v1/weights"), onRequest: checkUploadHeaders(config.maxUploadBytes), preHandler: quotas.uploadSlot },
    async (request, reply) => {
      const scratch = await storage.scratchDir("weights");
      let record: WeightsRecord;
      try {
        const upload = await receiveUpload(request, scratch, config.maxUploadBytes);
        const file = path.join(scratch, `weights.${await uploadedFormat(upload.file)}`);
        await fs.rename(upload.file, file);
        const { usable, fileLayers: _all, ...report } = await inspectWeightsFile(file, archiveLimits(config));
        if (!usable) {
          throw new AppError(
            "WEIGHTS_MISMATCH",
            `the file does not hold ResNet-50 base weights: ${report.counts.missing} layers missing, ${report.counts.unexpected} unexpected, ` +
              `${report.counts.shapeMismatches} weights of the wrong shape`,
            report,
          );
        }
        const id = newWeightsId();
        const stored = await storage.putFile(weightsKeys(request.tenant, id, report.format).file, file);
        record = {
          id,
          format: report.format,
          matchedLayers: report.matchedLayers,
          ignoredLayers: report.ignoredLayers,
          fileName: path.basename(upload.filename).slice(0, 200),
          bytes: stored.size,
          createdAt: new Date().toISOString(),
        };
        await saveWeightsRecord(storage, request.tenant, record);
      } finally {
        // Before answering, so a client never sees scratch files of its finished upload.
        await fs.rm(scratch, { recursive: true, force: true });
      }
      request.log.info({ weightsId: record.id, format: record.format }, "weights stored");
      return reply.status(201).header("location", `/v1/weights/${record.id}`).send(record);
    },
  );

  app.get("/v1/weights", { schema: routeSchema("GET", "/v1/weights") }, async (request) => {
    const { limit, cursor } = request.query as { limit: number; cursor?: string };
    return listWeights(storage, request.tenant, limit, cursor);
  });

  app.get("/v1/weights/:id", { schema: routeSchema("GET", "/v1/weights/:id") }, async (request) => {
    const { id } = request.params as { id: string };
    const record = await getWeights(storage, request.tenant, id);
    if (!record) throw notFound(id);
    return record;
  });

  app.delete("/v1/weights/:id", { schema: routeSchema("DELETE", "/v1/weights/:id") }, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!(await getWeights(storage, request.tenant, id))) throw notFound(id);
    if (await jobs.isInUse(request.tenant, "weights", id)) {
      throw new AppError("WEIGHTS_IN_USE", `weights "${id}" are the base of a queued or running job`, { id });
    }
    await deleteWeights(storage, request.tenant, id);
    return reply.status(204).send();
  });
};
