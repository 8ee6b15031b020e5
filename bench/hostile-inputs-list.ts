// The hostile inputs built by test/security/hostile-inputs.ts and the dataset
// tests' archive builders (HDF5 weights reading host files, labels.csv and
// weights-zip bombs, archive bombs and path escapes, a huge predict image,
// prototype class names), as benchmark inputs.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { makeImage, makeTgz, makeZip, multipartBody } from "../test/helpers/dataset-archives.js";
import {
  h5ExternalStorage,
  h5VirtualDataset,
  hugePng,
  labelsCsvBomb,
  prototypeClassesZip,
  weightsZipModelJsonBomb,
  weightsZipShardBomb,
  writeH5ExternalLink,
  writeH5Secret,
} from "../test/security/hostile-inputs.js";
import type { HostileContext, HostileInput, Outcome } from "./hostile-input.js";

const MB = 1_000_000;

async function upload(ctx: HostileContext, route: "/v1/datasets" | "/v1/weights", file: Buffer, filename: string): Promise<Outcome> {
  const body = multipartBody(file, {}, filename);
  const res = await fetch(`${ctx.base}${route}`, { method: "POST", headers: { ...ctx.headers, ...body.headers }, body: body.payload });
  const text = await res.text();
  return { status: res.status, code: /"code":"([A-Z_]+)"/.exec(text)?.[1] };
}

/** An external link's target must exist where the link points: a file of marker bytes in a temporary folder. */
async function externalLinkFile(): Promise<Buffer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rf-hostile-h5-"));
  try {
    const secret = path.join(dir, "secret.h5");
    await writeH5Secret(secret);
    const file = path.join(dir, "weights.h5");
    await writeH5ExternalLink(file, secret);
    return await fs.readFile(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function hostileInputsOfInputsBranch(): Promise<HostileInput[]> {
  const png = await makeImage(1);
  return [
    { name: "HDF5 weights with external storage on /proc/self/environ", item: 1, run: async (ctx) => upload(ctx, "/v1/weights", await h5ExternalStorage("/proc/self/environ"), "w.h5") },
    { name: "HDF5 weights with a virtual dataset", item: 1, run: async (ctx) => upload(ctx, "/v1/weights", await h5VirtualDataset(), "w.h5") },
    { name: "HDF5 weights with an external link", item: 1, run: async (ctx) => upload(ctx, "/v1/weights", await externalLinkFile(), "w.h5") },
    { name: "80 MB labels.csv in a tar.gz", item: 2, run: async (ctx) => upload(ctx, "/v1/datasets", await labelsCsvBomb(80 * MB), "d.tgz") },
    { name: "weights zip: 1 GB model.json deflate bomb", item: 3, run: async (ctx) => upload(ctx, "/v1/weights", await weightsZipModelJsonBomb(1000 * MB), "w.zip") },
    { name: "weights zip: 1 GB shard deflate bomb", item: 3, run: async (ctx) => upload(ctx, "/v1/weights", await weightsZipShardBomb(1000 * MB), "w.zip") },
    {
      name: "dataset tar.gz bomb (200 MB of zeros)",
      item: 3,
      run: async (ctx) => upload(ctx, "/v1/datasets", await makeTgz([{ path: "a/0.png", data: png }, { path: "a/zeros.png", data: Buffer.alloc(200 * MB) }]), "d.tgz"),
    },
    {
      name: "dataset zip with a ../ path",
      item: 3,
      run: async (ctx) => upload(ctx, "/v1/datasets", await makeZip([{ path: "a/0.png", data: png }, { path: "qq/x.png", data: png }], { "qq/x.png": "../x.png" }), "d.zip"),
    },
    { name: "dataset with classes constructor, __proto__, toString, hasOwnProperty", item: 6, run: async (ctx) => upload(ctx, "/v1/datasets", await prototypeClassesZip(), "d.zip") },
    {
      name: "predict with a 12000x12000 PNG",
      item: 3,
      async run(ctx) {
        const modelId = await ctx.model();
        if (!modelId) return { status: "skipped", code: "no trained model" };
        const body = multipartBody(await hugePng(), {}, "huge.png", "image");
        const res = await fetch(`${ctx.base}/v1/models/${modelId}/predict`, { method: "POST", headers: { ...ctx.headers, ...body.headers }, body: body.payload });
        const text = await res.text();
        return { status: res.status, code: /"code":"([A-Z_]+)"/.exec(text)?.[1] };
      },
    },
  ];
}
