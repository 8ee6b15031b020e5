// Train/validation split: the predefined train/ and val/ folders, or a
// stratified split seeded so the same seed always gives the same split.
import { mixSeed, shuffledIndices } from "./seeded-random.js";
import type { DatasetIndex, DatasetRecord } from "./dataset-store.js";

export interface SplitCounts {
  train: number;
  validation: number;
}

/**
 * How many of a class's `n` images go to validation: round(n * split), but at
 * least one and at most n - 1 once the class has two images, so a split > 0
 * leaves no class empty on either side when that is possible.
 */
export function validationCount(n: number, validationSplit: number): number {
  if (validationSplit <= 0 || n < 2) return 0;
  return Math.min(n - 1, Math.max(1, Math.round(n * validationSplit)));
}

/** Per class {train, validation} counts of the split a job would get (the predefined one when the dataset has it). */
export function splitCounts(
  record: Pick<DatasetRecord, "counts" | "subsetCounts">,
  classes: string[],
  validationSplit: number,
): Record<string, SplitCounts> {
  // Class names are the client's strings ("constructor", "__proto__"): only a record's own keys count,
  // and the answer is built with Object.fromEntries, which makes every name an own key.
  const count = (counts: Record<string, number>, cls: string) => (Object.hasOwn(counts, cls) ? counts[cls] : 0);
  return Object.fromEntries(
    classes.map((cls): [string, SplitCounts] => {
      if (record.subsetCounts)
        return [cls, { train: count(record.subsetCounts.train, cls), validation: count(record.subsetCounts.validation, cls) }];
      const n = count(record.counts, cls);
      const validation = validationCount(n, validationSplit);
      return [cls, { train: n - validation, validation }];
    }),
  );
}

export interface SplitIndices {
  /** Rows of the dataset index. */
  train: number[];
  validation: number[];
}

/** String -> 32-bit number, so each class gets its own shuffle from the seed. */
function hashString(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) h = Math.imul(h ^ value.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The index rows of `classes`, split. Depends only on the index, the classes, the split and the seed. */
export function splitIndex(
  index: DatasetIndex,
  predefined: boolean,
  classes: string[],
  validationSplit: number,
  seed: number,
): SplitIndices {
  const rowsByClass = new Map<string, number[]>(classes.map((c) => [c, []]));
  for (const [row, img] of index.images.entries()) rowsByClass.get(img.class)?.push(row);
  const split: SplitIndices = { train: [], validation: [] };
  for (const [cls, rows] of rowsByClass) {
    if (predefined) {
      for (const row of rows) (index.images[row].subset === "validation" ? split.validation : split.train).push(row);
      continue;
    }
    const order = shuffledIndices(rows.length, mixSeed(seed, hashString(cls)));
    const nVal = validationCount(rows.length, validationSplit);
    for (const [i, k] of order.entries()) (i < nVal ? split.validation : split.train).push(rows[k]);
  }
  split.train.sort((a, b) => a - b);
  split.validation.sort((a, b) => a - b);
  return split;
}
