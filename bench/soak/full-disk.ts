// DATA_DIR on a tmpfs of its own, so the soak can fill it for a moment: the
// mount is shrunk to what is in use plus a little, the rest filled, then the
// filler removed and the size restored. Needs root (mount); without it the
// soak runs on a plain directory and reports the full-disk fault as skipped.
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";

export interface DataDisk {
  dir: string;
  /** Why the disk cannot be filled here, or null when it can. */
  cannotFill: string | null;
  /** Makes every write to DATA_DIR fail with ENOSPC until free(). */
  fill(): Promise<void>;
  free(): Promise<void>;
  /** Unmounts (after the services using it have stopped). */
  close(): Promise<void>;
}

const FILLER = ".soak-filler";

export async function mountDataDisk(dir: string, sizeBytes: number): Promise<DataDisk> {
  await fs.mkdir(dir, { recursive: true });
  const size = `size=${Math.ceil(sizeBytes / 1024)}k`;
  let cannotFill: string | null = null;
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", size, "tmpfs", dir], { stdio: "pipe" });
  } catch (err) {
    cannotFill = `cannot mount a tmpfs at ${dir} (${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}); needs root`;
  }
  const remount = (option: string) => execFileSync("mount", ["-o", `remount,${option}`, dir], { stdio: "pipe" });
  const filler = path.join(dir, FILLER);
  return {
    dir,
    cannotFill,
    async fill() {
      if (cannotFill) return;
      const s = await fs.statfs(dir);
      const usedKb = Math.ceil(((s.blocks - s.bfree) * s.bsize) / 1024);
      remount(`size=${usedKb + 4096}k`);
      const handle = await fs.open(filler, "w");
      const chunk = Buffer.alloc(1024 * 1024);
      try {
        for (;;) await handle.write(chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      } finally {
        await handle.close();
      }
    },
    async free() {
      if (cannotFill) return;
      await fs.rm(filler, { force: true });
      remount(size);
    },
    async close() {
      if (!cannotFill) execFileSync("umount", [dir], { stdio: "pipe" });
    },
  };
}
