// `jobs submit --dataset ID [--spec FILE]`: queues a job; the spec file holds
// any JobSpec fields (the tutorial's defaults fill the rest), --dataset wins.
import fs from "node:fs/promises";
import { AppError } from "../errors.js";
import { createApiClient, type JobSpec } from "../client/api-client.js";
import { parseCommandArgs, type CliCommand } from "./cli-command.js";
import { CONNECTION_OPTIONS, connectionFrom, reach, unwrap } from "./api-call.js";

async function readSpec(file: string | undefined): Promise<Partial<JobSpec>> {
  if (file === undefined) return {};
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch {
    throw new AppError("VALIDATION_FAILED", `cannot read the spec file ${file}`, { file });
  }
  try {
    const spec = JSON.parse(text) as unknown;
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw new Error("not an object");
    return spec as Partial<JobSpec>;
  } catch (err) {
    throw new AppError("VALIDATION_FAILED", `the spec file ${file} is not a JSON object: ${(err as Error).message}`, { file });
  }
}

export const jobsSubmitCommand: CliCommand = {
  name: "jobs submit",
  usage: "jobs submit --dataset ID [--spec FILE.json] [--url URL] [--key KEY]",
  description: "queue a fine-tuning job on a dataset; prints the job (its id is what jobs watch takes)",
  async run(args) {
    const { values } = parseCommandArgs(this, args, { ...CONNECTION_OPTIONS, dataset: { type: "string" }, spec: { type: "string" } });
    const spec = await readSpec(values.spec);
    const datasetId = values.dataset ?? spec.datasetId;
    if (!datasetId)
      throw new AppError("VALIDATION_FAILED", `--dataset is required (or datasetId in the spec file); usage: ${this.usage}`, {
        usage: this.usage,
      });
    const connection = connectionFrom(values);
    const client = createApiClient(connection);
    const job = await reach(connection, async () => unwrap(await client.POST("/v1/jobs", { body: { ...spec, datasetId } as JobSpec })));
    return { output: job };
  },
};
