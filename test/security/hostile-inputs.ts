// Builders of hostile inputs, as an attacker with one valid API key would send them: each returns the
// bytes (or writes the file) and says what it attacks. Used by test/security/*.test.ts and by the
// hostile-input benchmark, so keep them free of test assertions.
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { buildResNet50 } from "../../src/network/resnet50.js";
import { createH5, writeStringList } from "../../src/weight-files/h5-file.js";
import { kerasLayersOf } from "../../src/weight-files/keras-h5.js";
import { classFolders, makeImage, makeTgz, makeZip, type ArchiveEntry } from "../helpers/dataset-archives.js";

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "hostile-h5");

/** The bytes host files hold in tests, so a test can look for them in anything a model received. */
export const HOST_MARKER = Buffer.from("HOSTFILEHOSTFILE", "latin1");

/** `bytes` bytes of HOST_MARKER repeated: the content of a "host file" an attack tries to read. */
export function hostMarkerBytes(bytes = 4096): Buffer {
  return Buffer.alloc(bytes, HOST_MARKER);
}

// ---- 1. HDF5 weights files that read bytes from outside themselves ----
// All are Keras 2 weights layouts with one Dense layer "dense" (kernel 4x2, bias 2) whose kernel is
// not stored in the file: the API must refuse them at upload and the engine again when it opens them.

/** The external-storage fixture's file name: a placeholder the builder overwrites (see make-fixtures.py). */
const EXTERNAL_NAME_PLACEHOLDER = Buffer.from(`/${"X".repeat(254)}`, "latin1");

/** A weights file whose kernel's bytes are read from `hostPath` (HDF5 external storage), e.g. /proc/self/environ. */
export async function h5ExternalStorage(hostPath: string): Promise<Buffer> {
  if (Buffer.byteLength(hostPath) >= EXTERNAL_NAME_PLACEHOLDER.length) throw new Error(`host path too long: ${hostPath}`);
  const bytes = await fs.readFile(path.join(FIXTURES, "external-storage.h5"));
  const at = bytes.indexOf(EXTERNAL_NAME_PLACEHOLDER);
  if (at < 0) throw new Error("external-storage.h5 has no file-name placeholder");
  const name = Buffer.alloc(EXTERNAL_NAME_PLACEHOLDER.length); // NUL-padded: HDF5 reads the name up to the first NUL
  name.write(hostPath, "latin1");
  name.copy(bytes, at);
  return bytes;
}

/**
 * A weights file whose kernel is a virtual dataset mapped from dataset "s" of `secret.h5` beside it
 * (HDF5 resolves the relative name against the file's own folder), e.g. another tenant's upload.
 */
export async function h5VirtualDataset(): Promise<Buffer> {
  return fs.readFile(path.join(FIXTURES, "virtual-dataset.h5"));
}

/** The HDF5 file a virtual dataset or an external link reads: dataset "s" (4x2 float32) of marker bytes. */
export async function writeH5Secret(filePath: string): Promise<void> {
  const file = await createH5(filePath);
  try {
    const data = new Float32Array(new Uint8Array(hostMarkerBytes(32)).buffer);
    file.create_dataset({ name: "s", data, shape: [4, 2], dtype: "<f" });
  } finally {
    file.close();
  }
}

function writeDenseLayout(file: Awaited<ReturnType<typeof createH5>>): ReturnType<Awaited<ReturnType<typeof createH5>>["create_group"]> {
  file.create_attribute("layer_names", ["dense"], [1], "A6");
  const group = file.create_group("dense");
  group.create_attribute("weight_names", ["dense/kernel:0", "dense/bias:0"], [2], "A15");
  const inner = group.create_group("dense");
  inner.create_dataset({ name: "bias:0", data: new Float32Array(2), shape: [2], dtype: "<f" });
  return inner;
}

/** A weights file whose kernel is an external link to dataset `dataset` of the HDF5 file `target`. */
export async function writeH5ExternalLink(filePath: string, target: string, dataset = "s"): Promise<void> {
  const file = await createH5(filePath);
  try {
    writeDenseLayout(file).create_external_link(target, dataset, "kernel:0");
  } finally {
    file.close();
  }
}

