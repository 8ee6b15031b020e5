// The commands of the `resnet-finetune` command line: one file per command, listed here.
import type { CliCommand } from "./cli-command.js";
import { inspectWeightsCommand } from "./inspect-weights-command.js";
import { summaryCommand } from "./summary-command.js";
import { datasetsUploadCommand } from "./datasets-upload-command.js";
import { jobsSubmitCommand } from "./jobs-submit-command.js";
import { jobsWatchCommand } from "./jobs-watch-command.js";
import { modelsDownloadCommand } from "./models-download-command.js";

/** Names of one word, or two (`datasets upload`) for the commands that talk to a running service. */
export const COMMANDS: readonly CliCommand[] = [
  summaryCommand,
  inspectWeightsCommand,
  datasetsUploadCommand,
  jobsSubmitCommand,
  jobsWatchCommand,
  modelsDownloadCommand,
];
