// Before a worker takes any job, it checks that TFJS_BACKEND can be loaded, in
// a short-lived child process: loading a native backend in the worker process
// itself would hold a CUDA context (and GPU memory) the training children need.
import { fork } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TfjsBackendName } from "../config.js";
import { AppError } from "../errors.js";
import type { BackendInfo } from "../backend/select-backend.js";
import { childExecArgv } from "./training-worker.js";

/** What the child reports: the backend it selected, or why none could be. */
export type BackendCheckMessage = { info: BackendInfo } | { error: { code: string; message: string; details: unknown } };

/**
 * Resolves with the backend the training children will get for `requested`;
 * rejects with BACKEND_UNAVAILABLE (the reason in its message and details)
 * when it cannot load, or when the check itself dies.
 */
export function checkBackend(requested: TfjsBackendName): Promise<BackendInfo> {
  const here = fileURLToPath(import.meta.url);
  const child = fork(path.join(path.dirname(here), `backend-check-child${path.extname(here)}`), [requested], {
    execArgv: childExecArgv(),
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    let reply: BackendCheckMessage | undefined;
    child.once("message", (m) => (reply = m as BackendCheckMessage));
    child.once("error", (err) => reject(new AppError("BACKEND_UNAVAILABLE", `backend check could not run: ${err.message}`, { requested })));
    child.once("exit", (code, signal) => {
      if (reply && "info" in reply) return resolve(reply.info);
      if (reply) return reject(new AppError("BACKEND_UNAVAILABLE", reply.error.message, reply.error.details));
      const how = signal ?? `code ${code}`;
      reject(
        new AppError("BACKEND_UNAVAILABLE", `TFJS_BACKEND=${requested}: the backend check exited (${how}) without an answer`, {
          requested,
        }),
      );
    });
  });
}
