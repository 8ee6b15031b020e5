// Accepted uploads: every layout and archive type, and the validation report.
import { test } from "node:test";
import assert from "node:assert/strict";
import sharp from "sharp";
import { build } from "../helpers/app.js";
import { classFolders, makeImage, makeTar, makeTgz, makeZip, multipartBody } from "../helpers/dataset-archives.js";
import { filesUnder, uploadArchive } from "../helpers/dataset-upload.js";

test("a zip of class folders becomes a dataset with the documented shape, stored without scratch files", async (t) => {
  const { app, config } = await build(t);
  const entries = await classFolders(["cats", "dogs"], 3);
  const res = await uploadArchive(app, await makeZip(entries), { name: "pets" });
  assert.equal(res.statusCode, 201, res.body);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), [
    "bytes",
    "classes",
    "counts",
    "createdAt",
    "duplicates",
    "id",
    "imageCount",
    "name",
    "rejected",
    "split",
    "status",
  ]);
  assert.match(body.id, /^ds_[0-9a-z]{21}$/);
  assert.equal(body.name, "pets");
  assert.equal(body.status, "ready");
  assert.deepEqual(body.classes, ["cats", "dogs"]);
  assert.deepEqual(body.counts, { cats: 3, dogs: 3 });
  assert.equal(body.imageCount, 6);
  assert.equal(body.split, "random");
  assert.deepEqual(body.rejected, []);
  assert.deepEqual(body.duplicates, { sameClass: [], conflicts: [] });
  assert.equal(
    body.bytes,
    entries.reduce((n, e) => n + e.data!.length, 0),
  );
  assert.ok(Math.abs(Date.parse(body.createdAt) - Date.now()) < 60_000);

  const got = await app.inject({ method: "GET", url: `/v1/datasets/${body.id}` });
  assert.equal(got.statusCode, 200);
  assert.deepEqual(got.json(), body);
  const prefix = `tenants/default/datasets/${body.id}/`;
  const stored = await filesUnder(config.dataDir);
  assert.deepEqual(
    stored.filter((f) => !f.startsWith(`${prefix}images/`)),
    [`${prefix}dataset.json`, `${prefix}index.json`],
  );
  assert.equal(stored.filter((f) => f.startsWith(`${prefix}images/`)).length, 6);
});

test("tar and tar.gz under one top folder are recognised by content, whatever the file is called", async (t) => {
  const { app } = await build(t);
  const entries = await classFolders(["a", "b"], 2, "top/", "jpeg");
  for (const archive of [await makeTar(entries), await makeTgz(entries)]) {
    const body = multipartBody(archive, {}, "misleading.zip");
    const res = await app.inject({ method: "POST", url: "/v1/datasets", payload: body.payload, headers: body.headers });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().counts, { a: 2, b: 2 });
    assert.equal(res.json().name, "misleading");
  }
});

test("train/ and val/ folders make a predefined split", async (t) => {
  const { app } = await build(t);
  const entries = [...(await classFolders(["x", "y"], 3, "train/")), ...(await classFolders(["x", "y"], 1, "val/", "webp"))];
  const res = await uploadArchive(app, await makeTgz(entries));
  assert.equal(res.statusCode, 201, res.body);
  assert.equal(res.json().split, "predefined");
  assert.deepEqual(res.json().counts, { x: 4, y: 4 });
});

test("labels.csv labels images anywhere in the archive; unlisted and missing files are reported", async (t) => {
  const { app } = await build(t);
  const csv = 'path,label\nimg/1.png,cat\nimg/2.png,cat\n"img/3, with comma.png",dog\nimg/4.png,dog\nimg/gone.png,dog\n';
  const entries = [
    { path: "labels.csv", data: Buffer.from(csv) },
    { path: "img/1.png", data: await makeImage(1) },
    { path: "img/2.png", data: await makeImage(2) },
    { path: "img/3, with comma.png", data: await makeImage(3) },
    { path: "img/4.png", data: await makeImage(4) },
    { path: "img/5.png", data: await makeImage(5) },
  ];
  const res = await uploadArchive(app, await makeZip(entries));
  assert.equal(res.statusCode, 201, res.body);
  assert.deepEqual(res.json().counts, { cat: 2, dog: 2 });
  assert.deepEqual(res.json().rejected, [
    { path: "img/5.png", reason: "not_in_labels_csv" },
    { path: "img/gone.png", reason: "missing_file" },
  ]);
});

test("hidden entries are ignored silently; broken, empty, oversized and non-image files are rejected with a reason", async (t) => {
  const { app } = await build(t, { MAX_IMAGE_PIXELS: "2000" });
  const png = await makeImage(50);
  const big = await sharp({ create: { width: 60, height: 60, channels: 3, background: "#808080" } })
    .png()
    .toBuffer();
  const entries = [
    ...(await classFolders(["a", "b"], 2, "", "gif")),
    { path: ".DS_Store", data: Buffer.from("junk") },
    { path: "__MACOSX/a/._0.gif", data: Buffer.from("junk") },
    { path: "a/.hidden.png", data: Buffer.from("junk") },
    { path: "a/truncated.png", data: png.subarray(0, png.length - 20) },
    { path: "a/empty.jpg", data: Buffer.alloc(0) },
    { path: "a/notes.txt", data: Buffer.from("hello") },
    { path: "b/big.png", data: big },
    { path: "b/tiff.tif", data: await makeImage(51, "tiff") },
    { path: "readme.md", data: Buffer.from("# dataset") },
  ];
  const res = await uploadArchive(app, await makeZip(entries));
  assert.equal(res.statusCode, 201, res.body);
  assert.deepEqual(res.json().counts, { a: 2, b: 3 });
  assert.deepEqual(res.json().rejected, [
    { path: "a/empty.jpg", reason: "zero_sized" },
    { path: "a/notes.txt", reason: "unsupported_format" },
    { path: "a/truncated.png", reason: "truncated" },
    { path: "b/big.png", reason: "too_many_pixels" },
    { path: "readme.md", reason: "not_in_a_class_folder" },
  ]);
});

test("byte-identical files: kept once per class, conflicts across classes reported", async (t) => {
  const { app } = await build(t);
  const same = await makeImage(77);
  const entries = [
    ...(await classFolders(["a", "b"], 2)),
    { path: "a/copy1.png", data: same },
    { path: "a/copy2.png", data: same },
    { path: "b/copy3.png", data: same },
  ];
  const res = await uploadArchive(app, await makeTar(entries));
  assert.equal(res.statusCode, 201, res.body);
  assert.deepEqual(res.json().counts, { a: 3, b: 3 });
  assert.deepEqual(res.json().duplicates, {
    sameClass: [{ class: "a", kept: "a/copy1.png", dropped: ["a/copy2.png"] }],
    conflicts: [
      {
        files: [
          { path: "a/copy1.png", class: "a" },
          { path: "b/copy3.png", class: "b" },
        ],
      },
    ],
  });
});
