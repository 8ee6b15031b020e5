// A full disk (or a filesystem quota) is the server's trouble, never the
// client's: wherever a write fails with ENOSPC or EDQUOT, the answer is
// 507 STORAGE_FULL, and the write's temporary files are removed as on any failure.
import { AppError } from "../errors.js";

const FULL = new Set(["ENOSPC", "EDQUOT"]);

export function isStorageFull(err: unknown): boolean {
  return typeof err === "object" && err !== null && FULL.has((err as NodeJS.ErrnoException).code ?? "");
}

export function storageFull(): AppError {
  return new AppError("STORAGE_FULL", "the server's storage is full; retry later", { reason: "disk" });
}
