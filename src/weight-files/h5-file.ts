// h5wasm access for the weights formats: opens host files in place (h5wasm's node build reads and writes
// host paths directly, so a 100 MB file is never copied into an in-memory filesystem), confines every
// file to its own bytes, turns HDF5 failures into coded errors, and reads and writes string-list
// attributes the way h5py/Keras lay them out.
import fs from "node:fs/promises";
import path from "node:path";
import type { Attribute, Dataset, File as H5File, Group } from "h5wasm/node";
import { AppError } from "../errors.js";

export type { Dataset, Group, H5File };

type H5wasm = typeof import("h5wasm/node")["default"];
type H5Module = Awaited<H5wasm["ready"]>;

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

let loading: Promise<H5wasm> | undefined;
/** Set once loaded: every entity this module hands out comes from a file opened after that. */
let h5wasm: H5wasm | undefined;
let ExternalLinkClass: typeof import("h5wasm/node")["ExternalLink"] | undefined;

/**
 * Loads h5wasm on first use: compiling its HDF5 library costs seconds of CPU, which processes that never
 * open an HDF5 file (the API, most CLI commands) should not pay. HDF5 errors then throw instead of
 * printing a diagnostic to stderr.
 */
function h5Ready(): Promise<H5wasm> {
  loading ??= import("h5wasm/node").then(async ({ default: lib, ExternalLink }) => {
    const module = await lib.ready;
    module.activate_throwing_error_handler();
    confineOpens(module);
    h5wasm = lib;
    ExternalLinkClass = ExternalLink;
    return lib;
  });
  return loading;
}

// Linux open(2) flags as emscripten passes them: O_CREAT | O_EXCL opens a file that did not exist.
const O_CREAT_EXCL = 0o100 | 0o200;
const EACCES = 2; // emscripten's errno numbering
/** The one host file HDF5 may open right now: the file being opened by openH5ForRead or createH5. */
let opening: string | undefined;
/** Every open refused so far; a read that grows it tried to reach outside its file. */
let refusedOpens = 0;

/**
 * HDF5 follows a dataset's external storage, external links and virtual-dataset sources by opening
 * other files, anywhere on the host. Every open goes through emscripten's FS.open, so that is where a
 * weights file is kept to itself: the only file HDF5 may open is the one we are opening; anything it
 * opens later on a file's behalf is refused (EACCES) and counted. Brand-new files (O_CREAT|O_EXCL:
 * libc's tmpfile, used for HDF5's error stack) hold no host bytes and stay allowed.
 */
function confineOpens(module: H5Module): void {
  // FS is part of h5wasm's module typings (H5Module.FS); fail closed should a version stop exposing it.
  const fsApi = (module as unknown as { FS?: { open?: (...args: unknown[]) => unknown; ErrnoError?: new (errno: number) => Error } }).FS;
  const open = fsApi?.open;
  const ErrnoError = fsApi?.ErrnoError;
  if (!fsApi || typeof open !== "function" || typeof ErrnoError !== "function") {
    throw new Error("h5wasm no longer exposes FS.open: weights files cannot be confined to themselves");
  }
  fsApi.open = function confinedOpen(this: unknown, target: unknown, flags: unknown, ...rest: unknown[]) {
    const creatingNew = typeof flags === "number" && (flags & O_CREAT_EXCL) === O_CREAT_EXCL;
    if (!creatingNew && (typeof target !== "string" || path.resolve(target) !== opening)) {
      refusedOpens++;
      throw new ErrnoError(EACCES);
    }
    return open.call(this, target, flags, ...rest);
  };
}

function openConfined<T>(filePath: string, create: () => T): T {
  opening = path.resolve(filePath);
  try {
    return create();
  } finally {
    opening = undefined;
  }
}

/** WEIGHTS_UNSAFE: a dataset of the file would be read (or sized) from something other than the file's own bytes. */
export function unsafe(filePath: string, dataset: string, reason: string): AppError {
  return new AppError("WEIGHTS_UNSAFE", `weights file ${path.basename(filePath)} is refused: dataset ${dataset} ${reason}`, {
    file: path.basename(filePath),
    dataset,
    reason,
  });
}

