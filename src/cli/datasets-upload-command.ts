// `datasets upload DIR|ZIP [--name NAME]`: uploads a dataset archive, zipping
// a directory of <class>/<image> folders on the fly into a temporary file,
// which is streamed (never held in memory).
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import yazl from "yazl";
import { AppError } from "../errors.js";
import { createApiClient } from "../client/api-client.js";
import { parseCommandArgs, type CliCommand } from "./cli-command.js";
import { CONNECTION_OPTIONS, connectionFrom, reach, unwrap } from "./api-call.js";

/** Every regular file under `dir`, relative, sorted; hidden files and folders are left out. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    const relative = path.relative(dir, path.join(entry.parentPath, entry.name));
    if (entry.isFile() && !relative.split(path.sep).some((part) => part.startsWith("."))) out.push(relative);
  }
  return out.sort();
}

async function zipDirectory(dir: string, target: string): Promise<void> {
  const files = await filesUnder(dir);
  if (files.length === 0) throw new AppError("VALIDATION_FAILED", `${dir} holds no files`, { path: dir });
  const zip = new yazl.ZipFile();
  // Images are compressed already: storing them saves time and changes nothing in size.
  for (const file of files) zip.addFile(path.join(dir, file), file.split(path.sep).join("/"), { compress: /\.(csv|txt)$/i.test(file) });
  zip.end();
  await pipeline(zip.outputStream, fs.createWriteStream(target));
}

export const datasetsUploadCommand: CliCommand = {
  name: "datasets upload",
  usage: "datasets upload DIR|ARCHIVE [--name NAME] [--url URL] [--key KEY]",
  description: "upload a dataset: a directory of <class>/<image> folders (zipped on the fly) or a zip/tar(.gz) archive; prints the dataset",
  async run(args) {
    const { values, positionals } = parseCommandArgs(this, args, { ...CONNECTION_OPTIONS, name: { type: "string" } }, 1);
    const source = path.resolve(positionals[0]);
    const stat = await fsp.stat(source).catch(() => null);
    if (!stat) throw new AppError("VALIDATION_FAILED", `${positionals[0]} does not exist`, { path: positionals[0] });
    const connection = connectionFrom(values);
    const scratch = stat.isDirectory() ? await fsp.mkdtemp(path.join(os.tmpdir(), "resnet-finetune-upload-")) : null;
    try {
      const archive = scratch ? path.join(scratch, `${path.basename(source)}.zip`) : source;
      if (scratch) await zipDirectory(source, archive);
      const form = new FormData();
      if (values.name) form.append("name", values.name);
      form.append("file", await fs.openAsBlob(archive), path.basename(archive));
      const client = createApiClient(connection);
      const dataset = await reach(connection, async () =>
        unwrap(await client.POST("/v1/datasets", { body: form as never, bodySerializer: (body) => body as unknown as FormData })),
      );
      return { output: dataset };
    } finally {
      if (scratch) await fsp.rm(scratch, { recursive: true, force: true });
    }
  },
};
