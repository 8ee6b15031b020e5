// Generated test data for datasets: small images in every accepted format,
// zip/tar/tar.gz archives (including malicious ones), and multipart bodies.
import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import sharp from "sharp";
import * as tarStream from "tar-stream";
import yazl from "yazl";

export type ImageFormat = "jpeg" | "png" | "webp" | "gif" | "tiff";

/** A small image whose colour comes from `seed` (so different seeds give different bytes). */
export async function makeImage(seed: number, format: ImageFormat = "png", size = 32): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (seed * 37 + i * ((seed % 7) + 1)) & 0xff;
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } })
    [format]()
    .toBuffer();
}

export interface ArchiveEntry {
  path: string;
  data?: Buffer;
  /** "file" (default), "dir", "symlink", "fifo" or "hardlink" (tar only). */
  type?: "file" | "dir" | "symlink" | "fifo" | "hardlink";
  linkTarget?: string;
}

/**
 * A zip built with yazl. yazl refuses unsafe names, so `rawNames` rewrites
 * names in the finished bytes (same length) to forge path-escape entries.
 */
export async function makeZip(entries: ArchiveEntry[], rawNames: Record<string, string> = {}): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    if (e.type === "dir") zip.addEmptyDirectory(e.path);
    else if (e.type === "symlink") zip.addBuffer(Buffer.from(e.linkTarget ?? "/etc/passwd"), e.path, { mode: 0o120777, compress: false });
    else if (e.type === "fifo") zip.addBuffer(Buffer.alloc(0), e.path, { mode: 0o010644 });
    else zip.addBuffer(e.data ?? Buffer.alloc(0), e.path);
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  let out = Buffer.concat(chunks);
  for (const [placeholder, forged] of Object.entries(rawNames)) {
    if (placeholder.length !== forged.length) throw new Error("forged names must keep the placeholder's length");
    out = Buffer.from(out.toString("latin1").split(placeholder).join(forged), "latin1");
  }
  return out;
}

export async function makeTar(entries: ArchiveEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    if (e.type === "dir") pack.entry({ name: e.path, type: "directory" });
    else if (e.type === "symlink") pack.entry({ name: e.path, type: "symlink", linkname: e.linkTarget ?? "/etc/passwd" });
    else if (e.type === "hardlink") pack.entry({ name: e.path, type: "link", linkname: e.linkTarget ?? "x" });
    else if (e.type === "fifo") pack.entry({ name: e.path, type: "fifo" });
    else pack.entry({ name: e.path, size: (e.data ?? Buffer.alloc(0)).length }, e.data ?? Buffer.alloc(0));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function makeTgz(entries: ArchiveEntry[]): Promise<Buffer> {
  return gzipSync(await makeTar(entries));
}

/** `classes` x `perClass` distinct images as `<prefix><class>/<i>.<ext>` entries. */
export async function classFolders(classes: string[], perClass: number, prefix = "", format: ImageFormat = "png"): Promise<ArchiveEntry[]> {
  const out: ArchiveEntry[] = [];
  for (const [c, cls] of classes.entries()) {
    for (let i = 0; i < perClass; i++) {
      out.push({ path: `${prefix}${cls}/${i}.${format === "jpeg" ? "jpg" : format}`, data: await makeImage(c * 100 + i + 1, format) });
    }
  }
  return out;
}

export function incompressible(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** The parts of one file in a multipart/form-data body. */
function filePart(boundary: string, field: string, filename: string, bytes: Buffer): Buffer[] {
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  return [Buffer.from(head), bytes, Buffer.from("\r\n")];
}

/** The body from its parts, closed, with its content-type header. */
function multipart(boundary: string, parts: Buffer[]) {
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), headers: { "content-type": `multipart/form-data; boundary=${boundary}` } };
}

const newBoundary = () => `----rf${randomBytes(8).toString("hex")}`;

/** A multipart/form-data body with several files in one field (predict takes its images so). */
export function multipartFiles(files: { bytes: Buffer; filename: string }[], field = "file") {
  const boundary = newBoundary();
  return multipart(
    boundary,
    files.flatMap(({ bytes, filename }) => filePart(boundary, field, filename, bytes)),
  );
}

/** A multipart/form-data body with the archive in `file` (unless omitted) and extra fields. */
export function multipartBody(file: Buffer | null, fields: Record<string, string> = {}, filename = "dataset.zip", fileField = "file") {
  const boundary = newBoundary();
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  if (file) parts.push(...filePart(boundary, fileField, filename, file));
  return multipart(boundary, parts);
}
