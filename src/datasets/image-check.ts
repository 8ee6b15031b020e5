// Decides whether one extracted file is a usable image: a format we accept
// (by its first bytes), a sane size, and a full decode that succeeds.
import fs from "node:fs/promises";
import sharp, { type Metadata } from "sharp";

/** The formats a dataset may contain (JPEG, PNG, WebP, GIF's first frame, TIFF). */
export type ImageFormat = "jpeg" | "png" | "webp" | "gif" | "tiff";

export type RejectReason = "zero_sized" | "unsupported_format" | "undecodable" | "truncated" | "too_many_pixels";

export type ImageCheck = { ok: true; format: ImageFormat; width: number; height: number } | { ok: false; reason: RejectReason };

const HEAD = 16;
const TAIL = 16;

function sniff(head: Buffer): ImageFormat | null {
  const starts = (bytes: number[], at = 0) => bytes.every((b, i) => head[at + i] === b);
  if (starts([0xff, 0xd8, 0xff])) return "jpeg";
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  if (starts([0x47, 0x49, 0x46, 0x38])) return "gif";
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return "webp";
  if (starts([0x49, 0x49, 0x2a, 0x00]) || starts([0x4d, 0x4d, 0x00, 0x2a])) return "tiff";
  return null;
}

/** Whether the file ends where its format says it should: if not, a failed decode is a truncation. */
function endsCleanly(format: ImageFormat, head: Buffer, tail: Buffer, size: number): boolean {
  const endsWith = (bytes: number[]) => tail.length >= bytes.length && bytes.every((b, i) => tail[tail.length - bytes.length + i] === b);
  switch (format) {
    case "jpeg":
      return endsWith([0xff, 0xd9]);
    case "png":
      return endsWith([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
    case "gif":
      return endsWith([0x3b]);
    case "webp":
      return head.readUInt32LE(4) + 8 <= size;
    case "tiff":
      return true;
  }
}

async function readEnds(file: string, size: number): Promise<{ head: Buffer; tail: Buffer }> {
  const handle = await fs.open(file, "r");
  try {
    const head = Buffer.alloc(Math.min(HEAD, size));
    const tail = Buffer.alloc(Math.min(TAIL, size));
    await handle.read(head, 0, head.length, 0);
    await handle.read(tail, 0, tail.length, size - tail.length);
    return { head, tail };
  } finally {
    await handle.close();
  }
}

export async function checkImage(file: string, size: number, maxPixels: number): Promise<ImageCheck> {
  if (size === 0) return { ok: false, reason: "zero_sized" };
  const { head, tail } = await readEnds(file, size);
  const format = sniff(head);
  if (!format) return { ok: false, reason: "unsupported_format" };
  const broken = (): ImageCheck => ({ ok: false, reason: endsCleanly(format, head, tail, size) ? "undecodable" : "truncated" });
  let meta: Metadata;
  try {
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch {
    return broken();
  }
  if (meta.format !== format) return broken();
  if (!meta.width || !meta.height) return { ok: false, reason: "zero_sized" };
  if (meta.width * meta.height > maxPixels) return { ok: false, reason: "too_many_pixels" };
  try {
    // Decode every pixel of the first frame; keep one channel only, to hold a
    // third of the pixels. Not stats(): run concurrently, it sometimes passes
    // a truncated file (sharp 0.35, see test/datasets/image-check.test.ts).
    await sharp(file, { limitInputPixels: maxPixels, failOn: "error", sequentialRead: true }).extractChannel(0).raw().toBuffer();
  } catch {
    return broken();
  }
  return { ok: true, format, width: meta.width, height: meta.height };
}
