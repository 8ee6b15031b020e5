// Weights files written by real Keras. test/fixtures/keras/ is made by
// scripts/keras-fixtures/ (Keras 3) and committed; ../shared/fixtures/keras/
// (Keras 2.4 files) exists only beside some checkouts, so tests on it skip
// where it is absent.
import { createReadStream, createWriteStream, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";

export const KERAS3_FIXTURES = path.resolve("test/fixtures/keras");
export const SMALL_CNN_FILES = ["small-cnn.keras3.h5", "small-cnn.weights.h5"].map((name) => path.join(KERAS3_FIXTURES, name));

export const KERAS2_FIXTURES = path.resolve("../shared/fixtures/keras");
/** Skip reason for tests on the Keras 2.4 files, or false where they are here. */
export const keras2Skip = existsSync(KERAS2_FIXTURES) ? false : "skipped: no ../shared/fixtures/keras beside this checkout";

export interface PatternedWeight {
  /** Keras' path: `layer/weight`. */
  path: string;
  shape: number[];
  k: number;
}

/** The weights of the patterned ResNet-50 fixtures, in Keras' `model.weights` order. */
export const RESNET50_PATTERN: PatternedWeight[] = JSON.parse(
  readFileSync(path.join(KERAS3_FIXTURES, "resnet50-notop.weights.json"), "utf8"),
).weights;

/** The values make_fixtures.py gave weight `w`. */
export function patternValues(w: PatternedWeight): Float32Array {
  const n = w.shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  const variance = w.path.endsWith("moving_variance");
  for (let i = 0; i < n; i++) {
    const v = Math.fround((((7 * i + w.k) % 251) - 125) / 1000);
    values[i] = variance ? Math.fround(Math.abs(v) + 0.5) : v;
  }
  return values;
}

/** Unpacks one of the gzipped ResNet-50 fixtures into `dir`; returns its path. */
export async function unpackResnet50(name: "resnet50-notop.keras3.h5" | "resnet50-notop.weights.h5", dir: string): Promise<string> {
  const file = path.join(dir, name);
  await pipeline(createReadStream(path.join(KERAS3_FIXTURES, `${name}.gz`)), createGunzip(), createWriteStream(file));
  return file;
}
