// `inspect-weights FILE`: which format a weights file is in, which layers it holds, and whether it can
// serve as ResNet-50 base weights (exit 0) or not (exit 2, with what does not fit).
import { selectBackend } from "../backend/select-backend.js";
import { loadConfig } from "../config.js";
import { inspectWeightsFile } from "../weight-files/index.js";
import { parseCommandArgs, type CliCommand } from "./cli-command.js";

export const inspectWeightsCommand: CliCommand = {
  name: "inspect-weights",
  usage: "inspect-weights FILE",
  description:
    "check a weights file (Keras .h5, Keras 3 .weights.h5, TF.js directory, model.json or zip) against ResNet-50; exit 2 when it cannot serve as base weights",
  async run(args) {
    const { positionals } = parseCommandArgs(this, args, {}, 1);
    await selectBackend(loadConfig().tfjsBackend);
    const report = await inspectWeightsFile(positionals[0]);
    return { output: report, exitCode: report.usable ? 0 : 2 };
  },
};