/** A weights file whose layer group is an external link to a group of another file (layer_names points into it). */
export async function writeH5ExternalGroupLink(filePath: string, target: string): Promise<void> {
  const file = await createH5(filePath);
  try {
    file.create_attribute("layer_names", ["dense"], [1], "A6");
    file.create_external_link(target, "/dense", "dense");
  } finally {
    file.close();
  }
}

/** A weights file whose kernel is a soft link to a dataset inside the same file (allowed: it never leaves the file). */
export async function writeH5InternalSoftLink(filePath: string): Promise<void> {
  const file = await createH5(filePath);
  try {
    const inner = writeDenseLayout(file);
    file.create_dataset({ name: "stored_kernel", data: new Float32Array(8).fill(0.25), shape: [4, 2], dtype: "<f" });
    inner.create_soft_link("/stored_kernel", "kernel:0");
  } finally {
    file.close();
  }
}

/**
 * A ResNet-50-shaped Keras 2 weights file (every layer and shape right, so it passes the ResNet-50 check)
 * whose `conv1_conv` kernel is an external link to dataset `dataset` of the HDF5 file `target` (another
 * tenant's upload, say): the attack as a client would mount it. About 94 MB; a second to write.
 */
export async function writeResNetWithExternalLink(
  filePath: string,
  target: string,
  dataset = "/conv1_conv/conv1_conv/kernel:0",
): Promise<void> {
  const model = buildResNet50({ imageSize: 32, seed: 1 });
  const layers = kerasLayersOf(model);
  model.dispose();
  const file = await createH5(filePath);
  try {
    writeStringList(
      file,
      "layer_names",
      layers.map((l) => l.name),
    );
    for (const layer of layers) {
      const group = file.create_group(layer.name);
      writeStringList(
        group,
        "weight_names",
        layer.weights.map((w) => w.name),
      );
      if (layer.weights.length === 0) continue;
      const inner = group.create_group(layer.name);
      for (const weight of layer.weights) {
        const name = weight.name.slice(weight.name.lastIndexOf("/") + 1);
        if (weight.name === "conv1_conv/kernel:0") inner.create_external_link(target, dataset, name);
        else inner.create_dataset({ name, data: weight.data, shape: weight.shape, dtype: "<f" });
      }
    }
  } finally {
    file.close();
  }
}

// ---- dataset archives (their tests are test/api/datasets-limits.test.ts) ----

/** A zip of two good classes plus an entry named `../<name>` (forged in the finished bytes: yazl refuses such names). */
export async function zipPathEscape(name = "x.png"): Promise<Buffer> {
  const forged = `../${name}`;
  const placeholder = `qq/${name}`;
  return makeZip([...(await classFolders(["a", "b"], 2)), { path: placeholder, data: await makeImage(1) }], { [placeholder]: forged });
}

/** A zip of two good classes plus a symbolic link to `target`. */
export async function zipSymlink(target = "/etc/passwd"): Promise<Buffer> {
  return makeZip([...(await classFolders(["a", "b"], 2)), { path: "a/link.png", type: "symlink", linkTarget: target }]);
}

/** A zip (or tar.gz) of two good classes plus `bytes` zeros in one entry: ~1000:1, refused by MAX_COMPRESSION_RATIO. */
export async function archiveBomb(bytes = 256 * 1024 ** 2, kind: "zip" | "tgz" = "zip"): Promise<Buffer> {
  const entries = [...(await classFolders(["a", "b"], 2)), { path: "a/zeros.png", data: Buffer.alloc(bytes) }];
  return kind === "zip" ? makeZip(entries) : makeTgz(entries);
}

/** A zip of two good classes with a zip inside (by content, under an image's name). */
export async function zipNested(): Promise<Buffer> {
  const good = await classFolders(["a", "b"], 2);
  return makeZip([...good, { path: "a/disguised.png", data: await makeZip(good) }]);
}

