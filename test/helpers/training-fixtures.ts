// A stored dataset of generated images and a small training spec, for the
// worker tests: 3 classes x `perClass` PNGs at 32 px, ingested as an upload is.
import fs from "node:fs/promises";
import path from "node:path";
import type { Config } from "../../src/config.js";
import type { Storage } from "../../src/storage/storage.js";
import { ingestDataset } from "../../src/datasets/dataset-ingest.js";
import type { DatasetRecord } from "../../src/datasets/dataset-store.js";
import { JOB_SPEC_DEFAULTS, type JobSpec } from "../../src/jobs/job-spec.js";
import { classFolders, makeZip } from "./dataset-archives.js";

export const THREE_CLASSES = ["cat", "dog", "fox"];

export async function datasetZip(perClass = 6): Promise<Buffer> {
  return makeZip(await classFolders(THREE_CLASSES, perClass));
}

export async function storeDataset(storage: Storage, config: Config, tenant: string, perClass = 6): Promise<DatasetRecord> {
  const scratch = await storage.scratchDir("test-dataset");
  try {
    const upload = path.join(scratch, "upload");
    await fs.writeFile(upload, await datasetZip(perClass));
    return await ingestDataset({ storage, config, tenant, name: "generated", upload, scratch });
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Small and fast: 32 px, batches of 4, a tiny head, 3 epochs, random base weights. */
export function smallSpec(datasetId: string, overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    ...JOB_SPEC_DEFAULTS,
    datasetId,
    baseWeights: "none",
    unfrozenLayers: 3,
    epochs: 3,
    batchSize: 4,
    imageSize: 32,
    validationSplit: 0.34,
    head: { pooling: "avg", denseUnits: 8, dropout: 0.1 },
    ...overrides,
  };
}
