// /v1/models: the tenant's trained models, their downloads (TF.js zip, Keras
// .h5, ONNX) and predict, which decodes, resizes and preprocesses uploads exactly as
// training did and keeps recently used models loaded (LRU).
import type { Readable } from "node:stream";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import * as tf from "@tensorflow/tfjs";
import sharp from "sharp";
import yazl from "yazl";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { selectBackend } from "../backend/select-backend.js";
import { decodeImageForModel } from "../datasets/training-data.js";
import { MODEL_JSON, loadTfjsModel } from "../weight-files/index.js";
import { resolveEngine, type EngineName } from "../engine/engine.js";
import { onnxPredictor, tfjsPredictor, type Predictor } from "../engine/predictor.js";
import { createModelCache } from "../trained-models/model-cache.js";
import { ensureOnnxFile } from "../trained-models/onnx-file.js";
import { getModelRecord, listModelRecords, modelKey, type ModelRecord } from "../trained-models/model-store.js";
import { routeSchema } from "./openapi.js";
import { createSemaphore } from "./semaphore.js";

export interface ModelsRoutesOptions {
  storage: Storage;
  config: Config;
}

/** Images one predict request may carry, and the largest of them. */
export const MAX_PREDICT_IMAGES = 32;
export const MAX_PREDICT_IMAGE_BYTES = 20 * 1024 * 1024;
/** Small form fields tolerated beside the images (ignored). */
const MAX_PREDICT_FIELDS = 4;

/**
 * An image's width x height from its header, before anything is decoded: over `maxPixels` it is refused
 * (413), so a small, highly compressed PNG cannot make the API decode hundreds of megabytes.
 */
async function checkImagePixels(file: string, bytes: Buffer, maxPixels: number): Promise<number> {
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ width, height } = await sharp(bytes).metadata());
  } catch (error) {
    throw new AppError("PREDICT_IMAGE_INVALID", `"${file}" is not an image we can read: ${(error as Error).message}`, { file });
  }
  if (!width || !height) throw new AppError("PREDICT_IMAGE_INVALID", `"${file}" has no width and height`, { file });
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new AppError("PREDICT_IMAGE_TOO_LARGE", `"${file}" has ${width}x${height} pixels, more than MAX_IMAGE_PIXELS=${maxPixels}`, {
      file,
      width,
      height,
      limit: maxPixels,
    });
  }
  return pixels;
}

/** The list view: the record without the bulky per-epoch history and report. */
export function modelSummary(record: ModelRecord) {
  const { history: _history, report: _report, spec: _spec, ...summary } = record;
  return summary;
}

async function requireModel(storage: Storage, tenant: string, id: string): Promise<ModelRecord> {
  const record = await getModelRecord(storage, tenant, id);
  if (!record) throw new AppError("MODEL_NOT_FOUND", `no model "${id}"`, { modelId: id });
  return record;
}

/** Streams a file of the model; Content-Length from storage, so clients see progress. */
async function sendStored(reply: FastifyReply, storage: Storage, key: string, type: string, filename: string): Promise<FastifyReply> {
  const stat = await storage.stat(key);
  if (!stat) throw new AppError("MODEL_NOT_FOUND", `the model's ${filename} is missing from storage`);
  return reply
    .type(type)
    .header("content-length", stat.size)
    .header("content-disposition", `attachment; filename="${filename}"`)
    .send(storage.createReadStream(key));
}

/**
 * A zip of `files` (name -> storage key), stored uncompressed (weights do not
 * compress), with Content-Length computed up front from the entry sizes.
 */
export async function sendZip(
  reply: FastifyReply,
  storage: Storage,
  files: [name: string, key: string][],
  filename: string,
): Promise<FastifyReply> {
  const zip = new yazl.ZipFile();
  for (const [name, key] of files) {
    const stat = await storage.stat(key);
    if (!stat) throw new AppError("NOT_FOUND", `${name} is missing from storage`);
    zip.addReadStreamLazy(name, { compress: false, size: stat.size, mtime: new Date(0) }, (cb) => cb(null, storage.createReadStream(key)));
  }
  // yazl passes the total (-1 when unknown) to this callback; its types say () => void.
  const end = zip.end.bind(zip) as (options: object, onSize: (total: number) => void) => void;
  const size = await new Promise<number>((resolve) => end({}, resolve));
  reply.type("application/zip").header("content-disposition", `attachment; filename="${filename}"`);
  if (size >= 0) reply.header("content-length", size);
  return reply.send(zip.outputStream as Readable);
}

