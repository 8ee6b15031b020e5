// The training speed-ups are installed where training happens and nowhere else: an API process that
// has served a predict on TF.js keeps tfjs' kernel registry as the package made it; a training child has them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const child = fileURLToPath(new URL("./fixtures/kernel-registry-child.ts", import.meta.url));

/** What the child of `role` reports about its registry (its last line of JSON). */
async function registryOf(role: "api" | "training"): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", child, role], { timeout: 180_000 });
  const line = stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .at(-1);
  assert.ok(line, `no report from the ${role} child: ${stdout}`);
  return JSON.parse(line) as Record<string, unknown>;
}

const TITLE = "an API process that answered a predict on TF.js has none of the training kernels; a training child has them all";

test(TITLE, { timeout: 360_000 }, async () => {
  const [api, training] = await Promise.all([registryOf("api"), registryOf("training")]);
  assert.deepEqual(api, {
    role: "api",
    backend: "wasm",
    status: 200,
    kernels: { Conv2DBackpropFilter: false, ResnetFinetuneAdamUpdate: false },
    savedTensorsShareData: false, // wasm's own Identity, which copies
  });
  assert.deepEqual(training, {
    role: "training",
    backend: "wasm",
    kernels: { Conv2DBackpropFilter: true, ResnetFinetuneAdamUpdate: true },
    savedTensorsShareData: true,
  });
});
