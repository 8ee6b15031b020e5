import { test } from "node:test";
import assert from "node:assert/strict";
import sharp from "sharp";
import { decodeResizeRgb } from "../../src/datasets/image-decode.js";

const solid = (channels: 1 | 2 | 3 | 4, width: number, height: number, values: number[]) => {
  const raw = Buffer.alloc(width * height * channels);
  for (let i = 0; i < raw.length; i++) raw[i] = values[i % channels];
  return sharp(raw, { raw: { width, height, channels } });
};

test("any image becomes imageSize x imageSize RGB: grayscale expanded, alpha dropped without blending", async () => {
  const gray = await decodeResizeRgb(await solid(1, 30, 10, [90]).png().toBuffer(), 8);
  assert.equal(gray.length, 8 * 8 * 3);
  assert.ok(gray.every((v) => v === 90));
  const rgba = await decodeResizeRgb(await solid(4, 10, 30, [200, 100, 50, 40]).png().toBuffer(), 5);
  assert.equal(rgba.length, 5 * 5 * 3);
  assert.deepEqual([...rgba.subarray(0, 6)], [200, 100, 50, 200, 100, 50]);
});

test("the aspect ratio is not kept: a left/right split image stays split at the middle, nothing is cropped", async () => {
  const width = 40;
  const height = 10;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) raw.fill(x < width / 2 ? 0 : 255, (y * width + x) * 3, (y * width + x) * 3 + 3);
  const out = await decodeResizeRgb(
    await sharp(raw, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer(),
    8,
  );
  const row = [...Array(8).keys()].map((x) => out[x * 3]);
  assert.deepEqual(row.slice(0, 3), [0, 0, 0]);
  assert.deepEqual(row.slice(5), [255, 255, 255]);
});

test("an image over maxPixels is refused", async () => {
  const png = await solid(3, 50, 50, [1, 2, 3]).png().toBuffer();
  await assert.rejects(decodeResizeRgb(png, 8, 1000), /pixel limit/i);
});