export const modelsRoutes: FastifyPluginAsync<ModelsRoutesOptions> = async (app, { storage, config }) => {
  const cache = createModelCache<Predictor>(config.modelCacheSize);
  // Every predict request of this API process shares these slots: decoded images are its largest buffers.
  const decodeSlots = createSemaphore(config.predictDecodeConcurrency);
  app.addHook("onClose", async () => cache.clear());
  // Resolved on the first predict: a process that never predicts loads neither engine.
  let engine: Promise<EngineName> | undefined;
  const predictEngine = () =>
    (engine ??= selectBackend(config.tfjsBackend).then((backend) => resolveEngine(config.trainingEngine, backend.name, app.log)));
  const loadPredictor = async (tenant: string, record: ModelRecord): Promise<Predictor> => {
    if ((await predictEngine()) === "onnxruntime") return onnxPredictor(await storage.get(await ensureOnnxFile(storage, tenant, record)));
    return tfjsPredictor(await loadTfjsModel(await storage.localPath(modelKey(tenant, record.id, MODEL_JSON))));
  };

  app.get("/v1/models", { schema: routeSchema("GET", "/v1/models") }, async (request) => {
    const { limit, cursor } = request.query as { limit: number; cursor?: string };
    const page = await listModelRecords(storage, request.tenant, limit, cursor);
    return { items: page.items.map(modelSummary), nextCursor: page.nextCursor };
  });

  app.get<{ Params: { id: string } }>("/v1/models/:id", { schema: routeSchema("GET", "/v1/models/:id") }, async (request) =>
    requireModel(storage, request.tenant, request.params.id),
  );

  app.get<{ Params: { id: string }; Querystring: { format: "tfjs" | "keras" | "onnx" } }>(
    "/v1/models/:id/download",
    { schema: routeSchema("GET", "/v1/models/:id/download") },
    async (request, reply) => {
      const { tenant } = request;
      const record = await requireModel(storage, tenant, request.params.id);
      if (request.query.format === "keras") {
        return sendStored(reply, storage, modelKey(tenant, record.id, record.files.keras), "application/x-hdf5", `${record.id}.h5`);
      }
      if (request.query.format === "onnx") {
        await selectBackend(config.tfjsBackend);
        return sendStored(reply, storage, await ensureOnnxFile(storage, tenant, record), "application/octet-stream", `${record.id}.onnx`);
      }
      const files = [...record.files.tfjs, record.files.labels].map((f): [string, string] => [f, modelKey(tenant, record.id, f)]);
      return sendZip(reply, storage, files, `${record.id}-tfjs.zip`);
    },
  );

  app.post<{ Params: { id: string }; Querystring: { k: number } }>(
    "/v1/models/:id/predict",
    { schema: routeSchema("POST", "/v1/models/:id/predict") },
    async (request) => {
      const { tenant } = request;
      const record = await requireModel(storage, tenant, request.params.id);
      if (!request.isMultipart()) throw new AppError("NOT_MULTIPART", 'send the images as multipart/form-data, each in a field "file"');
      const k = Math.min(request.query.k, record.classes.length);

      const images: { file: string; pixels: tf.Tensor3D }[] = [];
      let requestPixels = 0;
      try {
        // Route-level limits: the global multipart limits are an upload's (one file), predict takes up to 32 images.
        const parts = request.files({
          limits: {
            files: MAX_PREDICT_IMAGES,
            parts: MAX_PREDICT_IMAGES + MAX_PREDICT_FIELDS,
            fields: MAX_PREDICT_FIELDS,
            fileSize: MAX_PREDICT_IMAGE_BYTES,
          },
        });
        for await (const part of parts) {
          const bytes = await part.toBuffer();
          if (part.file.truncated) {
            throw new AppError("PAYLOAD_TOO_LARGE", `image "${part.filename}" is larger than ${MAX_PREDICT_IMAGE_BYTES} bytes`);
          }
          requestPixels += await checkImagePixels(part.filename, bytes, config.maxImagePixels);
          if (requestPixels > config.maxPredictPixels) {
            throw new AppError(
              "PREDICT_TOO_MANY_PIXELS",
              `the request's images hold more than MAX_PREDICT_PIXELS=${config.maxPredictPixels} pixels together`,
              { limit: config.maxPredictPixels, file: part.filename },
            );
          }
          await selectBackend(config.tfjsBackend);
          try {
            images.push({
              file: part.filename,
              pixels: await decodeSlots.run(() => decodeImageForModel(bytes, record.imageSize, config.maxImagePixels)),
            });
          } catch (error) {
            throw new AppError("PREDICT_IMAGE_INVALID", `"${part.filename}" is not an image we can read: ${(error as Error).message}`, {
              file: part.filename,
            });
          }
        }
        if (images.length === 0)
          throw new AppError("MISSING_FILE", 'the request has no image: send each image in a multipart field "file"');

        const batch = tf.stack(images.map((i) => i.pixels)) as tf.Tensor4D;
        let rows: number[][];
        try {
          const predictor = await cache.get(`${tenant}/${record.id}`, () => loadPredictor(tenant, record));
          // No await between getting the model and running it: an eviction cannot dispose it meanwhile.
          rows = await predictor.predict(batch);
        } finally {
          batch.dispose();
        }
        if (rows.some((row) => row.some((p) => !Number.isFinite(p)))) {
          // A diverged training run (e.g. random base weights, no normalisation, too high a learning rate) leaves NaN weights.
          throw new AppError(
            "MODEL_OUTPUT_INVALID",
            `model ${record.id} outputs NaN or infinite probabilities: its training diverged; train it again (lower learningRate, or other base weights)`,
          );
        }
        return {
          modelId: record.id,
          predictions: images.map(({ file }, i) => ({
            file,
            top: rows[i]
              .map((probability, c) => ({ class: record.classes[c], probability }))
              .sort((a, b) => b.probability - a.probability)
              .slice(0, k),
          })),
        };
      } finally {
        tf.dispose(images.map((i) => i.pixels));
      }
    },
  );
};
