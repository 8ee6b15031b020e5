import { test } from "node:test";
import assert from "node:assert/strict";
import { dropoutMasks } from "../../src/training/dropout-masks.js";

const LAYERS = [
  { units: 64, rate: 0.5 },
  { units: 10, rate: 0.2 },
];

test("masks follow (seed, epoch, batch, layer): the same again for a resumed run, new for another step or seed", () => {
  const first = dropoutMasks(LAYERS, 8, 42, 3, 5);
  assert.deepEqual(dropoutMasks(LAYERS, 8, 42, 3, 5), first);
  const others = [dropoutMasks(LAYERS, 8, 42, 3, 6), dropoutMasks(LAYERS, 8, 42, 4, 5), dropoutMasks(LAYERS, 8, 43, 3, 5)];
  for (const other of others) assert.notDeepEqual(other[0], first[0]);
  assert.equal(first[0].length, 8 * 64);
  assert.equal(first[1].length, 8 * 10);
});

test("each element is 0 or 1 / (1 - rate), dropped at about the rate; rate 0 keeps everything", () => {
  const [mask] = dropoutMasks([{ units: 1000, rate: 0.3 }], 20, 7, 0, 0);
  const kept = Math.fround(1 / 0.7);
  assert.ok(mask.every((v) => v === 0 || v === kept));
  const dropped = mask.filter((v) => v === 0).length / mask.length;
  assert.ok(Math.abs(dropped - 0.3) < 0.02, `dropped ${dropped}`);
  const [none] = dropoutMasks([{ units: 16, rate: 0 }], 4, 7, 0, 0);
  assert.ok(none.every((v) => v === 1));
});
