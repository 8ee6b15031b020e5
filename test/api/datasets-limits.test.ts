// Every refused upload: the status, the code, and nothing left in DATA_DIR.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { build } from "../helpers/app.js";
import { classFolders, incompressible, makeImage, makeTar, makeTgz, makeZip, multipartBody } from "../helpers/dataset-archives.js";
import { filesUnder, uploadArchive } from "../helpers/dataset-upload.js";

async function refused(app: FastifyInstance, dataDir: string, archive: Buffer, status: number, code: string) {
  const res = await uploadArchive(app, archive);
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json().error.code, code);
  assert.deepEqual(await filesUnder(dataDir), [], "a refused upload leaves no file, temporary ones included");
  return res.json().error;
}

test("entry paths that escape the root are refused: ../, absolute, drive letter (zip and tar)", async (t) => {
  const { app, config } = await build(t);
  const good = await classFolders(["a", "b"], 2);
  const png = await makeImage(1);
  for (const forged of ["../x.png", "..\\x.png", "/etc/x.png", "C:/x.png", "a/../../x.png"]) {
    // yazl refuses such names, so a same-length placeholder is rewritten in the finished bytes.
    const placeholder = `${"q".repeat(forged.length - 6)}/x.png`;
    const zip = await makeZip([...good, { path: placeholder, data: png }], { [placeholder]: forged });
    const error = await refused(app, config.dataDir, zip, 400, "ARCHIVE_PATH_ESCAPE");
    assert.equal(error.details.path, forged.replace(/\\/g, "/"));
  }
  await refused(app, config.dataDir, await makeTar([...good, { path: "a/../../evil.png", data: png }]), 400, "ARCHIVE_PATH_ESCAPE");
  await refused(app, config.dataDir, await makeTgz([...good, { path: "/etc/evil.png", data: png }]), 400, "ARCHIVE_PATH_ESCAPE");
});

test("symbolic and hard links are refused", async (t) => {
  const { app, config } = await build(t);
  const good = await classFolders(["a", "b"], 2);
  const error = await refused(
    app,
    config.dataDir,
    await makeZip([...good, { path: "a/link.png", type: "symlink", linkTarget: "/etc/passwd" }]),
    400,
    "ARCHIVE_LINK_ENTRY",
  );
  assert.equal(error.details.path, "a/link.png");
  await refused(app, config.dataDir, await makeTar([...good, { path: "a/link.png", type: "symlink" }]), 400, "ARCHIVE_LINK_ENTRY");
  await refused(
    app,
    config.dataDir,
    await makeTgz([...good, { path: "a/hard.png", type: "hardlink", linkTarget: "a/0.png" }]),
    400,
    "ARCHIVE_LINK_ENTRY",
  );
});

test("devices and fifos are refused", async (t) => {
  const { app, config } = await build(t);
  const good = await classFolders(["a", "b"], 2);
  const error = await refused(
    app,
    config.dataDir,
    await makeTar([...good, { path: "a/pipe", type: "fifo" }]),
    400,
    "ARCHIVE_SPECIAL_ENTRY",
  );
  assert.deepEqual(error.details, { path: "a/pipe", kind: "fifo" });
  await refused(app, config.dataDir, await makeZip([...good, { path: "a/pipe", type: "fifo" }]), 400, "ARCHIVE_SPECIAL_ENTRY");
});

test("nested archives are refused by name and by content", async (t) => {
  const { app, config } = await build(t);
  const good = await classFolders(["a", "b"], 2);
  const inner = await makeZip(good);
  await refused(app, config.dataDir, await makeZip([...good, { path: "a/more.zip", data: inner }]), 400, "ARCHIVE_NESTED");
  await refused(app, config.dataDir, await makeZip([...good, { path: "a/disguised.png", data: inner }]), 400, "ARCHIVE_NESTED");
  await refused(
    app,
    config.dataDir,
    await makeTar([...good, { path: "b/disguised.jpg", data: await makeTgz(good) }]),
    400,
    "ARCHIVE_NESTED",
  );
  await refused(app, config.dataDir, await makeTgz([...good, { path: "b/inner.tar", data: await makeTar(good) }]), 400, "ARCHIVE_NESTED");
});

test("a zip bomb is refused from its declared sizes before anything is written", async (t) => {
  const { app, config } = await build(t);
  const good = await classFolders(["a", "b"], 2);
  const bomb = await makeZip([...good, { path: "a/zeros.png", data: Buffer.alloc(16 * 1024 * 1024) }]);
  assert.ok(bomb.length < 64 * 1024, "the bomb is small");
  const error = await refused(app, config.dataDir, bomb, 413, "ARCHIVE_COMPRESSION_RATIO");
  assert.equal(error.details.limit, 100);
  assert.equal(error.details.uncompressedBytes, 16 * 1024 * 1024);
  // Diluted with incompressible bytes the whole archive stays under the ratio; the entry's own ratio does not.
  const diluted = await makeZip([
    ...good,
    { path: "b/noise.bin", data: incompressible(300_000) },
    { path: "a/zeros.png", data: Buffer.alloc(16 * 1024 * 1024) },
  ]);
  assert.ok((16 * 1024 * 1024) / diluted.length < 100);
  const entry = await refused(app, config.dataDir, diluted, 413, "ARCHIVE_COMPRESSION_RATIO");
  assert.match(entry.message, /a\/zeros\.png/);
});

