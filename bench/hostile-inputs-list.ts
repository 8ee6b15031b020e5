// The hostile inputs built by test/security/hostile-inputs.ts (HDF5 weights
// reading host files, labels.csv and weights-zip bombs, the dataset archives
// of the limit tests, a huge predict image, prototype class names), as
// benchmark inputs.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { multipartBody } from "../test/helpers/dataset-archives.js";
import {
  archiveBomb,
  h5ExternalStorage,
  h5VirtualDataset,
  hugePng,
  labelsCsvBomb,
  prototypeClassesZip,
  weightsZipLargeModelJson,
  weightsZipModelJsonBomb,
  weightsZipShardBomb,
  writeH5ExternalLink,
  writeH5Secret,
  writeResNetWithExternalLink,
  zipNested,
  zipPathEscape,
  zipSymlink,
} from "../test/security/hostile-inputs.js";
import type { HostileContext, HostileInput, Outcome } from "./hostile-input.js";

const MB = 1_000_000;

async function post(ctx: HostileContext, url: string, file: Buffer, filename: string, field = "file"): Promise<Outcome> {
  const body = multipartBody(file, {}, filename, field);
  const res = await fetch(`${ctx.base}${url}`, { method: "POST", headers: { ...ctx.headers, ...body.headers }, body: body.payload });
  const text = await res.text();
  return { status: res.status, code: /"code":"([A-Z_]+)"/.exec(text)?.[1] };
}

/** A weights file written by `write(file, secret)` next to an HDF5 "secret" it links to, read back as bytes. */
async function linkedH5(write: (file: string, secret: string) => Promise<void>): Promise<Buffer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rf-hostile-h5-"));
  try {
    const secret = path.join(dir, "secret.h5");
    await writeH5Secret(secret);
    const file = path.join(dir, "weights.h5");
    await write(file, secret);
    return await fs.readFile(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function hostileInputsOfInputsBranch(): Promise<HostileInput[]> {
  const weights = (ctx: HostileContext, file: Buffer, name: string) => post(ctx, "/v1/weights", file, name);
  const dataset = (ctx: HostileContext, file: Buffer, name: string) => post(ctx, "/v1/datasets", file, name);
  // The ResNet-50-shaped file is about 94 MB: built once, sent four times.
  let resnet: Promise<Buffer> | undefined;
  return [
    { name: "HDF5 weights with external storage on /proc/self/environ", item: 1, run: async (ctx) => weights(ctx, await h5ExternalStorage("/proc/self/environ"), "w.h5") },
    { name: "HDF5 weights with a virtual dataset", item: 1, run: async (ctx) => weights(ctx, await h5VirtualDataset(), "w.h5") },
    { name: "HDF5 weights with an external link", item: 1, run: async (ctx) => weights(ctx, await linkedH5((f, s) => writeH5ExternalLink(f, s)), "w.h5") },
    {
      name: "ResNet-50-shaped HDF5 weights whose conv1 kernel is an external link",
      item: 1,
      run: async (ctx) => weights(ctx, await (resnet ??= linkedH5((f, s) => writeResNetWithExternalLink(f, s, "s"))), "w.h5"),
    },
    { name: "80 MB labels.csv in a tar.gz", item: 2, run: async (ctx) => dataset(ctx, await labelsCsvBomb(80 * MB), "d.tgz") },
    { name: "weights zip: 1 GB model.json deflate bomb", item: 3, run: async (ctx) => weights(ctx, await weightsZipModelJsonBomb(1000 * MB), "w.zip") },
    { name: "weights zip: 64 MB model.json that compresses 2:1", item: 3, run: async (ctx) => weights(ctx, await weightsZipLargeModelJson(64 * MB), "w.zip") },
    { name: "weights zip: 1 GB shard deflate bomb", item: 3, run: async (ctx) => weights(ctx, await weightsZipShardBomb(1000 * MB), "w.zip") },
    {
      name: "predict with a 12000x12000 PNG",
      item: 3,
      async run(ctx) {
        const modelId = await ctx.model();
        if (!modelId) return { status: "skipped", code: "no trained model" };
        return post(ctx, `/v1/models/${modelId}/predict`, await hugePng(), "huge.png", "image");
      },
    },
    { name: "dataset zip bomb (256 MiB of zeros)", item: 7, run: async (ctx) => dataset(ctx, await archiveBomb(), "d.zip") },
    { name: "dataset tar.gz bomb (256 MiB of zeros)", item: 7, run: async (ctx) => dataset(ctx, await archiveBomb(256 * 1024 ** 2, "tgz"), "d.tgz") },
    { name: "dataset zip with a ../ path", item: 7, run: async (ctx) => dataset(ctx, await zipPathEscape(), "d.zip") },
    { name: "dataset zip with a symbolic link to /etc/passwd", item: 7, run: async (ctx) => dataset(ctx, await zipSymlink(), "d.zip") },
    { name: "dataset zip with a zip inside", item: 7, run: async (ctx) => dataset(ctx, await zipNested(), "d.zip") },
    { name: "dataset with classes constructor, __proto__, toString, hasOwnProperty", item: 6, run: async (ctx) => dataset(ctx, await prototypeClassesZip(), "d.zip") },
  ];
}
