// Streams the files of a zip, tar or tar.gz archive to numbered files in a
// scratch folder, applying the archive guard to every entry. Entry names are
// never used as file-system paths, so nothing can be written outside `outDir`.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { PassThrough, pipeline as streamPipeline, type Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tarStream from "tar-stream";
import yauzl from "yauzl";
import { AppError, isAppError } from "../errors.js";
import { isStorageFull, storageFull } from "../storage/storage-full.js";
import type { ArchiveType } from "./archive-type.js";
import {
  byteCounter,
  checkNotNestedByName,
  createLimitTracker,
  isHiddenPath,
  nestedArchiveGuard,
  refuseLink,
  refuseSpecial,
  safeEntryPath,
  tooManyEntries,
  type ArchiveLimits,
  type LimitTracker,
} from "./archive-guard.js";

export interface ExtractedFile {
  /** Path inside the archive, normalised ("cats/1.jpg"). */
  path: string;
  /** Where its bytes are now. */
  file: string;
  size: number;
  /** sha256 of the content, hex. */
  sha256: string;
}

function corrupt(err: unknown): AppError {
  if (isAppError(err)) return err;
  if (isStorageFull(err)) return storageFull();
  return new AppError("ARCHIVE_CORRUPT", `the archive cannot be read: ${(err as Error).message}`);
}

async function writeEntry(source: Readable | AsyncIterable<Buffer>, entryPath: string, file: string): Promise<ExtractedFile> {
  let size = 0;
  const hash = createHash("sha256");
  await pipeline(
    source,
    byteCounter((chunk) => {
      size += chunk.length;
      hash.update(chunk);
    }),
    nestedArchiveGuard(entryPath),
    createWriteStream(file),
  );
  return { path: entryPath, file, size, sha256: hash.digest("hex") };
}

export async function extractArchive(archive: string, type: ArchiveType, outDir: string, limits: ArchiveLimits): Promise<ExtractedFile[]> {
  await fs.mkdir(outDir, { recursive: true });
  const archiveBytes = (await fs.stat(archive)).size;
  const tracker = createLimitTracker(limits, archiveBytes);
  try {
    return type === "zip"
      ? await extractZip(archive, outDir, limits, tracker)
      : await extractTar(archive, type === "tar.gz", outDir, tracker);
  } catch (err) {
    throw corrupt(err);
  }
}

// ---- zip

const S_IFMT = 0o170000;
const SYMLINK = 0o120000;
const DIRECTORY = 0o040000;
const CHARACTER_DEVICE = 0o020000;
const BLOCK_DEVICE = 0o060000;
const FIFO = 0o010000;
const SOCKET = 0o140000;
const SPECIAL_TYPES: Record<number, string> = {
  [CHARACTER_DEVICE]: "character device",
  [BLOCK_DEVICE]: "block device",
  [FIFO]: "fifo",
  [SOCKET]: "socket",
};

function zipEntryPath(entry: yauzl.Entry): string {
  const raw = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
  return safeEntryPath(raw);
}

/** The zip's entries one by one from its central directory (no data read). */
async function* zipEntries(zip: yauzl.ZipFile): AsyncGenerator<yauzl.Entry> {
  while (true) {
    const next = await new Promise<yauzl.Entry | null>((resolve, reject) => {
      const onEntry = (e: yauzl.Entry) => done(null, e);
      const onEnd = () => done(null, null);
      const onError = (err: Error) => done(err, null);
      function done(err: Error | null, e: yauzl.Entry | null) {
        zip.off("entry", onEntry).off("end", onEnd).off("error", onError);
        if (err) reject(err);
        else resolve(e);
      }
      zip.on("entry", onEntry).on("end", onEnd).on("error", onError);
      zip.readEntry();
    });
    if (!next) return;
    yield next;
  }
}

interface ZipPlanItem {
  index: number;
  path: string;
}

async function extractZip(archive: string, outDir: string, limits: ArchiveLimits, tracker: LimitTracker): Promise<ExtractedFile[]> {
  const options = { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false } as const;
  // Pass 1: the central directory alone (declared sizes) decides, before any byte is written.
  const plan: ZipPlanItem[] = [];
  const scan = await yauzl.openPromise(archive, options);
  try {
    if (scan.entryCount > limits.maxEntries) tooManyEntries(limits.maxEntries, scan.entryCount);
    let index = 0;
    for await (const entry of zipEntries(scan)) {
      tracker.entry();
      const entryPath = zipEntryPath(entry);
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      if (mode === SYMLINK) refuseLink(entryPath, "symbolic link");
      if (SPECIAL_TYPES[mode]) refuseSpecial(entryPath, SPECIAL_TYPES[mode]);
      const isDir = entry.fileNameRaw.at(-1) === 0x2f || entry.fileNameRaw.at(-1) === 0x5c || mode === DIRECTORY;
      const i = index++;
      if (isDir || entryPath === "" || isHiddenPath(entryPath)) continue;
      checkNotNestedByName(entryPath);
      if (entry.isEncrypted()) throw new AppError("ARCHIVE_CORRUPT", `archive entry "${entryPath}" is encrypted`, { path: entryPath });
      tracker.checkEntryRatio(entryPath, entry.uncompressedSize, entry.compressedSize);
      tracker.addBytes(entry.uncompressedSize);
      plan.push({ index: i, path: entryPath });
    }
  } finally {
    scan.close();
  }

  // Pass 2: extract the planned entries; yauzl refuses data that differs from the declared sizes.
  const out: ExtractedFile[] = [];
  const zip = await yauzl.openPromise(archive, options);
  try {
    let index = 0;
    let next = 0;
    for await (const entry of zipEntries(zip)) {
      if (next >= plan.length) break;
      if (index++ !== plan[next].index) continue;
      const item = plan[next++];
      const file = path.join(outDir, String(out.length));
      out.push(await writeEntry(await zip.openReadStreamPromise(entry), item.path, file));
    }
  } finally {
    zip.close();
  }
  return out;
}

// ---- tar and tar.gz

async function extractTar(archive: string, gzipped: boolean, outDir: string, tracker: LimitTracker): Promise<ExtractedFile[]> {
  const out: ExtractedFile[] = [];
  const extract = tarStream.extract();
  // For tar.gz every decompressed byte counts (headers and padding too): a bomb stops at the limit.
  const stages = gzipped ? [createGunzip(), byteCounter((chunk) => tracker.addBytes(chunk.length))] : [new PassThrough()];
  // tar-stream is a streamx stream: fed with pipe(), and a failure upstream destroys it.
  const input = createReadStream(archive);
  const fed = streamPipeline(input, ...(stages as [Transform]), (err) => {
    if (err) extract.destroy(err);
  });
  fed.pipe(extract as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of extract) {
      const header = entry.header;
      tracker.entry();
      const entryPath = safeEntryPath(header.name);
      if (header.type === "symlink" || header.type === "link")
        refuseLink(entryPath, header.type === "link" ? "hard link" : "symbolic link");
      if (header.type !== "file" && header.type !== "contiguous-file" && header.type !== "directory") {
        refuseSpecial(entryPath, header.type ?? "unknown entry");
      }
      if (header.type === "directory" || entryPath === "" || isHiddenPath(entryPath)) {
        entry.resume();
        continue;
      }
      checkNotNestedByName(entryPath);
      if (!gzipped) tracker.addBytes(header.size ?? 0);
      const file = path.join(outDir, String(out.length));
      out.push(await writeEntry(entry as unknown as AsyncIterable<Buffer>, entryPath, file));
    }
  } finally {
    input.destroy();
    extract.destroy();
  }
  return out;
}
