// The invariant between wasm-kernels.ts (the Identity kernel shares data) and gradient-thread.ts (which
// matches requests by dataId) is checked where it is relied on: a helper refuses to start without it.
import { test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import { selectBackend } from "../../src/backend/select-backend.js";
import { installTrainingSpeedups } from "../../src/backend/wasm-speedups/index.js";
import { createGradientThread } from "../../src/backend/wasm-speedups/gradient-thread.js";
import { savedTensorsKeepTheirData } from "../../src/backend/wasm-speedups/tape-identity.js";

test("on wasm's own kernels saved tensors are copies, and a helper refuses to start; the training speed-ups make them share, and it starts", {
  skip: os.availableParallelism() < 2 && "one core: a helper never starts here",
}, async () => {
  await selectBackend("wasm");
  assert.equal(savedTensorsKeepTheirData(), false);
  const early = createGradientThread();
  await assert.rejects(early.start(), { code: "BACKEND_UNAVAILABLE" });
  assert.equal(early.running, false);

  const { gradientThread } = await installTrainingSpeedups("wasm", { gradientThread: false });
  assert.equal(savedTensorsKeepTheirData(), true);
  assert.equal(await gradientThread.start(), true);
  await gradientThread.stop();
  assert.equal(gradientThread.running, false);
});
