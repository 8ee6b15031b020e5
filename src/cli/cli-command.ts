// What a command of the `resnet-finetune` command line is, and the argument parsing they share.
import { parseArgs } from "node:util";
import { AppError } from "../errors.js";

export interface CliResult {
  /** Printed to stdout as JSON. */
  output: unknown;
  /** 0 unless the command says otherwise (inspect-weights: 2 when the file is not usable). */
  exitCode?: number;
}

export interface CliCommand {
  name: string;
  /** One line, e.g. "summary [--image-size N] [--unfrozen-layers N]". */
  usage: string;
  description: string;
  /** The arguments after the command name. Throws AppError for bad ones. */
  run(args: string[]): Promise<CliResult>;
}

export type CliOptions = Record<string, { type: "string" | "boolean" }>;

/** node's parseArgs, strict, with its errors turned into VALIDATION_FAILED naming the command's usage. */
export function parseCommandArgs<O extends CliOptions>(command: Pick<CliCommand, "usage">, args: string[], options: O, positionals = 0) {
  try {
    const parsed = parseArgs({ args, options, strict: true, allowPositionals: positionals > 0 });
    if (parsed.positionals.length !== positionals) {
      throw new Error(`expected ${positionals} argument(s), got ${parsed.positionals.length}`);
    }
    return parsed;
  } catch (err) {
    throw new AppError("VALIDATION_FAILED", `${(err as Error).message}; usage: ${command.usage}`, { usage: command.usage });
  }
}

/** A whole non-negative number given on the command line, or `fallback` when the option is absent. */
export function integerOption(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) {
    throw new AppError("VALIDATION_FAILED", `--${name} must be a whole number, got ${JSON.stringify(raw)}`, { option: name, value: raw });
  }
  return Number(raw);
}
