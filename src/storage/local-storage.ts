// Storage in a local directory (DATA_DIR): atomic writes by temporary file,
// fsync and rename on the same filesystem, so a reader never sees a
// half-written object, even after the machine itself went down.
import { createReadStream, createWriteStream, type Dirent } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { PendingWrite, Storage, StoredObject } from "./storage.js";
import { scratchOwnerTag, TMP_DIR } from "./scratch-sweep.js";

/** fsync of a file or a directory. */
async function syncPath(p: string): Promise<void> {
  const handle = await fs.open(p, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function createLocalStorage(root: string): Storage {
  const base = path.resolve(root);
  const tmpRoot = path.join(base, TMP_DIR);

  function resolve(key: string): string {
    if (!key || key.startsWith("/") || key.split("/").some((part) => part === ".." || part === "." || part === "")) {
      throw new Error(`invalid storage key "${key}"`);
    }
    return path.join(base, ...key.split("/"));
  }

  async function tempFile(): Promise<string> {
    await fs.mkdir(tmpRoot, { recursive: true });
    return path.join(tmpRoot, `${scratchOwnerTag()}${randomUUID()}.part`);
  }

  async function stat(key: string): Promise<StoredObject | null> {
    try {
      const s = await fs.stat(resolve(key));
      if (!s.isFile()) return null;
      return { key, size: s.size, modifiedAt: s.mtime };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async function moveInto(key: string, from: string): Promise<StoredObject> {
    const target = resolve(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    try {
      // Bytes on disk before the name: after a crash of the machine the key holds all of them or is absent.
      await syncPath(from);
      await fs.rename(from, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
      // Another filesystem: copy next to the target first so the final step stays a rename.
      const near = `${target}.${randomUUID()}.part`;
      await fs.copyFile(from, near);
      await syncPath(near);
      await fs.rename(near, target);
      await fs.rm(from, { force: true });
    }
    // The rename itself lives in the directory.
    await syncPath(path.dirname(target)).catch(() => undefined);
    const s = await fs.stat(target);
    return { key, size: s.size, modifiedAt: s.mtime };
  }

  async function moveDirectory(prefix: string, from: string): Promise<void> {
    const target = resolve(prefix.replace(/\/+$/, ""));
    await fs.mkdir(path.dirname(target), { recursive: true });
    try {
      await fs.rename(from, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST" || code === "ENOTEMPTY") throw new Error(`storage prefix "${prefix}" already exists`);
      if (code !== "EXDEV") throw err;
      const near = `${target}.${randomUUID()}.part`;
      await fs.cp(from, near, { recursive: true });
      await fs.rename(near, target);
      await fs.rm(from, { recursive: true, force: true });
    }
  }

  async function beginWrite(key: string): Promise<PendingWrite> {
    resolve(key);
    const tempPath = await tempFile();
    let done = false;
    return {
      tempPath,
      async commit() {
        if (done) throw new Error(`write of "${key}" already finished`);
        done = true;
        return moveInto(key, tempPath);
      },
      async abort() {
        done = true;
        await fs.rm(tempPath, { force: true });
      },
    };
  }

  async function walk(dir: string, prefix: string, out: StoredObject[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return;
      throw err;
    }
    for (const entry of entries) {
      const key = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (!prefix && entry.name === TMP_DIR) continue;
      if (entry.isDirectory()) await walk(path.join(dir, entry.name), key, out);
      else if (entry.isFile() && !entry.name.endsWith(".part")) {
        const s = await fs.stat(path.join(dir, entry.name));
        out.push({ key, size: s.size, modifiedAt: s.mtime });
      }
    }
  }

  return {
    async put(key, data) {
      const w = await beginWrite(key);
      try {
        await fs.writeFile(w.tempPath, data);
      } catch (err) {
        await w.abort();
        throw err;
      }
      return w.commit();
    },
    async putStream(key, source: Readable) {
      const w = await beginWrite(key);
      try {
        await pipeline(source, createWriteStream(w.tempPath));
      } catch (err) {
        await w.abort();
        throw err;
      }
      return w.commit();
    },
    async putFile(key, localPath) {
      return moveInto(key, localPath);
    },
    putDirectory: moveDirectory,
    beginWrite,
    async get(key) {
      return fs.readFile(resolve(key));
    },
    createReadStream(key) {
      return createReadStream(resolve(key));
    },
    async localPath(key) {
      const p = resolve(key);
      await fs.access(p);
      return p;
    },
    stat,
    async exists(key) {
      return (await stat(key)) !== null;
    },
    async list(prefix) {
      const clean = prefix.replace(/\/+$/, "");
      const out: StoredObject[] = [];
      await walk(clean ? resolve(clean) : base, clean, out);
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },
    async listChildren(prefix) {
      try {
        const names = await fs.readdir(resolve(prefix.replace(/\/+$/, "")));
        return names.filter((n) => !n.endsWith(".part")).sort();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return [];
        throw err;
      }
    },
    async delete(key) {
      await fs.rm(resolve(key), { force: true });
    },
    async deletePrefix(prefix) {
      await fs.rm(resolve(prefix.replace(/\/+$/, "")), { recursive: true, force: true });
    },
    async scratchDir(label) {
      await fs.mkdir(tmpRoot, { recursive: true });
      return fs.mkdtemp(path.join(tmpRoot, `${scratchOwnerTag()}${label.replace(/[^A-Za-z0-9_-]/g, "_")}-`));
    },
    async checkWritable() {
      await this.put(`${TMP_DIR}-probe/ready`, String(Date.now()));
    },
  };
}
