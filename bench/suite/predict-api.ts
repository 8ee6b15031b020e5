// Predict latency through the HTTP API, p50 and p99 in ms: a saved 224 px
// transfer model, POST /v1/models/{id}/predict with 1 and 8 JPEG photos
// (640x480, so decode and resize are included) over loopback, one request at
// a time, after one warm-up request that loads the model.
import fs from "node:fs/promises";
import sharp from "sharp";
import { buildApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { buildTransferModel } from "../../src/network/transfer-model.js";
import { CAFFE_PREPROCESSING, saveTrainedModel } from "../../src/trained-models/model-store.js";
import { JOB_SPEC_DEFAULTS } from "../../src/jobs/job-spec.js";
import { createLocalStorage } from "../../src/storage/local-storage.js";
import { tempDir } from "../../test/helpers/app.js";
import { multipartFiles } from "../../test/helpers/dataset-archives.js";
import { startRedis } from "../../test/helpers/redis.js";
import { HEAD, type Figure, type SuiteOptions } from "./figure.js";
import { percentile } from "./percentile.js";

const AUTH = { authorization: "Bearer key-bench" };
const CLASSES = ["a", "b", "c", "d"];

/** A 640x480 JPEG with smooth gradients and some texture, about what a camera photo costs to decode. */
async function photo(seed: number): Promise<Buffer> {
  const [width, height] = [640, 480];
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width + ((x * y * seed) & 15);
      raw[i + 1] = (y * 255) / height + (((x + seed) * 7) & 15);
      raw[i + 2] = ((x + y + seed * 13) & 255) ^ ((y * 3) & 31);
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

export async function predictThroughApi(opts: SuiteOptions, imageSize: number): Promise<Figure[]> {
  const redis = await startRedis();
  const dataDir = await tempDir("rf-bench-predict-");
  const config = loadConfig({
    LOG_LEVEL: "silent",
    DATA_DIR: dataDir,
    REDIS_URL: redis.url,
    API_KEYS: "bench:key-bench",
    RATE_LIMIT_MAX: "1000000000",
  });
  const app = await buildApp(config);
  try {
    const tm = buildTransferModel({ imageSize, numClasses: CLASSES.length, head: HEAD, unfrozenLayers: 10, seed: 1 });
    const metrics = { epoch: 1, loss: 1, accuracy: 0.25, valLoss: 1, valAccuracy: 0.25, seconds: 1, imagesPerSecond: 1 };
    await saveTrainedModel(createLocalStorage(config.dataDir), {
      tenant: "bench",
      modelId: "mdl_bench",
      model: tm.model,
      jobId: "job_bench",
      datasetId: "ds_bench",
      classes: CLASSES,
      imageSize,
      preprocessing: CAFFE_PREPROCESSING,
      spec: { ...JOB_SPEC_DEFAULTS, datasetId: "ds_bench" },
      metrics,
      history: [metrics],
      report: null,
      backend: opts.backend,
    });
    tm.model.dispose();
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    const photos = await Promise.all(Array.from({ length: 8 }, (_, i) => photo(i + 1)));
    const post = async (count: number): Promise<number> => {
      const { payload, headers } = multipartFiles(photos.slice(0, count).map((bytes, i) => ({ bytes, filename: `photo${i}.jpg` })));
      const start = performance.now();
      const res = await fetch(`${base}/v1/models/mdl_bench/predict?k=1`, {
        method: "POST",
        headers: { ...AUTH, ...headers },
        body: new Uint8Array(payload),
      });
      const text = await res.text();
      const ms = performance.now() - start;
      if (res.status !== 200) throw new Error(`predict answered ${res.status}: ${text}`);
      return ms;
    };
    const first = await post(1); // loads the model (and writes its ONNX file on that engine)
    const figures: Figure[] = [
      {
        section: "predict",
        name: "predict via API, first request (model load)",
        value: first,
        unit: "ms",
        backend: "api",
        imageSize,
        batchSize: 1,
      },
    ];
    for (const count of [1, 8]) {
      await post(count);
      const runs = opts.quick ? 3 : count === 1 ? 30 : 10;
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) ms.push(await post(count));
      ms.sort((a, b) => a - b);
      const detail = `${runs} requests of ${count} 640x480 JPEG(s) after one warm-up, TRAINING_ENGINE=${config.trainingEngine}`;
      const figure = { section: "predict" as const, unit: "ms", backend: "api", imageSize, batchSize: count, detail };
      figures.push({ ...figure, name: "predict via API p50", value: percentile(ms, 50) });
      figures.push({ ...figure, name: "predict via API p99", value: percentile(ms, 99) });
    }
    return figures;
  } finally {
    await app.close();
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}
