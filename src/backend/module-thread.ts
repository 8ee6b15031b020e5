// Starts a worker_thread on a module of this project: the built .js as it is;
// the .ts source (development, tests) through tsx, registered inside the thread
// first, since a thread's entry module is loaded before `--import` hooks apply.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

/** A thread running `name` (without extension), found next to the module whose import.meta.url is `besideUrl`. */
export function startModuleThread(besideUrl: string, name: string, workerData: unknown): Worker {
  const here = fileURLToPath(besideUrl);
  const ext = path.extname(here);
  const file = path.join(path.dirname(here), `${name}${ext}`);
  if (ext !== ".ts") return new Worker(file, { workerData });
  const boot = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(pathToFileURL(file).href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * Resolves when the thread posts `{ ready: true }` (its set-up done); rejects
 * when it posts `{ error }` or fails first. The threads started here all say so.
 */
export function threadReady(worker: Worker): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    worker.once("message", (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(m.error))));
    worker.once("error", reject);
  });
}
