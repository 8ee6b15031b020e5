import { test } from "node:test";
import assert from "node:assert/strict";
import sharp from "sharp";
import supertest from "supertest";
import { build } from "../helpers/app.js";
import { classFolders, makeZip } from "../helpers/dataset-archives.js";
import { uploadArchive } from "../helpers/dataset-upload.js";
import { assertDocumented } from "../helpers/openapi-check.js";
import { misclassifiedImages, MISCLASSIFIED_LIMIT } from "../../src/training/report.js";

const KEYS = { API_KEYS: "acme:key-acme,globex:key-globex" };

test("samples per class and their thumbnails: small JPEGs of the stored images, inside the tenant", async (t) => {
  const { app } = await build(t, KEYS);
  const upload = await uploadArchive(app, await makeZip(await classFolders(["cat", "dog"], 5)), {}, { authorization: "Bearer key-acme" });
  assert.equal(upload.statusCode, 201, upload.body);
  const id = upload.json().id;
  const http = supertest(app.server);

  const samples = await http.get(`/v1/datasets/${id}/samples?perClass=3`).set("authorization", "Bearer key-acme");
  assert.equal(samples.status, 200);
  assertDocumented(samples, "GET", "/v1/datasets/:id/samples");
  assert.deepEqual(
    samples.body.classes.map((c: { class: string; count: number; images: unknown[] }) => [c.class, c.count, c.images.length]),
    [
      ["cat", 5, 3],
      ["dog", 5, 3],
    ],
  );
  const dog = samples.body.classes[1].images[0];
  assert.match(dog.path, /^dog\//);

  const thumb = await http
    .get(`/v1/datasets/${id}/images/${dog.index}/thumbnail?size=48`)
    .set("authorization", "Bearer key-acme")
    .buffer(true);
  assert.equal(thumb.status, 200);
  assert.equal(thumb.headers["content-type"], "image/jpeg");
  const meta = await sharp(thumb.body as Buffer).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ["jpeg", 48, 48]);

  const missing = await http.get(`/v1/datasets/${id}/images/999/thumbnail`).set("authorization", "Bearer key-acme");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, "NOT_FOUND");
  const tooBig = await http.get(`/v1/datasets/${id}/images/0/thumbnail?size=4000`).set("authorization", "Bearer key-acme");
  assert.equal(tooBig.status, 400);
  assert.equal(tooBig.body.error.code, "VALIDATION_FAILED");
  const otherTenant = await http.get(`/v1/datasets/${id}/images/0/thumbnail`).set("authorization", "Bearer key-globex");
  assert.equal(otherTenant.status, 404);
  assert.equal(otherTenant.body.error.code, "DATASET_NOT_FOUND");
  const noKey = await http.get(`/v1/datasets/${id}/samples`);
  assert.equal(noKey.status, 401);
});

test("the report's misclassified images: label, prediction and where the image is, bounded", () => {
  const examples = [0, 1, 2, 3].map((i) => ({ index: 10 + i, path: `x/${i}.png` }));
  assert.deepEqual(misclassifiedImages([0, 1, 1, 0], [0, 0, 1, 1], examples, ["cat", "dog"]), [
    { index: 11, path: "x/1.png", true: "dog", predicted: "cat" },
    { index: 13, path: "x/3.png", true: "cat", predicted: "dog" },
  ]);
  const many = Array.from({ length: 500 }, (_, i) => ({ index: i, path: `${i}` }));
  assert.equal(
    misclassifiedImages(
      many.map(() => 0),
      many.map(() => 1),
      many,
      ["a", "b"],
    ).length,
    MISCLASSIFIED_LIMIT,
  );
});
