// Turns an uploaded archive into a stored dataset: detect, extract under the
// archive guard, read the layout, check every image, drop duplicates, and
// move the result into storage only when the dataset is usable.
import fs from "node:fs/promises";
import path from "node:path";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Storage } from "../storage/storage.js";
import { archiveLimits } from "./archive-guard.js";
import { detectArchiveType } from "./archive-type.js";
import { readLayout, type LabelledFile, type Subset } from "./dataset-layout.js";
import {
  datasetKeys,
  newDatasetId,
  type DatasetIndex,
  type DatasetRecord,
  type Duplicates,
  type IndexedImage,
  type RejectedFile,
} from "./dataset-store.js";
import { extractArchive } from "./extract-archive.js";
import { checkImage, type ImageFormat } from "./image-check.js";

/** A dataset needs this many classes with this many valid images each. */
export const MIN_CLASSES = 2;
export const MIN_IMAGES_PER_CLASS = 2;

const EXTENSIONS: Record<ImageFormat, string> = { jpeg: ".jpg", png: ".png", webp: ".webp", gif: ".gif", tiff: ".tif" };
/** Image checks at once: decoding runs on libuv's thread pool, so two keep both cores busy. */
const CHECK_CONCURRENCY = 2;

export interface IngestOptions {
  storage: Storage;
  config: Pick<Config, "maxArchiveEntries" | "maxUncompressedBytes" | "maxCompressionRatio" | "maxImagePixels" | "maxLabelsBytes">;
  tenant: string;
  name: string;
  /** The uploaded file, inside `scratch`. */
  upload: string;
  /** A scratch directory the caller removes afterwards. */
  scratch: string;
}

interface ValidImage extends LabelledFile {
  format: ImageFormat;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

const SUBSET_ORDER: Record<string, number> = { train: 0, validation: 1 };
function compareFiles(a: LabelledFile, b: LabelledFile): number {
  if (a.class !== b.class) return a.class < b.class ? -1 : 1;
  const sa = SUBSET_ORDER[a.subset ?? ""] ?? 0;
  const sb = SUBSET_ORDER[b.subset ?? ""] ?? 0;
  if (sa !== sb) return sa - sb;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** Same class: keep the first copy. Different classes: keep one copy per class and report the conflict. */
function dropDuplicates(images: ValidImage[]): { kept: ValidImage[]; duplicates: Duplicates } {
  const byHash = new Map<string, ValidImage[]>();
  for (const img of images) {
    const list = byHash.get(img.sha256);
    if (list) list.push(img);
    else byHash.set(img.sha256, [img]);
  }
  const dropped = new Set<ValidImage>();
  const duplicates: Duplicates = { sameClass: [], conflicts: [] };
  for (const copies of byHash.values()) {
    if (copies.length < 2) continue;
    const firstOfClass = new Map<string, ValidImage>();
    const droppedOfClass = new Map<string, string[]>();
    for (const img of copies) {
      if (!firstOfClass.has(img.class)) firstOfClass.set(img.class, img);
      else {
        dropped.add(img);
        droppedOfClass.set(img.class, [...(droppedOfClass.get(img.class) ?? []), img.path]);
      }
    }
    for (const [cls, paths] of droppedOfClass) duplicates.sameClass.push({ class: cls, kept: firstOfClass.get(cls)!.path, dropped: paths });
    if (firstOfClass.size > 1)
      duplicates.conflicts.push({ files: [...firstOfClass.values()].map((img) => ({ path: img.path, class: img.class })) });
  }
  return { kept: images.filter((img) => !dropped.has(img)), duplicates };
}

/**
 * Class names are the client's strings ("constructor", "__proto__"...): counted in a Map, then made own
 * keys by Object.fromEntries (an assignment `counts["__proto__"] = n` would set the prototype instead).
 */
function countBy(images: ValidImage[], subset?: Subset): Record<string, number> {
  const counts = new Map<string, number>();
  for (const img of images) if (subset === undefined || img.subset === subset) counts.set(img.class, (counts.get(img.class) ?? 0) + 1);
  return Object.fromEntries(counts);
}

export async function ingestDataset(opts: IngestOptions): Promise<DatasetRecord> {
  const { storage, config, tenant, scratch } = opts;
  const type = await detectArchiveType(opts.upload);
  if (!type)
    throw new AppError("NOT_AN_ARCHIVE", "the uploaded file is not a zip, tar or tar.gz archive (recognised by content, not by name)");

  const files = await extractArchive(opts.upload, type, path.join(scratch, "entries"), archiveLimits(config));
  await fs.rm(opts.upload, { force: true });
  const layout = await readLayout(files, { maxLabelsBytes: config.maxLabelsBytes, maxLabelsRows: config.maxArchiveEntries });

  const rejected: RejectedFile[] = [...layout.rejected];
  const sorted = [...layout.files].sort(compareFiles);
  const checks = await mapLimit(sorted, CHECK_CONCURRENCY, (f) => checkImage(f.file, f.size, config.maxImagePixels));
  const valid: ValidImage[] = [];
  sorted.forEach((f, i) => {
    const check = checks[i];
    if (check.ok) valid.push({ ...f, format: check.format });
    else rejected.push({ path: f.path, reason: check.reason });
  });
  rejected.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  const { kept, duplicates } = dropDuplicates(valid);
  const counts = countBy(kept);
  const usable = Object.values(counts).filter((n) => n >= MIN_IMAGES_PER_CLASS).length;
  if (usable < MIN_CLASSES) {
    throw new AppError(
      "DATASET_TOO_FEW_CLASSES",
      `a dataset needs at least ${MIN_CLASSES} classes with at least ${MIN_IMAGES_PER_CLASS} valid images each; found ${usable}`,
      { counts, rejected },
    );
  }

  // Lay the dataset out in scratch, then move it into storage in one step.
  const id = newDatasetId();
  const staged = path.join(scratch, "dataset");
  await fs.mkdir(path.join(staged, "images"), { recursive: true });
  const index: DatasetIndex = { images: [] };
  let bytes = 0;
  for (const [i, img] of kept.entries()) {
    const file = `images/${i}${EXTENSIONS[img.format]}`;
    await fs.rename(img.file, path.join(staged, file));
    const entry: IndexedImage = { file, class: img.class, subset: img.subset, path: img.path, sha256: img.sha256 };
    index.images.push(entry);
    bytes += img.size;
  }
  await fs.writeFile(path.join(staged, "index.json"), JSON.stringify(index));

  const record: DatasetRecord = {
    id,
    name: opts.name,
    status: "ready",
    classes: Object.keys(counts).sort(),
    counts,
    imageCount: kept.length,
    split: layout.split,
    rejected,
    duplicates,
    bytes,
    createdAt: new Date().toISOString(),
    subsetCounts: layout.split === "predefined" ? { train: countBy(kept, "train"), validation: countBy(kept, "validation") } : null,
  };
  const keys = datasetKeys(tenant, id);
  await storage.putDirectory(keys.root, staged);
  try {
    await storage.put(keys.record, JSON.stringify(record));
  } catch (err) {
    await storage.deletePrefix(keys.root);
    throw err;
  }
  return record;
}
