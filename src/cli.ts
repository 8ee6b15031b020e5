#!/usr/bin/env node
// Entry point of the `resnet-finetune` command line: runs one command of src/cli/commands.ts and prints
// its result as JSON. Errors are one JSON line on stderr, exit code 2 for bad input, 1 otherwise.
import { COMMANDS } from "./cli/commands.js";
import { ConfigError } from "./config.js";
import { AppError, isAppError } from "./errors.js";
import { ApiCallError } from "./cli/api-call.js";

function usage() {
  return { usage: "resnet-finetune <command> [options]", commands: COMMANDS.map(({ usage, description }) => ({ usage, description })) };
}

async function main(argv: string[]): Promise<number> {
  const [name] = argv;
  if (name === "help" || name === "--help" || name === "-h") {
    console.log(JSON.stringify(usage(), null, 2));
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === argv.slice(0, c.name.split(" ").length).join(" "));
  if (!command) {
    const given = name === undefined ? "no command given" : `unknown command ${JSON.stringify(name)}`;
    throw new AppError("VALIDATION_FAILED", `${given}; commands: ${COMMANDS.map((c) => c.name).join(", ")}`, usage());
  }
  const { output, exitCode = 0 } = await command.run(argv.slice(command.name.split(" ").length));
  console.log(JSON.stringify(output, null, 2));
  return exitCode;
}

function errorLine(err: unknown): { line: string; exitCode: number } {
  if (err instanceof ApiCallError) return { line: JSON.stringify({ error: err.body }), exitCode: err.exitCode };
  if (isAppError(err)) return { line: JSON.stringify({ error: err.toJSON() }), exitCode: err.isClientError ? 2 : 1 };
  if (err instanceof ConfigError) return errorLine(new AppError("VALIDATION_FAILED", err.message, { source: "environment" }));
  const message = err instanceof Error ? err.message : String(err);
  return { line: JSON.stringify({ error: { code: "INTERNAL", message, details: null } }), exitCode: 1 };
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const { line, exitCode } = errorLine(err);
    console.error(line);
    process.exitCode = exitCode;
  },
);
