// `npm start`: compiles src/ to dist/ when dist/ is missing or older than the
// sources (tsc comes with `npm install`), then runs dist/start.js.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const entry = path.join(root, "dist", "start.js");

function newestMtime(target) {
  const s = statSync(target);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(target).map((name) => newestMtime(path.join(target, name))));
}

const sources = [path.join(root, "src"), path.join(root, "tsconfig.json"), path.join(root, "tsconfig.build.json")];
const stale = !existsSync(entry) || Math.max(...sources.map(newestMtime)) > statSync(entry).mtimeMs;
if (stale && existsSync(path.join(root, "src"))) {
  console.log("[start] compiling src/ to dist/ ...");
  const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
  const result = spawnSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json")], { stdio: "inherit", cwd: root });
  if (result.status !== 0) {
    console.error("[start] the build failed (see above); run `npm install` first if typescript is missing");
    process.exit(1);
  }
}
await import(pathToFileURL(entry).href);
