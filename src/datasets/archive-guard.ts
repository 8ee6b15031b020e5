// The rules every archive entry must pass before a byte of it is written:
// paths that stay inside the root, no links, no nested archives, and running
// totals against the entry, size and compression-ratio limits (zip bombs).
import { Transform, type TransformCallback } from "node:stream";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import { looksLikeArchive, ARCHIVE_HEAD_BYTES } from "./archive-type.js";

export interface ArchiveLimits {
  maxEntries: number;
  maxUncompressedBytes: number;
  maxCompressionRatio: number;
}

/**
 * Below this many uncompressed bytes an archive or entry is never refused for
 * its ratio: tiny files (a solid-colour BMP, a CSV) compress very well and
 * cannot hurt anyone.
 */
export const RATIO_FLOOR_BYTES = 1024 * 1024;

const NESTED_EXTENSIONS = /\.(zip|tar|tgz|gz|bz2|tbz2?|xz|txz|7z|rar|zst|jar)$/i;

export function archiveLimits(config: Pick<Config, "maxArchiveEntries" | "maxUncompressedBytes" | "maxCompressionRatio">): ArchiveLimits {
  return {
    maxEntries: config.maxArchiveEntries,
    maxUncompressedBytes: config.maxUncompressedBytes,
    maxCompressionRatio: config.maxCompressionRatio,
  };
}

/**
 * The entry path relative to the archive root ("a/b.jpg"), with "." and empty
 * segments dropped and backslashes read as separators. Absolute paths, drive
 * letters and ".." are refused: nothing may land outside the root.
 */
export function safeEntryPath(raw: string): string {
  const unified = raw.replace(/\\/g, "/");
  if (unified.startsWith("/") || /^[A-Za-z]:/.test(unified) || unified.includes("\0")) {
    throw new AppError("ARCHIVE_PATH_ESCAPE", `archive entry "${raw}" has an absolute path`, { path: raw });
  }
  const parts = unified.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new AppError("ARCHIVE_PATH_ESCAPE", `archive entry "${raw}" escapes the archive root with ".."`, { path: raw });
  }
  return parts.join("/");
}

/** Dotfiles, dot-folders, macOS resource forks and Windows thumbnails: ignored silently. */
export function isHiddenPath(entryPath: string): boolean {
  return entryPath.split("/").some((p) => p.startsWith(".") || p === "__MACOSX" || p === "Thumbs.db" || p === "desktop.ini");
}

export function refuseLink(entryPath: string, kind: string): never {
  throw new AppError("ARCHIVE_LINK_ENTRY", `archive entry "${entryPath}" is a ${kind}; links are not accepted`, { path: entryPath, kind });
}

export function refuseSpecial(entryPath: string, kind: string): never {
  throw new AppError("ARCHIVE_SPECIAL_ENTRY", `archive entry "${entryPath}" is a ${kind}; only files and folders are accepted`, {
    path: entryPath,
    kind,
  });
}

export function nestedArchiveError(entryPath: string): AppError {
  return new AppError("ARCHIVE_NESTED", `archive entry "${entryPath}" is itself an archive; nested archives are not accepted`, {
    path: entryPath,
  });
}

/** Refuses a nested archive by name before extraction (by content it is caught by entryWriter). */
export function checkNotNestedByName(entryPath: string): void {
  if (NESTED_EXTENSIONS.test(entryPath)) throw nestedArchiveError(entryPath);
}

/** Running totals of one archive against the limits. */
export function createLimitTracker(limits: ArchiveLimits, archiveBytes: number) {
  let entries = 0;
  let bytes = 0;

  function checkRatio(uncompressed: number, compressed: number, what: string): void {
    if (uncompressed > RATIO_FLOOR_BYTES && uncompressed > limits.maxCompressionRatio * Math.max(compressed, 1)) {
      throw new AppError(
        "ARCHIVE_COMPRESSION_RATIO",
        `${what} expands more than MAX_COMPRESSION_RATIO=${limits.maxCompressionRatio} times (${uncompressed} bytes from ${compressed})`,
        { limit: limits.maxCompressionRatio, uncompressedBytes: uncompressed, compressedBytes: compressed },
      );
    }
  }

  return {
    /** Counts one entry (of any kind). */
    entry(): void {
      entries += 1;
      if (entries > limits.maxEntries) tooManyEntries(limits.maxEntries, entries);
    },
    /** Adds uncompressed bytes (declared before writing, or counted while streaming). */
    addBytes(n: number): void {
      bytes += n;
      if (bytes > limits.maxUncompressedBytes) {
        throw new AppError(
          "ARCHIVE_TOO_LARGE_UNCOMPRESSED",
          `the archive expands to more than MAX_UNCOMPRESSED_BYTES=${limits.maxUncompressedBytes} bytes`,
          { limit: limits.maxUncompressedBytes },
        );
      }
      checkRatio(bytes, archiveBytes, "the archive");
    },
    /** One entry's own ratio (zip declares both sizes). */
    checkEntryRatio(entryPath: string, uncompressed: number, compressed: number): void {
      checkRatio(uncompressed, compressed, `archive entry "${entryPath}"`);
    },
    get bytes() {
      return bytes;
    },
  };
}

export type LimitTracker = ReturnType<typeof createLimitTracker>;

export function tooManyEntries(limit: number, found: number): never {
  throw new AppError("ARCHIVE_TOO_MANY_ENTRIES", `the archive has more than MAX_ARCHIVE_ENTRIES=${limit} entries`, { limit, found });
}

/** A pass-through stream that shows every chunk to `onChunk` (which may throw to stop the stream). */
export function byteCounter(onChunk: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) {
      try {
        onChunk(chunk);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback(null, chunk);
    },
  });
}

/** A pass-through stream that keeps the first bytes and refuses an entry that is itself an archive. */
export function nestedArchiveGuard(entryPath: string): Transform {
  let head = Buffer.alloc(0);
  let checked = false;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) {
      if (!checked) {
        head = Buffer.concat([head, chunk]).subarray(0, ARCHIVE_HEAD_BYTES);
        if (head.length >= ARCHIVE_HEAD_BYTES) {
          checked = true;
          if (looksLikeArchive(head)) return callback(nestedArchiveError(entryPath));
        }
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (!checked && looksLikeArchive(head)) return callback(nestedArchiveError(entryPath));
      callback();
    },
  });
}
