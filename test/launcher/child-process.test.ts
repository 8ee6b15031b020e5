import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import path from "node:path";
import { prettyLines, startService } from "../../src/launcher/child-process.js";
import { tempDir } from "../helpers/app.js";

test("every output line of a service carries its prefix, stdout and stderr alike", async (t) => {
  const dir = await tempDir();
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const script = path.join(dir, "svc.mjs");
  await fs.writeFile(script, 'console.log("one\\ntwo"); console.error("oops"); process.exit(3);\n');
  let out = "";
  const svc = startService("api", script, process.env, (text) => (out += text));
  const result = await svc.exited;
  assert.equal(result.code, 3);
  assert.deepEqual(out.trim().split("\n").sort(), ["[api] one", "[api] oops", "[api] two"]);
});

test("prettyLines renders pino JSON as level and message, and passes other text through", () => {
  const format = prettyLines(false);
  const line = format(JSON.stringify({ level: 30, time: 0, msg: "server listening", port: 3000 }));
  assert.match(line, /INFO/);
  assert.match(line, /server listening/);
  assert.equal(format("plain text"), "plain text");
  assert.equal(format("{not json"), "{not json");
});
