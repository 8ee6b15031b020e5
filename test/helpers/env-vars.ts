// The environment variables the code reads: every name loadConfig() asks for
// (recorded through a Proxy, so the list cannot drift from config.ts) plus any
// `process.env.NAME` read directly in src/.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { loadConfig } from "../../src/config.js";

const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;
/** The operating system's variables, read (e.g. to find redis-server) but not the service's configuration. */
const SYSTEM_VARS = new Set(["PATH"]);

/** Names loadConfig() reads. */
export function configEnvVars(): Set<string> {
  const seen = new Set<string>();
  const recorder = new Proxy({} as Record<string, string | undefined>, {
    get(_target, key) {
      if (typeof key === "string" && ENV_NAME.test(key)) seen.add(key);
      return undefined;
    },
  });
  loadConfig(recorder);
  return seen;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Names loadConfig() reads plus those read as process.env.NAME anywhere in src/. */
export function envVarsReadByCode(srcDir = "src"): Set<string> {
  const names = configEnvVars();
  for (const file of sourceFiles(srcDir)) {
    for (const m of readFileSync(file, "utf8").matchAll(/process\.env(?:\.([A-Z][A-Z0-9_]*)|\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\])/g)) {
      const name = m[1] ?? m[2];
      if (!SYSTEM_VARS.has(name)) names.add(name);
    }
  }
  return names;
}
