// The hostile dataset archives the benchmark fires (path escape, link, nested archive, zip and tar.gz
// bombs): each is refused with its code, the API stays ready and nothing is left in DATA_DIR. Their
// detailed tests are test/api/datasets-limits.test.ts; this keeps the shared builders hostile.
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "../helpers/app.js";
import { filesUnder, uploadArchive } from "../helpers/dataset-upload.js";
import { archiveBomb, zipNested, zipPathEscape, zipSymlink } from "./hostile-inputs.js";

test("every hostile dataset archive is refused with its code, the API ready and DATA_DIR clean", async (t) => {
  const { app, config } = await build(t);
  const cases: [string, Buffer, number, string][] = [
    ["path escape", await zipPathEscape(), 400, "ARCHIVE_PATH_ESCAPE"],
    ["symlink", await zipSymlink(), 400, "ARCHIVE_LINK_ENTRY"],
    ["nested", await zipNested(), 400, "ARCHIVE_NESTED"],
    ["zip bomb", await archiveBomb(64 * 1024 ** 2), 413, "ARCHIVE_COMPRESSION_RATIO"],
    ["tar.gz bomb", await archiveBomb(64 * 1024 ** 2, "tgz"), 413, "ARCHIVE_COMPRESSION_RATIO"],
  ];
  for (const [name, archive, status, code] of cases) {
    const res = await uploadArchive(app, archive);
    assert.equal(res.statusCode, status, `${name}: ${res.body}`);
    assert.equal(res.json().error.code, code, name);
    assert.equal((await app.inject({ method: "GET", url: "/readyz" })).statusCode, 200, name);
    assert.deepEqual(
      (await filesUnder(config.dataDir)).filter((f) => f.startsWith(".tmp/") || f.startsWith("tenants/")),
      [],
      name,
    );
  }
});
