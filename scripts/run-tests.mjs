// Runs the test suite with node's test runner through tsx: every
// test/**/*.test.ts, or the files and folders given as arguments.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";

function collect(target, out) {
  if (statSync(target).isDirectory()) {
    for (const name of readdirSync(target).sort()) collect(path.join(target, name), out);
  } else if (target.endsWith(".test.ts")) {
    out.push(target);
  }
  return out;
}

const targets = process.argv.slice(2);
const files = (targets.length ? targets : ["test"]).flatMap((t) => collect(t, []));
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
// --test-force-exit: a test file whose tests are all done ends even if a stray
// handle (a Redis client closing late) would keep its process alive, so one
// slow teardown can never stall the whole run.
const result = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-force-exit", "--test-reporter=spec", ...files], {
  stdio: "inherit",
  env: { ...process.env, TFJS_BACKEND: process.env.TFJS_BACKEND ?? "wasm", NODE_ENV: "test" },
});
process.exit(result.status ?? 1);
