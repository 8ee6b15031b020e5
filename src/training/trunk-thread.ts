// One thread of the trunk pool: its own tfjs backend, the trunk rebuilt from
// the model options with the weights the parent sent, then chunks of images in,
// features out.
import { parentPort, workerData } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import { selectBackend } from "../backend/select-backend.js";
import { buildTransferModel } from "../network/transfer-model.js";
import { splitAtFrozenBoundary } from "../network/trunk-split.js";
import { computeTrunkFeatures } from "./trunk-features.js";
import type { TrunkThreadInit } from "./trunk-pool.js";

const port = parentPort!;
const init = workerData as TrunkThreadInit;

async function start(): Promise<tf.LayersModel> {
  await selectBackend(init.backend);
  const split = splitAtFrozenBoundary(buildTransferModel(init.model), init.model.unfrozenLayers);
  if (!split) throw new Error(`unfrozenLayers ${init.model.unfrozenLayers} leaves no frozen trunk`);
  const weights = init.weights.map((w) => tf.tensor(w.values, w.shape));
  split.trunk.setWeights(weights); // copies the values into the layers' variables
  tf.dispose(weights);
  return split.trunk;
}

try {
  const trunk = await start();
  port.on("message", async ({ pixels, count }: { pixels: Uint8Array; count: number }) => {
    try {
      const features = await computeTrunkFeatures(trunk, pixels, count, init.model.imageSize);
      port.postMessage(
        { features },
        features.map((f) => f.buffer as ArrayBuffer),
      );
    } catch (error) {
      port.postMessage({ error: (error as Error).message });
    }
  });
  port.postMessage({ ready: true });
} catch (error) {
  port.postMessage({ error: (error as Error).message });
}