// ---- 2. labels.csv ----

/**
 * A tar.gz of two classes of images and a `labels.csv` of about `csvBytes` bytes of short distinct
 * rows naming missing files: it compresses like real text (well under MAX_COMPRESSION_RATIO) and
 * costs a row object, a map entry and a `rejected` entry per row once parsed.
 */
export async function labelsCsvBomb(csvBytes: number): Promise<Buffer> {
  const images = await classFolders(["a", "b"], 2);
  const flat: ArchiveEntry[] = images.map((e) => ({ path: e.path.replace("/", "_"), data: e.data }));
  const lines = ["path,label", ...flat.map((e) => `${e.path},${e.path.split("_")[0]}`)];
  let size = lines.reduce((n, l) => n + l.length + 1, 0);
  for (let i = 0; size < csvBytes; i++) {
    const row = `${i},a`;
    lines.push(row);
    size += row.length + 1;
  }
  return makeTgz([{ path: "labels.csv", data: Buffer.from(`${lines.join("\n")}\n`) }, ...flat]);
}

// ---- 3. weights zips and predict images ----

/**
 * A zip holding a `model.json` that inflates to `bytes` bytes (spaces, then a valid-looking model):
 * the model.json deflate bomb. Deflate caps at ~1030:1, so 1 GB costs ~1 MB of upload.
 */
export async function weightsZipModelJsonBomb(bytes: number): Promise<Buffer> {
  const tail = Buffer.from('{"modelTopology":{},"weightsManifest":[]}');
  const json = Buffer.alloc(bytes, " ");
  tail.copy(json, bytes - tail.length);
  return makeZip([{ path: "model.json", data: json }]);
}

/**
 * A zip whose `model.json` is `bytes` bytes of JSON around a long string of random hex: it compresses
 * only about 2:1 (under any ratio limit), so only a size cap on model.json refuses it.
 */
export async function weightsZipLargeModelJson(bytes: number): Promise<Buffer> {
  const head = '{"modelTopology":{"padding":"';
  const tail = '"},"weightsManifest":[]}';
  const hex = randomBytes(Math.ceil((bytes - head.length - tail.length) / 2))
    .toString("hex")
    .slice(0, bytes - head.length - tail.length);
  return makeZip([{ path: "model.json", data: Buffer.from(head + hex + tail) }]);
}

/** A valid-looking TF.js model zip whose single shard inflates to `bytes` bytes of zeros (declared in the manifest). */
export async function weightsZipShardBomb(bytes: number): Promise<Buffer> {
  const floats = Math.floor(bytes / 4);
  const modelJson = JSON.stringify({
    modelTopology: { class_name: "Model", config: { layers: [{ class_name: "Dense", config: { name: "dense" } }] } },
    weightsManifest: [{ paths: ["group1-shard1of1.bin"], weights: [{ name: "dense/kernel", shape: [floats], dtype: "float32" }] }],
  });
  return makeZip([
    { path: "model.json", data: Buffer.from(modelJson) },
    { path: "group1-shard1of1.bin", data: Buffer.alloc(floats * 4) },
  ]);
}

/** A PNG of `width` x `height` RGBA pixels of one colour: ~0.5 MB at 12000 x 12000, 576 MB once decoded. */
export async function hugePng(width = 12000, height = 12000): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 1 } } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/** `count` small distinct PNGs (predict accepts up to 32 per request). */
export async function smallImages(count: number, size = 32): Promise<Buffer[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => makeImage(i + 1, "png", size)));
}

// ---- 6. class names that are Object.prototype's keys ----

/** Legitimate class names that break code using `{}` as a dictionary. */
export const PROTOTYPE_CLASS_NAMES = ["constructor", "__proto__", "toString", "hasOwnProperty"];

/** A zip of class folders named after Object.prototype's keys, `perClass` images each. */
export async function prototypeClassesZip(perClass = 3, classes = PROTOTYPE_CLASS_NAMES): Promise<Buffer> {
  return makeZip(await classFolders(classes, perClass));
}
