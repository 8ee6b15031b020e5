import { test } from "node:test";
import assert from "node:assert/strict";
import { classificationReport } from "../../src/training/report.js";

const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} != ${expected}`);

test("per-class precision, recall, F1, support and the confusion matrix, computed by hand", () => {
  //                labels:  cat x4,     dog x3,  bird x3
  const labels = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
  const predictions = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1];
  const report = classificationReport(labels, predictions, ["cat", "dog", "bird"]);
  assert.deepEqual(report.confusionMatrix, [
    [2, 1, 1],
    [1, 2, 0],
    [0, 1, 2],
  ]);
  const [cat, dog, bird] = report.classes;
  assert.equal(cat.class, "cat");
  // cat: 2 right of 3 predicted, of 4 labelled.
  close(cat.precision, 2 / 3);
  close(cat.recall, 1 / 2);
  close(cat.f1, 4 / 7);
  assert.equal(cat.support, 4);
  close(dog.precision, 2 / 4);
  close(dog.recall, 2 / 3);
  close(dog.f1, 4 / 7);
  close(bird.precision, 2 / 3);
  close(bird.recall, 2 / 3);
  close(bird.f1, 2 / 3);
  close(report.accuracy, 0.6);
  close(report.macroAvg.precision, 11 / 18);
  close(report.macroAvg.recall, 11 / 18);
  close(report.macroAvg.f1, 38 / 63);
  close(report.weightedAvg.precision, 37 / 60);
  close(report.weightedAvg.recall, 0.6);
  close(report.weightedAvg.f1, 0.6);
  assert.equal(report.weightedAvg.support, 10);
});

test("a class never predicted or never present scores 0, not NaN", () => {
  const report = classificationReport([0, 0, 1], [0, 0, 0], ["a", "b", "c"]);
  assert.deepEqual(report.classes[1], { class: "b", precision: 0, recall: 0, f1: 0, support: 1 });
  assert.deepEqual(report.classes[2], { class: "c", precision: 0, recall: 0, f1: 0, support: 0 });
  close(report.classes[0].precision, 2 / 3);
  assert.equal(report.classes[0].recall, 1);
});

test("indices outside the classes or unequal lengths are refused", () => {
  assert.throws(() => classificationReport([0, 2], [0, 1], ["a", "b"]), { code: "INTERNAL" });
  assert.throws(() => classificationReport([0], [0, 1], ["a", "b"]), { code: "INTERNAL" });
});
