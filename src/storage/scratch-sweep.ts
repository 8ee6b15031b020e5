// Scratch space left by a process that died (an upload cut by an out-of-memory
// kill, a worker lost mid-checkpoint) is swept when the API or a worker
// starts. The API and workers may share DATA_DIR and run at once, so an entry
// goes only when nobody can still be writing it: its owner (process id and
// host, in its name) is a process of this host that no longer exists, or
// nothing in it was modified for SCRATCH_MAX_AGE_MS (the rule for entries of
// other hosts, and of unknown owners).
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/** Scratch space under DATA_DIR: temporary files and directories, each named for its owner. */
export const TMP_DIR = ".tmp";

const HOST =
  os
    .hostname()
    .replace(/[^A-Za-z0-9_.-]/g, "_")
    .slice(0, 64) || "host";

/** Prefix of every scratch entry this process creates: `<pid>@<host>~`. */
export function scratchOwnerTag(pid = process.pid, host = HOST): string {
  return `${pid}@${host}~`;
}

function ownerOf(name: string): { pid: number; host: string } | null {
  const match = /^(\d+)@([A-Za-z0-9_.-]+)~/.exec(name);
  return match ? { pid: Number(match[1]), host: match[2] } : null;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Newest modification time of an entry and everything under it. */
async function newestChange(entry: string): Promise<number> {
  const stat = await fs.lstat(entry);
  let newest = stat.mtimeMs;
  if (stat.isDirectory()) {
    for (const child of await fs.readdir(entry)) newest = Math.max(newest, await newestChange(path.join(entry, child)).catch(() => 0));
  }
  return newest;
}

export interface SweepOptions {
  maxAgeMs: number;
}

export interface SweepResult {
  removed: string[];
  kept: number;
}

/** Removes the entries of `dir` that nobody can still be writing. A missing `dir` is empty. */
export async function sweepScratch(dir: string, opts: SweepOptions): Promise<SweepResult> {
  const now = Date.now();
  const result: SweepResult = { removed: [], kept: 0 };
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return result;
    throw err;
  }
  for (const name of names) {
    const entry = path.join(dir, name);
    const owner = ownerOf(name);
    const ownerDead = owner !== null && owner.host === HOST && owner.pid !== process.pid && !processExists(owner.pid);
    const stale = ownerDead || now - (await newestChange(entry).catch(() => now)) > opts.maxAgeMs;
    if (!stale) {
      result.kept++;
      continue;
    }
    await fs.rm(entry, { recursive: true, force: true });
    result.removed.push(name);
  }
  return result;
}

/** The start-up sweep of DATA_DIR's scratch space, logged; a failure is logged, never fatal. */
export async function sweepDataDirScratch(
  config: { dataDir: string; scratchMaxAgeMs: number },
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void },
): Promise<void> {
  try {
    const { removed, kept } = await sweepScratch(path.join(config.dataDir, TMP_DIR), { maxAgeMs: config.scratchMaxAgeMs });
    if (removed.length > 0) log.info({ removed: removed.length, kept }, "swept scratch space left by dead processes");
  } catch (err) {
    log.warn({ err: (err as Error).message }, "scratch sweep failed");
  }
}
