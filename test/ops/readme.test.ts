// The README's configuration table is the user's reference: it must list every
// environment variable the code reads, and nothing the code ignores.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { envVarsReadByCode } from "../helpers/env-vars.js";

const readme = readFileSync("README.md", "utf8");

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `README has a "## ${title}" section`);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

test("the configuration table lists exactly the environment variables the code reads", () => {
  const rows = [...section("Configuration").matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]);
  assert.equal(new Set(rows).size, rows.length, "no variable is listed twice");
  assert.deepEqual([...rows].sort(), [...envVarsReadByCode()].sort());
});

test("the quick start is the two commands", () => {
  const quick = section("Quick start");
  assert.match(quick, /npm install && npm start/);
  assert.match(quick, /npm test/);
});

test("the README covers Docker, GPU hosts, scaling out, ImageNet weights and troubleshooting", () => {
  for (const title of ["Walkthrough with curl", "Running with Docker", "Scaling out", "ImageNet weights", "Troubleshooting"]) section(title);
  assert.match(readme, /### GPU hosts/);
  assert.match(section("Troubleshooting"), /stays `queued`/);
});
