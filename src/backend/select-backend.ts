// Picks the TensorFlow.js backend once per process (TFJS_BACKEND) and remembers
// which one runs and why the better ones were skipped, for logs, /readyz and job records.
// It registers no kernel of its own: training processes add theirs with wasm-speedups/.
import * as tf from "@tensorflow/tfjs";
import type { TfjsBackendName } from "../config.js";
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";

export type BackendName = Exclude<TfjsBackendName, "auto">;

export interface BackendInfo {
  name: BackendName;
  /** The better backends `auto` tried first, and why each did not load. */
  skipped: { name: BackendName; reason: string }[];
}

/** Best first: the order `auto` tries. */
const PREFERENCE: readonly BackendName[] = ["tensorflow-gpu", "tensorflow", "wasm", "cpu"];

/**
 * How each backend is made available to tfjs-core. Both native packages register
 * themselves as "tensorflow". Their names sit in variables so that TypeScript
 * does not need them installed: they are optional dependencies, absent offline.
 */
const LOADERS: Record<BackendName, { tfName: string; load: () => Promise<unknown> }> = {
  "tensorflow-gpu": { tfName: "tensorflow", load: () => importOptional("@tensorflow/tfjs-node-gpu") },
  tensorflow: { tfName: "tensorflow", load: () => importOptional("@tensorflow/tfjs-node") },
  wasm: {
    tfName: "wasm",
    load: async () => {
      await import("@tensorflow/tfjs-backend-wasm");
    },
  },
  cpu: { tfName: "cpu", load: async () => undefined },
};

function importOptional(specifier: string): Promise<unknown> {
  return import(specifier);
}

let selection: { requested: TfjsBackendName; info: Promise<BackendInfo> } | undefined;
let selected: BackendInfo | undefined;

/** The backend selectBackend settled on, or undefined before it has. */
export function currentBackend(): BackendInfo | undefined {
  return selected;
}

/**
 * Makes `requested` the tfjs backend of this process. `auto` takes the first of
 * PREFERENCE that loads; a named backend that cannot load is an error, never a
 * silent fallback. Calling again returns the same info; asking for a different
 * backend than the one already chosen is an error, since tensors and models
 * made on one backend must not silently move to another.
 */
export function selectBackend(requested: TfjsBackendName, log?: Logger): Promise<BackendInfo> {
  if (selection) {
    const first = selection;
    return first.info.then((info) => {
      if (requested !== "auto" && requested !== first.requested && requested !== info.name) {
        throw new AppError("BACKEND_UNAVAILABLE", `backend "${requested}" requested but "${info.name}" is already in use in this process`, {
          requested,
          active: info.name,
        });
      }
      return info;
    });
  }
  const info = choose(requested).then(
    (chosen) => {
      selected = chosen;
      log?.info({ backend: chosen.name, requested, skipped: chosen.skipped, ...backendDetails(chosen.name) }, "tfjs backend selected");
      return chosen;
    },
    (err: unknown) => {
      selection = undefined; // a failed attempt may be retried, e.g. after fixing the environment
      throw err;
    },
  );
  selection = { requested, info };
  return info;
}

async function choose(requested: TfjsBackendName): Promise<BackendInfo> {
  if (requested !== "auto") {
    const reason = await tryBackend(requested);
    if (reason !== undefined) {
      throw new AppError("BACKEND_UNAVAILABLE", `TFJS_BACKEND=${requested} cannot be used: ${reason}`, { requested, reason });
    }
    return { name: requested, skipped: [] };
  }
  const skipped: BackendInfo["skipped"] = [];
  for (const name of PREFERENCE) {
    const reason = await tryBackend(name);
    if (reason === undefined) return { name, skipped };
    skipped.push({ name, reason });
  }
  throw new AppError("BACKEND_UNAVAILABLE", "no TensorFlow.js backend could be loaded", { skipped });
}

/** Loads and activates one backend; returns why it failed, or undefined on success. */
async function tryBackend(name: BackendName): Promise<string | undefined> {
  const { tfName, load } = LOADERS[name];
  try {
    await load();
  } catch (err) {
    return describeLoadError(err);
  }
  try {
    // setBackend resolves false (after logging) when the backend's initialisation fails.
    if (!(await tf.setBackend(tfName))) return `tf.setBackend("${tfName}") failed to initialise it`;
    await tf.ready();
  } catch (err) {
    return errorMessage(err);
  }
  if (name === "tensorflow-gpu" && !hasGpu()) return "@tensorflow/tfjs-node-gpu loaded but TensorFlow sees no GPU";
  return undefined;
}

function describeLoadError(err: unknown): string {
  const code = (err as { code?: string } | null)?.code;
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
    const pkg = /'(@tensorflow\/[^'/]+)/.exec(errorMessage(err))?.[1];
    return `${pkg ?? "package"} is not installed (optional dependency; its install script needs to download libtensorflow)`;
  }
  return errorMessage(err).split("\n")[0] ?? String(err);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * tfjs-node-gpu falls back to the CPU inside libtensorflow when CUDA is missing;
 * only then is `auto` better served by trying the plain native package.
 */
function hasGpu(): boolean {
  return (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice !== false;
}

/** Facts worth a line in the log next to the backend's name. */
function backendDetails(name: BackendName): Record<string, unknown> {
  if (name !== "wasm") return {};
  return {
    simd: tf.env().getBool("WASM_HAS_SIMD_SUPPORT"),
    multithread: tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT"),
  };
}
