import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { compiledModuleText, WASM_SOURCES } from "../../scripts/build-wasm.js";

for (const source of WASM_SOURCES) {
  test(`${source.module} is what ${source.wat} compiles to (run npm run build:wasm after editing the .wat)`, async () => {
    const committed = await fs.readFile(source.module, "utf8");
    assert.equal(committed, await compiledModuleText(source));
  });
}
