// labels.csv is a client's text file: capped in bytes and rows, parsed row by row, refused with a code,
// and nothing of it left behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { createCsvParser, parseCsv } from "../../src/datasets/dataset-layout.js";
import { build } from "../helpers/app.js";
import { filesUnder, uploadArchive } from "../helpers/dataset-upload.js";
import { labelsCsvBomb } from "./hostile-inputs.js";

const MiB = 1024 ** 2;

async function assertNothingLeft(dataDir: string): Promise<void> {
  const left = (await filesUnder(dataDir)).filter((f) => f.startsWith(".tmp/") || f.startsWith("tenants/"));
  assert.deepEqual(left, [], "nothing is left in DATA_DIR/.tmp or storage");
}

async function assertReady(app: FastifyInstance): Promise<void> {
  assert.equal((await app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
}

test("a labels.csv over MAX_LABELS_BYTES is 413 LABELS_TOO_LARGE without being parsed: RSS stays flat", async (t) => {
  const { app, config } = await build(t);
  // 24 MB of short rows (~5 MB gzipped, well under MAX_COMPRESSION_RATIO): parsed whole into strings and
  // arrays it cost over 1 GB of RSS; refused by size, only the streamed extraction's buffers remain.
  const archive = await labelsCsvBomb(24 * MiB);
  global.gc?.();
  const before = process.memoryUsage().rss;
  const res = await uploadArchive(app, archive);
  const grown = process.memoryUsage().rss - before;
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(res.json().error.code, "LABELS_TOO_LARGE");
  assert.equal(res.json().error.details.limit, 8 * MiB);
  // The bound: extraction streams in 64 KiB pieces; 150 MB leaves room for the allocator and GC timing.
  assert.ok(grown < 150 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB`);
  await assertReady(app);
  await assertNothingLeft(config.dataDir);
  assert.equal(config.maxLabelsBytes, 8 * MiB, "the default cap");
});

test("a labels.csv with more rows than MAX_ARCHIVE_ENTRIES is 422 DATASET_LABELS_INVALID", async (t) => {
  const { app, config } = await build(t, { MAX_ARCHIVE_ENTRIES: "1000" });
  const res = await uploadArchive(app, await labelsCsvBomb(64 * 1024));
  assert.equal(res.statusCode, 422, res.body);
  assert.equal(res.json().error.code, "DATASET_LABELS_INVALID");
  assert.equal(res.json().error.details.limit, 1000);
  await assertReady(app);
  await assertNothingLeft(config.dataDir);
});

test("the streamed parser gives the same rows whatever the pieces it is fed", () => {
  const text = 'path,label\r\n"a,b.png","x ""y"""\r\nc.png,z\n\n"multi\nline.png",w\r"last",v';
  const whole = parseCsv(text);
  assert.deepEqual(whole, [
    ["path", "label"],
    ["a,b.png", 'x "y"'],
    ["c.png", "z"],
    ["multi\nline.png", "w"],
    ["last", "v"],
  ]);
  for (const size of [1, 2, 3, 7]) {
    const rows: string[][] = [];
    const parser = createCsvParser((row) => rows.push(row));
    for (let i = 0; i < text.length; i += size) parser.write(text.slice(i, i + size));
    parser.end();
    assert.deepEqual(rows, whole, `pieces of ${size}`);
  }
});

test("a row of thousands of fields is refused while parsing", () => {
  const parser = createCsvParser(() => assert.fail("no row may come out"));
  assert.throws(
    () => parser.write(`path,label${",".repeat(10_000)}\n`),
    (e: unknown) => (e as { code?: string }).code === "DATASET_LABELS_INVALID",
  );
});

test("a valid labels.csv still makes a dataset", async (t) => {
  const { app } = await build(t);
  const archive = await labelsCsvBomb(0);
  const res = await uploadArchive(app, archive);
  assert.equal(res.statusCode, 201, res.body);
  assert.deepEqual(res.json().counts, { a: 2, b: 2 });
});
