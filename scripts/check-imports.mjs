// The one-way import rule of src/ (docs/architecture.md explains it): which
// folder may import which, and where HTTP and Redis packages may appear.
// Fails, listing each forbidden import, when a file breaks it. Run by `npm test`.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * What other folders may use of backend/: selection, threads, and the speed-ups' one entry (index.ts);
 * their kernels, heap access and helper thread stay behind it.
 */
const BACKEND_API = ["backend/select-backend.ts", "backend/module-thread.ts", "backend/wasm-speedups/index.ts"];

/** What api/ and worker/ both reach: the domain folders below them. */
const ENTRY_POINT_FOLDERS = [
  "jobs",
  "datasets",
  "storage",
  "training",
  "network",
  "weight-files",
  "trained-models",
  "base-weights",
  "webhooks",
  "engine",
];

/**
 * Folder -> what its files may import from other folders of src/: a folder, or
 * one file of a folder. Files at the top of src/ (entry points, app.ts, and the
 * config, errors and log modules everyone may use) are not constrained.
 * A folder missing here may import nothing but the top-level modules.
 */
export const ALLOWED = {
  // The API selects a backend but never installs the training speed-ups (backend/wasm-speedups/).
  api: [...ENTRY_POINT_FOLDERS, "backend/select-backend.ts"],
  worker: [...ENTRY_POINT_FOLDERS, ...BACKEND_API],
  // The jobs domain checks a spec against datasets and weights; it shares EpochMetrics with training.
  jobs: ["datasets", "storage", "network", "weight-files", "base-weights", "webhooks", "training/epoch-metrics.ts"],
  webhooks: ["jobs"],
  training: ["network", "weight-files", "datasets", "storage", "engine", ...BACKEND_API],
  engine: ["network", ...BACKEND_API],
  "trained-models": ["network", "weight-files", "storage", "engine", "training", "jobs/job-spec.ts"],
  "base-weights": ["storage"],
  datasets: ["storage", "network"],
  network: [],
  // Archive limits are plain checks shared by dataset and TF.js-model archives; formats are read into the network's layers.
  "weight-files": ["network", "datasets/archive-guard.ts"],
  backend: [],
  storage: [],
  client: [],
  cli: ["client", "network", "weight-files", "backend/select-backend.ts"],
  launcher: [],
};

/** Packages that only some folders may import: HTTP in api/, Redis where jobs are. */
export const PACKAGES = [
  { pattern: /^(fastify|@fastify\/)/, what: "HTTP", folders: ["api"] },
  { pattern: /^(ioredis|bullmq|@bull-board\/)/, what: "Redis", folders: ["api", "jobs", "webhooks", "worker"] },
];

const SPECIFIER =
  /(?:^|[\s;])(?:import|export)\s[^"'`;]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|^\s*import\s*["']([^"']+)["']/gm;

function sourceFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return /\.(ts|mts|tsx)$/.test(name) && !name.endsWith(".d.ts") ? [full] : [];
  });
}

/** Forbidden imports under `srcDir`, as "file: import (reason)" lines. */
export function checkImports(srcDir, allowed = ALLOWED, packages = PACKAGES) {
  const problems = [];
  for (const file of sourceFiles(srcDir)) {
    const rel = path.relative(srcDir, file).split(path.sep).join("/");
    const folder = rel.includes("/") ? rel.split("/")[0] : null;
    if (folder === null) continue;
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(SPECIFIER)) {
      const specifier = match[1] ?? match[2] ?? match[3];
      if (!specifier.startsWith(".")) {
        const rule = packages.find((p) => p.pattern.test(specifier));
        if (rule && !rule.folders.includes(folder))
          problems.push(`${rel}: "${specifier}" (${rule.what} packages only in ${rule.folders.join(", ")})`);
        continue;
      }
      const target = path
        .relative(srcDir, path.resolve(path.dirname(file), specifier))
        .split(path.sep)
        .join("/")
        .replace(/\.js$/, ".ts");
      if (target.startsWith("..") || !target.includes("/")) continue;
      const targetFolder = target.split("/")[0];
      if (targetFolder === folder) continue;
      const ok = (allowed[folder] ?? []).some((entry) => entry === targetFolder || entry === target);
      if (!ok) problems.push(`${rel}: "${specifier}" (${folder}/ may not import ${targetFolder}/)`);
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const srcDir = path.resolve(process.argv[2] ?? "src");
  const problems = checkImports(srcDir);
  if (problems.length > 0) {
    console.error(`forbidden imports (rule in scripts/check-imports.mjs, explained in docs/architecture.md):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log("imports follow the one-way rule");
}
