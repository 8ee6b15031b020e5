// Small previews of a dataset's images: a few per class, and one image
// decoded and scaled down to a JPEG the console can show in a grid.
import sharp from "sharp";
import type { DatasetIndex, IndexedImage } from "./dataset-store.js";

export interface ClassSamples {
  class: string;
  count: number;
  images: { index: number; path: string }[];
}

/** The first `perClass` images of each class (the index is sorted by class, subset, path). */
export function classSamples(index: DatasetIndex, classes: readonly string[], perClass: number): ClassSamples[] {
  const byClass = new Map<string, ClassSamples>(classes.map((c) => [c, { class: c, count: 0, images: [] }]));
  index.images.forEach((image: IndexedImage, i) => {
    const entry = byClass.get(image.class);
    if (!entry) return;
    entry.count++;
    if (entry.images.length < perClass) entry.images.push({ index: i, path: image.path });
  });
  return [...byClass.values()];
}

/** A `size` x `size` centre crop as JPEG; `maxPixels` bounds the decode like the upload's check did. */
export async function thumbnailJpeg(file: string, size: number, maxPixels: number): Promise<Buffer> {
  return sharp(file, { limitInputPixels: maxPixels }).rotate().resize(size, size, { fit: "cover" }).jpeg({ quality: 80 }).toBuffer();
}
