// Comparing model weights in tests: bit for bit, layer by layer.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";

/** Every weight of the layers as raw bytes, keyed by layer/weight name. */
export function weightBytes(layers: readonly tf.layers.Layer[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const layer of layers) {
    for (const w of layer.weights) {
      const data = w.read().dataSync() as Float32Array;
      out.set(`${layer.name}/${w.originalName.split("/").pop()}`, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return out;
}

export function assertSameWeights(actual: readonly tf.layers.Layer[], expected: readonly tf.layers.Layer[]): void {
  const a = weightBytes(actual);
  const b = weightBytes(expected);
  assert.deepEqual([...a.keys()], [...b.keys()]);
  const differing = [...a.keys()].filter((k) => !a.get(k)!.equals(b.get(k)!));
  assert.deepEqual(differing, [], "weights differ");
}

export function assertDifferentWeights(actual: readonly tf.layers.Layer[], expected: readonly tf.layers.Layer[]): void {
  const a = weightBytes(actual);
  const b = weightBytes(expected);
  const kernels = [...a.keys()].filter((k) => k.endsWith("/kernel"));
  assert.ok(kernels.length > 0 && kernels.every((k) => !a.get(k)!.equals(b.get(k)!)), "models should start with different kernels");
}

/** Sets every weight to zero, so one model can be the target of several loads in a test file. */
export function zeroWeights(layers: readonly tf.layers.Layer[]): void {
  for (const layer of layers) {
    if (layer.weights.length === 0) continue;
    const zeros = layer.weights.map((w) => tf.zeros(w.read().shape));
    layer.setWeights(zeros);
    for (const z of zeros) z.dispose();
  }
}
