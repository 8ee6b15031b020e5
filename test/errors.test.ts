import { test } from "node:test";
import assert from "node:assert/strict";
import { UnrecoverableError } from "bullmq";
import { AppError, ERRORS, type ErrorCode } from "../src/errors.js";
import { attemptFailure } from "../src/worker/training-processor.js";

test("every client error (4xx) but rate limiting and quotas says a retry cannot help", () => {
  // A quota frees up when the tenant's other jobs, streams or uploads end.
  for (const [code, entry] of Object.entries(ERRORS)) {
    if (entry.status < 500 && code !== "TOO_MANY_REQUESTS" && code !== "QUOTA_EXCEEDED") assert.equal(entry.retry, false, code);
  }
});

test("a failed attempt is retried when the catalogue says a retry can help, and only then", () => {
  const retried: ErrorCode[] = ["TRAINING_FAILED", "BACKEND_UNAVAILABLE", "OPTIMIZER_STATE_INVALID", "SERVICE_UNAVAILABLE", "STORAGE_FULL"];
  for (const code of retried) {
    const error = new AppError(code, "x");
    assert.equal(attemptFailure(error), error, code);
  }
  const final: ErrorCode[] = ["TRAINING_DIVERGED", "WEIGHTS_MISMATCH", "INVALID_TRAINING_OPTIONS", "JOB_LOST"];
  for (const code of final) {
    const failure = attemptFailure(new AppError(code, "no use retrying", { epoch: 2 }));
    assert.ok(failure instanceof UnrecoverableError, code);
    assert.equal((failure as UnrecoverableError & { code: string }).code, code);
    assert.deepEqual((failure as UnrecoverableError & { details: unknown }).details, { epoch: 2 });
  }
  // an error outside the catalogue (a crash, a lost connection) is taken as transient
  const crash = new Error("socket closed");
  assert.equal(attemptFailure(crash), crash);
});
