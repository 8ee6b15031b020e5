// Runs the `resnet-finetune` command line from the sources in a real child process, as a user would.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(...args: string[]): Promise<CliRun> {
  return runCliWithEnv(args, {});
}

/** Like runCli, with extra environment variables (on top of TFJS_BACKEND=wasm). */
export function runCliWithEnv(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, TFJS_BACKEND: "wasm", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A failed run: exit code 2 and exactly one JSON line with the error code on stderr, no stack trace. */
export function assertCliError(run: CliRun, code: string): { message: string; details: unknown } {
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stdout, "");
  const lines = run.stderr.trim().split("\n");
  assert.equal(lines.length, 1, run.stderr);
  const { error } = JSON.parse(lines[0]);
  assert.equal(error.code, code);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
  return error;
}
