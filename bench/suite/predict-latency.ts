// Predict latency, p50 and p99 in ms, of the model run for 1 and 8 preprocessed
// 224 px images on each engine (the Predictor predict uses; HTTP and image
// decoding are not included), then the same through the HTTP API
// (predict-api.ts). With few runs, p99 is close to the slowest run.
import os from "node:os";
import * as tf from "@tensorflow/tfjs";
import { onnxPredictor, tfjsPredictor, type Predictor } from "../../src/engine/predictor.js";
import { tfjsToOnnx } from "../../src/engine/onnx/tfjs-to-onnx.js";
import { buildTransferModel } from "../../src/network/transfer-model.js";
import { HEAD, type Figure, type SuiteOptions } from "./figure.js";
import { percentile } from "./percentile.js";
import { predictThroughApi } from "./predict-api.js";

async function latencies(predictor: Predictor, images: tf.Tensor4D, runs: number): Promise<number[]> {
  await predictor.predict(images); // warm-up: first-run allocations and kernel selection
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await predictor.predict(images);
    ms.push(performance.now() - start);
  }
  return ms.sort((a, b) => a - b);
}

export async function predictLatency(opts: SuiteOptions): Promise<Figure[]> {
  const imageSize = opts.quick ? 64 : 224;
  const tm = buildTransferModel({ imageSize, numClasses: 4, head: HEAD, unfrozenLayers: 10, seed: 1 });
  const engines: [string, Predictor, number][] = [
    ["onnxruntime", await onnxPredictor(tfjsToOnnx(tm.model).bytes), os.availableParallelism()],
    [opts.backend, tfjsPredictor(tm.model), 1],
  ];
  const figures: Figure[] = [];
  for (const [engine, predictor, threads] of engines) {
    for (const batchSize of [1, 8]) {
      const images = tf.randomUniform([batchSize, imageSize, imageSize, 3], -120, 130, "float32", 3) as tf.Tensor4D;
      // TF.js on wasm takes seconds per batch: fewer runs there.
      const runs = opts.quick ? 3 : engine === "onnxruntime" ? 30 : batchSize === 1 ? 10 : 4;
      const ms = await latencies(predictor, images, runs);
      images.dispose();
      const base = {
        section: "predict" as const,
        unit: "ms",
        backend: engine,
        imageSize,
        batchSize,
        threads,
        detail: `${runs} runs after one warm-up`,
      };
      figures.push({ ...base, name: `predict p50 (${engine})`, value: percentile(ms, 50) });
      figures.push({ ...base, name: `predict p99 (${engine})`, value: percentile(ms, 99) });
    }
  }
  engines.forEach(([, predictor]) => {
    predictor.dispose();
  });
  figures.push(...(await predictThroughApi(opts, imageSize)));
  return figures;
}
