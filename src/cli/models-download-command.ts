// `models download ID --format keras|tfjs [--out FILE]`: streams a trained
// model's file to disk (a .part file renamed once complete, so a broken
// download never looks finished).
import fs from "node:fs";
import fsp from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { AppError } from "../errors.js";
import { authHeaders } from "../client/api-client.js";
import { parseCommandArgs, type CliCommand } from "./cli-command.js";
import { CONNECTION_OPTIONS, connectionFrom, errorOf, reach } from "./api-call.js";

const DEFAULT_FILE = { keras: (id: string) => `${id}.h5`, tfjs: (id: string) => `${id}-tfjs.zip` } as const;

export const modelsDownloadCommand: CliCommand = {
  name: "models download",
  usage: "models download ID --format keras|tfjs [--out FILE] [--url URL] [--key KEY]",
  description: "download a trained model: Keras HDF5 (.h5) or a zipped TensorFlow.js model; prints {file, bytes}",
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      this,
      args,
      { ...CONNECTION_OPTIONS, format: { type: "string" }, out: { type: "string" } },
      1,
    );
    const format = values.format;
    if (format !== "keras" && format !== "tfjs") {
      throw new AppError("VALIDATION_FAILED", `--format must be keras or tfjs, got ${JSON.stringify(format ?? null)}`, {
        option: "format",
        value: format ?? null,
      });
    }
    const modelId = positionals[0];
    const file = values.out ?? DEFAULT_FILE[format](modelId);
    const connection = connectionFrom(values);
    const url = `${connection.url.replace(/\/+$/, "")}/v1/models/${encodeURIComponent(modelId)}/download?format=${format}`;
    const response = await reach(connection, () => fetch(url, { headers: authHeaders(connection) }));
    if (!response.ok || !response.body) throw errorOf(response.status, await response.json().catch(() => undefined));
    const part = `${file}.part`;
    try {
      await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), fs.createWriteStream(part));
      await fsp.rename(part, file);
    } catch (err) {
      await fsp.rm(part, { force: true });
      throw err;
    }
    return { output: { modelId, format, file, bytes: (await fsp.stat(file)).size } };
  },
};
