// The hostile inputs built by test/security/hostile-inputs.ts (HDF5 weights
// reading host files, labels.csv and weights-zip bombs, the dataset archives
// of the limit tests, a huge predict image, prototype class names), as
// benchmark inputs.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
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
import { upload, type HostileContext, type HostileInput } from "./hostile-input.js";

const MB = 1_000_000;

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

const predictUrl = async (ctx: HostileContext) => {
  const modelId = await ctx.model();
  return modelId ? `/v1/models/${modelId}/predict` : undefined;
};

export async function hostileInputsOfInputsBranch(): Promise<HostileInput<Buffer>[]> {
  const W = "/v1/weights";
  const D = "/v1/datasets";
  return [
    upload("HDF5 weights with external storage on /proc/self/environ", "host files", W, "w.h5", () =>
      h5ExternalStorage("/proc/self/environ"),
    ),
    upload("HDF5 weights with a virtual dataset", "host files", W, "w.h5", () => h5VirtualDataset()),
    upload("HDF5 weights with an external link", "host files", W, "w.h5", () => linkedH5((f, s) => writeH5ExternalLink(f, s))),
    upload("ResNet-50-shaped HDF5 weights whose conv1 kernel is an external link", "host files", W, "w.h5", () =>
      linkedH5((f, s) => writeResNetWithExternalLink(f, s, "s")),
    ),
    upload("80 MB labels.csv in a tar.gz", "memory: labels.csv", D, "d.tgz", () => labelsCsvBomb(80 * MB)),
    upload("weights zip: 1 GB model.json deflate bomb", "memory: archives and images", W, "w.zip", () =>
      weightsZipModelJsonBomb(1000 * MB),
    ),
    upload("weights zip: 64 MB model.json that compresses 2:1", "memory: archives and images", W, "w.zip", () =>
      weightsZipLargeModelJson(64 * MB),
    ),
    upload("weights zip: 1 GB shard deflate bomb", "memory: archives and images", W, "w.zip", () => weightsZipShardBomb(1000 * MB)),
    upload("predict with a 12000x12000 PNG", "memory: archives and images", predictUrl, "huge.png", () => hugePng(), "image"),
    upload("dataset zip bomb (256 MiB of zeros)", "disk, quotas and time", D, "d.zip", () => archiveBomb()),
    upload("dataset tar.gz bomb (256 MiB of zeros)", "disk, quotas and time", D, "d.tgz", () => archiveBomb(256 * 1024 ** 2, "tgz")),
    upload("dataset zip with a ../ path", "disk, quotas and time", D, "d.zip", () => zipPathEscape()),
    upload("dataset zip with a symbolic link to /etc/passwd", "disk, quotas and time", D, "d.zip", () => zipSymlink()),
    upload("dataset zip with a zip inside", "disk, quotas and time", D, "d.zip", () => zipNested()),
    upload("dataset with classes constructor, __proto__, toString, hasOwnProperty", "prototype keys", D, "d.zip", () =>
      prototypeClassesZip(),
    ),
  ];
}
