import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { downloadVerified } from "../../scripts/fetch-imagenet.js";
import { tempDir } from "../helpers/app.js";
import { freePort } from "../helpers/redis.js";

const dir = await tempDir("rf-fetch-");
const payload = Buffer.alloc(300_000, 7);
const payloadMd5 = createHash("md5").update(payload).digest("hex");
let requests = 0;
const server = http.createServer((req, res) => {
  requests++;
  if (req.url === "/weights.h5") res.end(payload);
  else res.writeHead(404).end("no");
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
after(async () => {
  server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const leftovers = async (folder: string) => (await fs.readdir(folder)).filter((f) => f.includes(".download-"));

test("downloads into place when the md5 matches, and not again once the file is there", async () => {
  const dest = path.join(dir, "ok", "weights.h5");
  assert.equal(await downloadVerified({ url: `${base}/weights.h5`, dest, md5: payloadMd5 }), "downloaded");
  assert.ok((await fs.readFile(dest)).equals(payload));
  assert.deepEqual(await leftovers(path.dirname(dest)), []);
  const before = requests;
  assert.equal(await downloadVerified({ url: `${base}/weights.h5`, dest, md5: payloadMd5 }), "present");
  assert.equal(requests, before);
});

test("a download with the wrong md5 or an HTTP error leaves no file behind", async () => {
  const dest = path.join(dir, "bad", "weights.h5");
  await assert.rejects(downloadVerified({ url: `${base}/weights.h5`, dest, md5: "0".repeat(32) }), /md5 [0-9a-f]{32}, expected 0{32}/);
  await assert.rejects(fs.stat(dest), { code: "ENOENT" });
  assert.deepEqual(await leftovers(path.dirname(dest)), []);
  await assert.rejects(downloadVerified({ url: `${base}/missing.h5`, dest, md5: payloadMd5 }), /HTTP 404/);
  await assert.rejects(fs.stat(dest), { code: "ENOENT" });
});

function runScript(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/fetch-imagenet.ts", ...args], { env: { ...process.env, ...env } });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

test("npm run fetch:imagenet without internet fails with a message saying what to do", async () => {
  const dest = path.join(dir, "script", "resnet50.h5");
  const closedPort = await freePort();
  const unreachable = await runScript({ IMAGENET_WEIGHTS: dest }, "--url", `http://127.0.0.1:${closedPort}/weights.h5`);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach/);
  assert.match(unreachable.stderr, /4d473c1dd8becc155b73f8504c6f6626/);
  assert.ok(unreachable.stderr.includes(dest));
  // Served, but not Keras' file: refused by its md5, nothing written.
  const wrongFile = await runScript({ IMAGENET_WEIGHTS: dest }, "--url", `${base}/weights.h5`);
  assert.equal(wrongFile.code, 1);
  assert.match(wrongFile.stderr, /expected 4d473c1dd8becc155b73f8504c6f6626/);
  await assert.rejects(fs.stat(dest), { code: "ENOENT" });
});
