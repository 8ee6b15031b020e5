// The commands of the `resnet-finetune` command line: one file per command, listed here.
import type { CliCommand } from "./cli-command.js";
import { inspectWeightsCommand } from "./inspect-weights-command.js";
import { summaryCommand } from "./summary-command.js";

export const COMMANDS: readonly CliCommand[] = [summaryCommand, inspectWeightsCommand];