export function unreadable(filePath: string, reason: string): AppError {
  return new AppError("WEIGHTS_UNREADABLE", `cannot read weights file ${path.basename(filePath)}: ${reason}`, {
    file: path.basename(filePath),
    reason,
  });
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // h5wasm's messages are HDF5 error stacks; their most specific line says what went wrong.
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const detail = lines.find((l) => l.startsWith("#000:")) ?? lines[0] ?? "unknown error";
  return detail.replace(/^#000: .*? in /, "").slice(0, 300);
}

/** True when the file starts with the HDF5 signature (files with a user block are not supported). */
export async function isHdf5(filePath: string): Promise<boolean> {
  const handle = await fs.open(filePath, "r");
  try {
    const head = Buffer.alloc(HDF5_SIGNATURE.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return bytesRead === head.length && head.equals(HDF5_SIGNATURE);
  } finally {
    await handle.close();
  }
}

export async function openH5ForRead(filePath: string): Promise<H5File> {
  const lib = await h5Ready();
  try {
    return openConfined(filePath, () => new lib.File(path.resolve(filePath), "r"));
  } catch (error) {
    throw unreadable(filePath, `not a readable HDF5 file (${firstLine(error)})`);
  }
}

/** A new HDF5 file in the oldest format (superblock 0), as h5py writes by default, for old readers. */
export async function createH5(filePath: string): Promise<H5File> {
  const lib = await h5Ready();
  return openConfined(filePath, () => new lib.File(path.resolve(filePath), "w", { libver: ["earliest", "v108"] }));
}

/**
 * Runs a read, turning HDF5 failures (a truncated or corrupt file) into WEIGHTS_UNREADABLE, and any
 * attempt to reach another file during it into WEIGHTS_UNSAFE naming `what` (the object being read).
 */
export function guardRead<T>(filePath: string, read: () => T, what = "/"): T {
  const refusedBefore = refusedOpens;
  let result: T;
  try {
    result = read();
  } catch (error) {
    if (error instanceof AppError) throw error;
    if (refusedOpens !== refusedBefore) throw unsafe(filePath, what, "is stored in or linked to another file");
    throw unreadable(filePath, firstLine(error));
  }
  if (refusedOpens !== refusedBefore) throw unsafe(filePath, what, "is stored in or linked to another file");
  return result;
}

/**
 * `holder.get(name)` that never leaves the file: an external link (to a dataset or a group) is refused
 * as WEIGHTS_UNSAFE. Soft links are paths inside the same file; h5wasm follows them and the object they
 * resolve to is checked like any other (a soft link that crosses an external link is refused above).
 */
export function getInFile(filePath: string, holder: Group, name: string): ReturnType<Group["get"]> {
  const where = `${holder.path === "/" ? "" : holder.path}/${name}`;
  const entity = guardRead(filePath, () => holder.get(name), where);
  if (ExternalLinkClass !== undefined && entity instanceof ExternalLinkClass)
    throw unsafe(filePath, where, "is an external link to another file");
  return entity;
}

/**
 * Refuses a weight dataset whose bytes would not come from the file itself, or that is not a plain
 * array of floats: a virtual dataset (its values are mapped from other datasets, possibly in other
 * files), chunks larger than the dataset (a read would allocate the chunk), and external storage (found
 * by reading its first value: HDF5 then tries to open the external file, which confineOpens refuses).
 */
export function checkWeightDataset(filePath: string, dataset: Dataset): void {
  const meta = guardRead(filePath, () => dataset.metadata, dataset.path);
  if (meta.virtual_sources !== undefined) throw unsafe(filePath, dataset.path, "is a virtual dataset (mapped from other datasets)");
  const floatClass = 1; // H5T_FLOAT
  if (meta.type !== floatClass || (meta.size !== 4 && meta.size !== 8)) {
    throw unreadable(filePath, `dataset ${dataset.path} holds ${String(dataset.dtype)}, not float32 weights`);
  }
  const elements = meta.total_size;
  if (meta.chunks && meta.chunks.reduce((a, b) => a * b, 1) > Math.max(elements, 1)) {
    throw unsafe(filePath, dataset.path, "has chunks larger than the dataset itself");
  }
  if (elements > 0) {
    const rank = meta.shape?.length ?? 0;
    // One value is enough to make HDF5 open an external file; a scalar is read whole (it is one value).
    guardRead(filePath, () => (rank === 0 ? dataset.value : dataset.slice(Array.from({ length: rank }, () => [0, 1]))), dataset.path);
  }
}

export function isGroup(entity: unknown): entity is Group {
  return h5wasm !== undefined && entity instanceof h5wasm.Group;
}

export function isDataset(entity: unknown): entity is Dataset {
  return h5wasm !== undefined && entity instanceof h5wasm.Dataset;
}

function attributeStrings(attribute: Attribute): string[] {
  const value = attribute.value;
  if (value === null) return [];
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.map((v) => (typeof v === "string" ? v : String(v)));
  // numpy writes an empty list as a zero-length float64 array
  if (ArrayBuffer.isView(value) && (value as ArrayLike<number>).length === 0) return [];
  throw new Error(`attribute ${attribute.name} is not a list of strings`);
}

/**
 * A string-list attribute as Keras' load_attributes_from_hdf5_group reads it: `name`, or when it was too
 * long for one HDF5 object header, the chunks `name0`, `name1`, ... Undefined when absent.
 */
export function readStringList(holder: Group, name: string): string[] | undefined {
  const attrs = holder.attrs;
  if (name in attrs) return attributeStrings(attrs[name]);
  if (!(`${name}0` in attrs)) return undefined;
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...attributeStrings(attrs[`${name}${i}`]));
  return out;
}

/** Keras' HDF5_OBJECT_HEADER_LIMIT: a fixed-length attribute larger than this is split into chunks. */
export const HDF5_OBJECT_HEADER_LIMIT = 64512;

/**
 * Writes a string list as Keras' save_attributes_to_hdf5_group does: a fixed-length ASCII string array
 * (numpy "S" dtype), an empty float64 array for an empty list, split into `name0`, `name1`, ... with
 * numpy.array_split when one array would exceed `limit` bytes. h5wasm can only write null-terminated
 * fixed strings (h5py writes null-padded ones), so each item gets one byte more; h5py reads both as bytes.
 */
export function writeStringList(holder: Group, name: string, items: string[], limit = HDF5_OBJECT_HEADER_LIMIT): void {
  if (items.length === 0) {
    holder.create_attribute(name, new Float64Array(0), [0], "<d");
    return;
  }
  const itemSize = Math.max(...items.map((s) => Buffer.byteLength(s))) + 1;
  let chunks = 1;
  while (Math.ceil(items.length / chunks) * itemSize > limit && chunks < items.length) chunks++;
  if (chunks === 1) {
    holder.create_attribute(name, items, [items.length], `A${itemSize}`);
    return;
  }
  // numpy.array_split: the first (n % chunks) parts get one item more.
  const base = Math.floor(items.length / chunks);
  const extra = items.length % chunks;
  let start = 0;
  for (let i = 0; i < chunks; i++) {
    const part = items.slice(start, start + base + (i < extra ? 1 : 0));
    start += part.length;
    holder.create_attribute(`${name}${i}`, part, [part.length], `A${itemSize}`);
  }
}

/** Reads a dataset as float32, converting float64; anything else is unreadable as weights. */
export function readFloat32(filePath: string, dataset: Dataset): Float32Array {
  return guardRead(
    filePath,
    () => {
      const value = dataset.value;
      if (value instanceof Float32Array) return value;
      if (value instanceof Float64Array) return Float32Array.from(value);
      if (typeof value === "number") return Float32Array.of(value);
      throw unreadable(filePath, `dataset ${dataset.path} holds ${String(dataset.dtype)}, not float32 weights`);
    },
    dataset.path,
  );
}
