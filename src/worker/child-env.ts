// The environment a training child gets: an allow-list, so a secret added to the worker's environment
// (tenant API keys, admin keys, tokens) never reaches the process that runs client-supplied data.
import { loadConfig } from "../config.js";

/** What Node, libc and the native libraries of a child use; none of it is a secret. */
const SYSTEM_VARS = [
  "PATH",
  "HOME",
  "USER",
  "TMPDIR",
  "TMP",
  "TEMP",
  "LANG",
  "LANGUAGE",
  "TZ",
  "NODE_ENV",
  "NODE_OPTIONS",
  "UV_THREADPOOL_SIZE",
];
const SYSTEM_PREFIXES = ["LC_", "TF_", "CUDA_", "NVIDIA_", "OMP_"];

/** Settings the service reads that a child has no use for, and any name that looks like a credential. */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/i;

/** The settings loadConfig reads, found by running it on `env`: no second list to keep in step. */
function settingNames(env: NodeJS.ProcessEnv): Set<string> {
  const read = new Set<string>();
  const recorder = new Proxy(env, {
    get(target, name) {
      if (typeof name === "string") read.add(name);
      return target[name as string];
    },
  });
  loadConfig(recorder);
  return read;
}

/**
 * `env` reduced to the service's settings and the system variables, without credentials. REDIS_URL
 * stays (the child reports progress through Redis) even when it carries a password.
 */
export function childEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const settings = settingNames(env);
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const allowed =
      name === "REDIS_URL" ||
      ((settings.has(name) || SYSTEM_VARS.includes(name) || SYSTEM_PREFIXES.some((p) => name.startsWith(p))) && !SECRET_NAME.test(name));
    if (allowed) out[name] = value;
  }
  return out;
}
