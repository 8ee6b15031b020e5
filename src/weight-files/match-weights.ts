// Pairs the weighted layers a model expects with those a weights file holds, as Keras' load_weights
// does, and says what does not fit: missing layers, unexpected layers, weights of the wrong shape.
import type { SourceLayer, WeightsSource } from "./weights-source.js";

export interface ExpectedLayer {
  name: string;
  /** The layer's key in a Keras 3 file (`conv2d_5`), from its class and position among its class. */
  keras3Key: string;
  weights: { name: string; shape: number[] }[];
}

export interface ShapeMismatch {
  layer: string;
  /** The file's layer, when its name differs from the model's. */
  fileLayer?: string;
  weight: string;
  /** null: the model has no such weight (the file has more) or the file lacks it. */
  expected: number[] | null;
  found: number[] | null;
}

export interface WeightsMatch {
  matchedLayers: number;
  ignoredLayers: string[];
  missing: string[];
  unexpected: string[];
  shapeMismatches: ShapeMismatch[];
  /** Model layer index -> file layer, for the layers whose weights fit. */
  pairs: Map<number, SourceLayer>;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function shortName(weightName: string): string {
  return weightName.slice(weightName.lastIndexOf("/") + 1).replace(/:0$/, "");
}

/** The differences between a model layer's weights and a file layer's, in order (Keras matches by position). */
function compareLayer(expected: ExpectedLayer, found: SourceLayer): ShapeMismatch[] {
  const out: ShapeMismatch[] = [];
  const fileLayer = found.name === expected.name ? {} : { fileLayer: found.name };
  const count = Math.max(expected.weights.length, found.weights.length);
  for (let i = 0; i < count; i++) {
    const want = expected.weights[i];
    const have = found.weights[i];
    if (want && have && sameShape(want.shape, have.shape)) continue;
    out.push({
      layer: expected.name,
      ...fileLayer,
      weight: shortName((want ?? have).name),
      expected: want ? want.shape : null,
      found: have ? have.shape : null,
    });
  }
  return out;
}

function emptyMatch(): WeightsMatch {
  return { matchedLayers: 0, ignoredLayers: [], missing: [], unexpected: [], shapeMismatches: [], pairs: new Map() };
}

function pair(match: WeightsMatch, index: number, expected: ExpectedLayer, found: SourceLayer): void {
  const mismatches = compareLayer(expected, found);
  if (mismatches.length > 0) {
    match.shapeMismatches.push(...mismatches);
  } else {
    match.pairs.set(index, found);
    match.matchedLayers++;
  }
}

/** Keras' legacy load_weights: the i-th weighted layer of the file goes to the i-th weighted layer of the model. */
function matchByPosition(expected: ExpectedLayer[], layers: SourceLayer[]): WeightsMatch {
  const match = emptyMatch();
  for (const [i, layer] of expected.entries()) {
    if (i < layers.length) pair(match, i, layer, layers[i]);
    else match.missing.push(layer.name);
  }
  match.ignoredLayers.push(...layers.slice(expected.length).map((l) => l.name));
  return match;
}

/**
 * By name (or Keras 3 key). File layers after the last one the model uses are extra layers after the base
 * (an ImageNet top, a previous head): ignored. Unused file layers among the base's are unexpected.
 */
function matchByKey(expected: ExpectedLayer[], layers: SourceLayer[], keyOf: (l: ExpectedLayer) => string, ordered: boolean): WeightsMatch {
  const match = emptyMatch();
  const byName = new Map<string, number>();
  for (const [i, layer] of layers.entries()) {
    if (!byName.has(layer.name)) byName.set(layer.name, i);
  }
  const used = new Set<number>();
  for (const [i, layer] of expected.entries()) {
    const at = byName.get(keyOf(layer));
    if (at === undefined) {
      match.missing.push(layer.name);
      continue;
    }
    used.add(at);
    pair(match, i, layer, layers[at]);
  }
  const lastUsed = Math.max(-1, ...used);
  layers.forEach((layer, i) => {
    if (used.has(i)) return;
    (ordered && i < lastUsed ? match.unexpected : match.ignoredLayers).push(layer.name);
  });
  return match;
}

/**
 * Keras 3 files are matched by key. Other files by name when most of the model's layer names are in the
 * file (a Keras file of this architecture: order then does not matter, and a missing layer is reported
 * as missing rather than as a shift of every layer after it), else by position as Keras does, so files
 * whose layer names differ (another Keras version's naming, a renamed model) still load.
 */
export function matchWeights(expected: ExpectedLayer[], source: WeightsSource): WeightsMatch {
  if (source.matchBy === "keras3-key") return matchByKey(expected, source.layers, (l) => l.keras3Key, false);
  const names = new Set(source.layers.map((l) => l.name));
  const known = expected.filter((l) => names.has(l.name)).length;
  if (known > 0 && known * 2 >= expected.length) return matchByKey(expected, source.layers, (l) => l.name, true);
  return matchByPosition(expected, source.layers);
}
