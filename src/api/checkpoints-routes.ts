// /v1/jobs/{id}/checkpoints: a job's stored per-epoch checkpoints, listed and
// downloaded as a TF.js zip or a Keras .h5 made on the fly from the checkpoint.
import fs from "node:fs/promises";
import path from "node:path";
import { createReadStream } from "node:fs";
import type { FastifyPluginAsync } from "fastify";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { selectBackend } from "../backend/select-backend.js";
import type { JobService } from "../jobs/job-service.js";
import { MODEL_JSON, loadTfjsModel, saveKerasH5 } from "../weight-files/index.js";
import { checkpointKey, checkpointModelPath, checkpointPage, listCheckpoints } from "../training/checkpoints.js";
import { sendZip } from "./models-routes.js";
import { routeSchema } from "./openapi.js";

export interface CheckpointsRoutesOptions {
  storage: Storage;
  config: Config;
  jobs: Pick<JobService, "get">;
}

export const checkpointsRoutes: FastifyPluginAsync<CheckpointsRoutesOptions> = async (app, { storage, config, jobs }) => {
  async function requireJob(tenant: string, jobId: string): Promise<void> {
    if (!(await jobs.get(tenant, jobId))) throw new AppError("NOT_FOUND", `job ${jobId} does not exist`, { id: jobId });
  }

  app.get<{ Params: { id: string } }>(
    "/v1/jobs/:id/checkpoints",
    { schema: routeSchema("GET", "/v1/jobs/:id/checkpoints") },
    async (request) => {
      await requireJob(request.tenant, request.params.id);
      const { limit, cursor } = request.query as { limit: number; cursor?: string };
      return checkpointPage(storage, request.tenant, request.params.id, limit, cursor);
    },
  );

  app.get<{ Params: { id: string; epoch: number }; Querystring: { format: "tfjs" | "keras" } }>(
    "/v1/jobs/:id/checkpoints/:epoch",
    { schema: routeSchema("GET", "/v1/jobs/:id/checkpoints/:epoch") },
    async (request, reply) => {
      const { tenant } = request;
      const { id: jobId, epoch } = request.params;
      await requireJob(tenant, jobId);
      const manifest = (await listCheckpoints(storage, tenant, jobId)).find((m) => m.epoch === epoch);
      if (!manifest) throw new AppError("CHECKPOINT_NOT_FOUND", `job "${jobId}" has no checkpoint of epoch ${epoch}`, { jobId, epoch });
      const name = `${jobId}-epoch${epoch}`;
      if (request.query.format === "tfjs") {
        const files = manifest.files.filter((f) => f === MODEL_JSON || (f.endsWith(".bin") && f.startsWith("group")));
        return sendZip(
          reply,
          storage,
          files.map((f): [string, string] => [f, checkpointKey(tenant, jobId, epoch, f)]),
          `${name}-tfjs.zip`,
        );
      }
      // The Keras file is made on demand: checkpoints are written every epoch, downloads are rare.
      await selectBackend(config.tfjsBackend);
      const model = await loadTfjsModel(await checkpointModelPath(storage, tenant, jobId, epoch));
      const scratch = await storage.scratchDir(`checkpoint-h5-${jobId}`);
      const file = path.join(scratch, `${name}.h5`);
      try {
        await saveKerasH5(model, file);
      } finally {
        model.dispose();
      }
      const { size } = await fs.stat(file);
      const stream = createReadStream(file);
      stream.on("close", () => void fs.rm(scratch, { recursive: true, force: true }));
      return reply
        .type("application/x-hdf5")
        .header("content-length", size)
        .header("content-disposition", `attachment; filename="${name}.h5"`)
        .send(stream);
    },
  );
};
