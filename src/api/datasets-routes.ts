// /v1/datasets: streamed upload, listing, reading and deleting datasets,
// always inside the caller's tenant.
import fs from "node:fs/promises";
import path from "node:path";
import type { FastifyPluginAsync } from "fastify";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { ingestDataset } from "../datasets/dataset-ingest.js";
import { deleteDataset, getDataset, listDatasets, type DatasetRecord } from "../datasets/dataset-store.js";
import { routeSchema } from "./openapi.js";
import { checkUploadHeaders, receiveUpload } from "./multipart-upload.js";
import type { TenantQuotas } from "./tenant-quotas.js";

export interface DatasetsRoutesOptions {
  storage: Storage;
  config: Config;
  quotas: Pick<TenantQuotas, "uploadSlot">;
  /** Whether a queued or running job uses the dataset (then it cannot be deleted). */
  isDatasetInUse?: (tenant: string, datasetId: string) => Promise<boolean>;
}

const MAX_NAME_LENGTH = 200;

/** The API answer: the record without what only the training side reads. */
export function datasetResponse(record: DatasetRecord): Omit<DatasetRecord, "subsetCounts"> {
  const { subsetCounts: _internal, ...visible } = record;
  return visible;
}

function datasetName(given: string | undefined, filename: string): string {
  const name =
    (given ?? "").trim() ||
    path
      .basename(filename)
      .replace(/(\.tar)?\.[A-Za-z0-9]+$/, "")
      .trim() ||
    "dataset";
  if (name.length > MAX_NAME_LENGTH) throw new AppError("VALIDATION_FAILED", `name must be at most ${MAX_NAME_LENGTH} characters`);
  return name;
}

export const datasetsRoutes: FastifyPluginAsync<DatasetsRoutesOptions> = async (app, opts) => {
  const { storage, config, quotas } = opts;
  const isDatasetInUse = opts.isDatasetInUse ?? (async () => false);

  app.post(
    "/v1/datasets",
    { schema: routeSchema("POST", "/v1/datasets"), onRequest: checkUploadHeaders(config.maxUploadBytes), preHandler: quotas.uploadSlot },
    async (request, reply) => {
      const scratch = await storage.scratchDir("upload");
      let record: DatasetRecord;
      try {
        const upload = await receiveUpload(request, scratch, config.maxUploadBytes);
        record = await ingestDataset({
          storage,
          config,
          tenant: request.tenant,
          name: datasetName(upload.name, upload.filename),
          upload: upload.file,
          scratch,
        });
      } finally {
        // Before answering, so a client never sees scratch files of its finished upload.
        await fs.rm(scratch, { recursive: true, force: true });
      }
      request.log.info({ datasetId: record.id, images: record.imageCount, rejected: record.rejected.length }, "dataset created");
      return reply.status(201).send(datasetResponse(record));
    },
  );

  app.get("/v1/datasets", { schema: routeSchema("GET", "/v1/datasets") }, async (request) => {
    const { limit, cursor } = request.query as { limit: number; cursor?: string };
    const page = await listDatasets(storage, request.tenant, limit, cursor);
    return { items: page.items.map(datasetResponse), nextCursor: page.nextCursor };
  });

  async function found(tenant: string, id: string): Promise<DatasetRecord> {
    const record = await getDataset(storage, tenant, id);
    if (!record) throw new AppError("DATASET_NOT_FOUND", `no dataset "${id}"`, { id });
    return record;
  }

  app.get("/v1/datasets/:id", { schema: routeSchema("GET", "/v1/datasets/:id") }, async (request) => {
    const { id } = request.params as { id: string };
    return datasetResponse(await found(request.tenant, id));
  });

  app.delete("/v1/datasets/:id", { schema: routeSchema("DELETE", "/v1/datasets/:id") }, async (request, reply) => {
    const { id } = request.params as { id: string };
    await found(request.tenant, id);
    if (await isDatasetInUse(request.tenant, id)) {
      throw new AppError("DATASET_IN_USE", `dataset "${id}" is used by a queued or running job`, { id });
    }
    await deleteDataset(storage, request.tenant, id);
    return reply.status(204).send();
  });
};
