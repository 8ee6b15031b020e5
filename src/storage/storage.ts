// The storage interface: where datasets, weights, checkpoints and models live.
// Keys are '/'-separated relative paths; callers never see the filesystem, so
// an S3-compatible implementation can replace the local one.
import type { Readable } from "node:stream";

export interface StoredObject {
  key: string;
  size: number;
  modifiedAt: Date;
}

/** A write in progress: nothing is visible under `key` until `commit()`. */
export interface PendingWrite {
  /** Local path to write the bytes to (a temporary file). */
  readonly tempPath: string;
  commit(): Promise<StoredObject>;
  abort(): Promise<void>;
}

export interface Storage {
  /** Writes bytes atomically (temporary file, then rename). */
  put(key: string, data: Buffer | string | Uint8Array): Promise<StoredObject>;
  /** Streams into storage atomically; a failed stream leaves nothing behind. */
  putStream(key: string, source: Readable): Promise<StoredObject>;
  /** Moves a finished local file (e.g. written by a library) into storage atomically. */
  putFile(key: string, localPath: string): Promise<StoredObject>;
  /**
   * Moves a finished local directory under `prefix` (which must not exist yet).
   * Local storage renames it in one step; an object store uploads file by file,
   * so callers write the object that marks the whole as complete afterwards.
   */
  putDirectory(prefix: string, localDir: string): Promise<void>;
  /** A temporary file to write to, committed under `key` later or aborted. */
  beginWrite(key: string): Promise<PendingWrite>;
  get(key: string): Promise<Buffer>;
  createReadStream(key: string): Readable;
  /** A local path holding the object's bytes (the file itself for local storage, a cached copy otherwise). */
  localPath(key: string): Promise<string>;
  stat(key: string): Promise<StoredObject | null>;
  exists(key: string): Promise<boolean>;
  /** Objects whose key starts with `prefix` (recursive), sorted by key. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Names of the immediate children of `prefix` (objects and sub-prefixes), sorted; like S3's delimiter "/". */
  listChildren(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** Deletes every object under `prefix`; a missing prefix is not an error. */
  deletePrefix(prefix: string): Promise<void>;
  /** A fresh scratch directory on local disk, removed by the caller. */
  scratchDir(label: string): Promise<string>;
  /** Checks the storage can be written (for /readyz). */
  checkWritable(): Promise<void>;
}
