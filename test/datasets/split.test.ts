import { test } from "node:test";
import assert from "node:assert/strict";
import { splitCounts, validationCount } from "../../src/datasets/split.js";

test("validationCount rounds, keeps at least one image on each side when a class has two, and none with split 0", () => {
  assert.equal(validationCount(10, 0.2), 2);
  assert.equal(validationCount(10, 0.25), 3);
  assert.equal(validationCount(2, 0.2), 1);
  assert.equal(validationCount(10, 0.99), 9);
  assert.equal(validationCount(1, 0.5), 0);
  assert.equal(validationCount(10, 0), 0);
});

test("splitCounts counts only a record's own classes: constructor and __proto__ are classes like any other", () => {
  const record = { counts: JSON.parse('{"constructor": 3, "__proto__": 4}') as Record<string, number>, subsetCounts: null };
  const counts = splitCounts(record, ["constructor", "__proto__", "toString"], 0.5);
  assert.deepEqual(Object.entries(counts), [
    ["constructor", { train: 1, validation: 2 }],
    ["__proto__", { train: 2, validation: 2 }],
    ["toString", { train: 0, validation: 0 }],
  ]);
});

test("splitCounts shows a class that would be empty on one side, so a job can be refused", () => {
  const record = { counts: { a: 5, b: 1 }, subsetCounts: null };
  assert.deepEqual(splitCounts(record, ["a", "b", "c"], 0.2), {
    a: { train: 4, validation: 1 },
    b: { train: 1, validation: 0 },
    c: { train: 0, validation: 0 },
  });
  const predefined = { counts: { a: 3, b: 2 }, subsetCounts: { train: { a: 2, b: 2 }, validation: { a: 1 } } };
  assert.deepEqual(splitCounts(predefined, ["b", "a"], 0.5), { b: { train: 2, validation: 0 }, a: { train: 2, validation: 1 } });
});
