// npm run bench:upload: starts the real API process on its own DATA_DIR,
// streams a generated tar of >= 1 GiB of unique, valid PNG images to
// POST /v1/datasets (never held whole in memory on either side), samples the
// API's RSS from /proc/<pid>/status, and prints throughput and peak RSS growth.
// BENCH_UPLOAD_BYTES (default 1 GiB) and BENCH_IMAGE_SIZE (default 512) tune it.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import * as tarStream from "tar-stream";
import { freePort, startRedis } from "../test/helpers/redis.js";
import { classFolders, makeZip, multipartBody } from "../test/helpers/dataset-archives.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TARGET_BYTES = Number(process.env.BENCH_UPLOAD_BYTES ?? 1024 ** 3);
const IMAGE_SIZE = Number(process.env.BENCH_IMAGE_SIZE ?? 512);
const CLASSES = ["alpha", "beta", "gamma", "delta"];
const MiB = 1024 * 1024;

async function rssBytes(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
  return kb * 1024;
}

/** A PNG of random pixels: incompressible like a photo, unique, and valid. */
function noisePng(): Promise<Buffer> {
  return sharp(randomBytes(IMAGE_SIZE * IMAGE_SIZE * 3), { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
}

/** Writes tar entries until TARGET_BYTES of images went out, waiting for the consumer after each entry. */
async function fillTar(pack: tarStream.Pack): Promise<{ images: number; bytes: number }> {
  let bytes = 0;
  let images = 0;
  while (bytes < TARGET_BYTES) {
    const png = await noisePng();
    const name = `bench/${CLASSES[images % CLASSES.length]}/${images}.png`;
    await new Promise<void>((resolve, reject) => pack.entry({ name, size: png.length }, png, (err) => (err ? reject(err) : resolve())));
    bytes += png.length;
    images += 1;
  }
  pack.finalize();
  return { images, bytes };
}

function post(
  port: number,
  headers: http.OutgoingHttpHeaders,
  body: AsyncIterable<Buffer>,
): Promise<{ status: number; body: string; sentAt: number }> {
  return new Promise((resolve, reject) => {
    let sentAt = 0;
    const req = http.request({ port, host: "127.0.0.1", method: "POST", path: "/v1/datasets", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), sentAt }));
    });
    req.on("error", reject);
    (async () => {
      for await (const chunk of body) {
        if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
      }
      sentAt = performance.now();
      req.end();
    })().catch(reject);
  });
}

async function waitForHealth(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      http.get({ port, host: "127.0.0.1", path: "/healthz" }, (res) => resolve(res.statusCode === 200)).on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the API did not become healthy within 60 s");
}

async function main(): Promise<void> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "rf-bench-upload-"));
  const redis = await startRedis();
  const port = await freePort();
  const api = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      REDIS_URL: redis.url,
      LOG_LEVEL: "warn",
      NODE_ENV: "production",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  try {
    await waitForHealth(port);
    // Warm-up: load sharp, yauzl and the routes once, so the baseline includes the code.
    const warm = multipartBody(await makeZip(await classFolders(CLASSES, 2)));
    const warmed = await post(
      port,
      warm.headers,
      (async function* () {
        yield warm.payload;
      })(),
    );
    if (warmed.status !== 201) throw new Error(`warm-up upload failed: ${warmed.status} ${warmed.body}`);

    const baseline = await rssBytes(api.pid!);
    let peak = baseline;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssBytes(api.pid!).catch(() => 0));
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    const boundary = `----bench${randomBytes(8).toString("hex")}`;
    const pack = tarStream.pack();
    const filling = fillTar(pack);
    let sent = 0;
    const body = (async function* () {
      yield Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.tar"\r\nContent-Type: application/x-tar\r\n\r\n`,
      );
      for await (const chunk of pack) {
        sent += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    })();
    const started = performance.now();
    const res = await post(port, { "content-type": `multipart/form-data; boundary=${boundary}`, "transfer-encoding": "chunked" }, body);
    const finished = performance.now();
    sampling = false;
    await sampler;
    const { images } = await filling;
    if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${res.body}`);
    const dataset = JSON.parse(res.body) as { imageCount: number; rejected: unknown[] };

    const seconds = (finished - started) / 1000;
    const sendSeconds = (res.sentAt - started) / 1000;
    const lines = [
      `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, node ${process.version}`,
      `archive: tar of ${images} PNG images (${IMAGE_SIZE}x${IMAGE_SIZE} random pixels), ${(sent / MiB).toFixed(0)} MiB`,
      `dataset: ${dataset.imageCount} images stored, ${dataset.rejected.length} rejected`,
      `upload (body sent): ${sendSeconds.toFixed(1)} s, ${(sent / MiB / sendSeconds).toFixed(1)} MiB/s`,
      `total until 201 (upload + extract + decode-check every image + store): ${seconds.toFixed(1)} s, ${(sent / MiB / seconds).toFixed(1)} MiB/s`,
      `API RSS: baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB, growth ${((peak - baseline) / MiB).toFixed(0)} MiB (target < 100 MiB)`,
    ];
    console.log(lines.join("\n"));
  } finally {
    const exited = new Promise((r) => api.once("exit", r));
    api.kill("SIGTERM");
    await exited;
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

await main();