test("a tar.gz bomb stops at the ratio limit while decompressing", async (t) => {
  const { app, config } = await build(t);
  const good = await classFolders(["a", "b"], 2);
  const bomb = await makeTgz([...good, { path: "a/zeros.png", data: Buffer.alloc(16 * 1024 * 1024) }]);
  assert.ok(bomb.length < 64 * 1024);
  await refused(app, config.dataDir, bomb, 413, "ARCHIVE_COMPRESSION_RATIO");
});

test("entry count and total uncompressed size have their own limits", async (t) => {
  const { app, config } = await build(t, { MAX_ARCHIVE_ENTRIES: "5", MAX_UNCOMPRESSED_BYTES: "300000" });
  const six = await classFolders(["a", "b"], 3);
  await refused(app, config.dataDir, await makeZip(six), 413, "ARCHIVE_TOO_MANY_ENTRIES");
  await refused(app, config.dataDir, await makeTar(six), 413, "ARCHIVE_TOO_MANY_ENTRIES");
  const big = [...(await classFolders(["a", "b"], 2)).slice(0, 3), { path: "b/noise.png", data: incompressible(400_000) }];
  await refused(app, config.dataDir, await makeZip(big), 413, "ARCHIVE_TOO_LARGE_UNCOMPRESSED");
  await refused(app, config.dataDir, await makeTgz(big), 413, "ARCHIVE_TOO_LARGE_UNCOMPRESSED");
});

test("MAX_UPLOAD_BYTES: 413 UPLOAD_TOO_LARGE from Content-Length or while streaming", async (t) => {
  const { app, config } = await build(t, { MAX_UPLOAD_BYTES: "20000" });
  const good = await classFolders(["a", "b"], 2);
  // Just over the limit: only the streamed byte count can tell.
  const slightly = await makeTar([...good, { path: "a/pad.bin", data: incompressible(20_000) }]);
  const error = await refused(app, config.dataDir, slightly, 413, "UPLOAD_TOO_LARGE");
  assert.equal(error.details.limit, 20000);
  // Far over: refused from the header, before the body is read.
  await refused(app, config.dataDir, incompressible(200_000), 413, "UPLOAD_TOO_LARGE");
});

test("not multipart, no file, not an archive, or a broken archive: 400 with a clear code", async (t) => {
  const { app, config } = await build(t);
  const json = await app.inject({ method: "POST", url: "/v1/datasets", payload: { file: "x" } });
  assert.equal(json.statusCode, 400);
  assert.equal(json.json().error.code, "NOT_MULTIPART");
  const raw = await app.inject({
    method: "POST",
    url: "/v1/datasets",
    payload: await makeZip([]),
    headers: { "content-type": "application/zip" },
  });
  assert.equal(raw.json().error.code, "NOT_MULTIPART");
  const noFile = multipartBody(null, { name: "x" });
  const missing = await app.inject({ method: "POST", url: "/v1/datasets", payload: noFile.payload, headers: noFile.headers });
  assert.equal(missing.statusCode, 400);
  assert.equal(missing.json().error.code, "MISSING_FILE");
  const wrongField = multipartBody(await makeZip(await classFolders(["a", "b"], 2)), {}, "x.zip", "archive");
  const wrong = await app.inject({ method: "POST", url: "/v1/datasets", payload: wrongField.payload, headers: wrongField.headers });
  assert.equal(wrong.statusCode, 400);
  assert.equal(wrong.json().error.code, "VALIDATION_FAILED");

  await refused(app, config.dataDir, await makeImage(3), 400, "NOT_AN_ARCHIVE");
  await refused(app, config.dataDir, Buffer.from("just text, no archive"), 400, "NOT_AN_ARCHIVE");
  const zip = await makeZip(await classFolders(["a", "b"], 2));
  await refused(app, config.dataDir, zip.subarray(0, zip.length - 30), 400, "ARCHIVE_CORRUPT");
  const tgz = await makeTgz(await classFolders(["a", "b"], 2));
  await refused(app, config.dataDir, tgz.subarray(0, Math.floor(tgz.length / 2)), 400, "ARCHIVE_CORRUPT");
  assert.deepEqual(await filesUnder(config.dataDir), []);
});

test("no recognised layout, a bad labels.csv, or too few usable classes: 422", async (t) => {
  const { app, config } = await build(t);
  await refused(
    app,
    config.dataDir,
    await makeZip([
      { path: "1.png", data: await makeImage(1) },
      { path: "2.png", data: await makeImage(2) },
    ]),
    422,
    "DATASET_LAYOUT_INVALID",
  );
  const images = [{ path: "1.png", data: await makeImage(1) }];
  await refused(
    app,
    config.dataDir,
    await makeZip([...images, { path: "labels.csv", data: Buffer.from("file,class\n1.png,a\n") }]),
    422,
    "DATASET_LABELS_INVALID",
  );
  // One class with enough images, the other with one valid image and one broken one.
  const entries = [
    ...(await classFolders(["a"], 3)),
    { path: "b/0.png", data: await makeImage(9) },
    { path: "b/1.png", data: Buffer.from("not an image") },
  ];
  const error = await refused(app, config.dataDir, await makeZip(entries), 422, "DATASET_TOO_FEW_CLASSES");
  assert.deepEqual(error.details.counts, { a: 3, b: 1 });
  assert.deepEqual(error.details.rejected, [{ path: "b/1.png", reason: "unsupported_format" }]);
});
