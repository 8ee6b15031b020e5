// What the console shows of a dataset's images: samples per class and small
// decoded thumbnails, inside the caller's tenant.
import type { FastifyPluginAsync } from "fastify";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { datasetKeys, getDataset, readDatasetIndex, type DatasetIndex } from "../datasets/dataset-store.js";
import { classSamples, thumbnailJpeg } from "../datasets/thumbnails.js";
import { routeSchema } from "./openapi.js";

export interface DatasetImagesRoutesOptions {
  storage: Storage;
  config: Config;
}

export const datasetImagesRoutes: FastifyPluginAsync<DatasetImagesRoutesOptions> = async (app, { storage, config }) => {
  async function indexOf(tenant: string, id: string): Promise<{ classes: string[]; index: DatasetIndex }> {
    const record = await getDataset(storage, tenant, id);
    const index = record && (await readDatasetIndex(storage, tenant, id));
    if (!record || !index) throw new AppError("DATASET_NOT_FOUND", `no dataset "${id}"`, { id });
    return { classes: record.classes, index };
  }

  app.get("/v1/datasets/:id/samples", { schema: routeSchema("GET", "/v1/datasets/:id/samples") }, async (request) => {
    const { id } = request.params as { id: string };
    const { perClass } = request.query as { perClass: number };
    const { classes, index } = await indexOf(request.tenant, id);
    return { classes: classSamples(index, classes, perClass) };
  });

  app.get(
    "/v1/datasets/:id/images/:index/thumbnail",
    { schema: routeSchema("GET", "/v1/datasets/:id/images/:index/thumbnail") },
    async (request, reply) => {
      const { id, index: position } = request.params as { id: string; index: number };
      const { size } = request.query as { size: number };
      const { index } = await indexOf(request.tenant, id);
      const image = index.images[position];
      if (!image)
        throw new AppError("NOT_FOUND", `dataset "${id}" has no image ${position}`, { id, index: position, images: index.images.length });
      const file = await storage.localPath(datasetKeys(request.tenant, id).file(image.file));
      const jpeg = await thumbnailJpeg(file, size, config.maxImagePixels);
      return reply.type("image/jpeg").header("cache-control", "private, max-age=86400").send(jpeg);
    },
  );
};
