// The README is the front door: under 250 lines, the two commands, the
// walkthrough, and the configuration table, which must list every environment
// variable the code reads and nothing the code ignores.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { envVarsReadByCode } from "../helpers/env-vars.js";
import { markdownFiles, relativeLinks, section } from "../helpers/markdown.js";

const readme = readFileSync("README.md", "utf8");

function readmeSection(title: string): string {
  const text = section(readme, title);
  assert.ok(text !== undefined, `README has a "## ${title}" section`);
  return text;
}

test("the README has fewer than 250 lines", () => {
  const lines = readme.split("\n").length - (readme.endsWith("\n") ? 1 : 0);
  assert.ok(lines < 250, `README.md has ${lines} lines`);
});

test("the configuration table lists exactly the environment variables the code reads", () => {
  const rows = [...readmeSection("Configuration").matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]);
  assert.equal(new Set(rows).size, rows.length, "no variable is listed twice");
  assert.deepEqual([...rows].sort(), [...envVarsReadByCode()].sort());
});

test("the quick start is the two commands", () => {
  const quick = readmeSection("Quick start");
  assert.match(quick, /npm install && npm start/);
  assert.match(quick, /npm test/);
});

test("the walkthrough uploads a dataset, submits a job, follows it, downloads and predicts", () => {
  const walk = readmeSection("Walkthrough with curl");
  for (const route of ["/v1/datasets", "/v1/jobs", "/events", "/download?format=", "/predict"]) assert.ok(walk.includes(route), route);
});

test("the README's Documentation list links every docs/ file", () => {
  const linked = new Set(relativeLinks(readmeSection("Documentation")).map((target) => target.split("#")[0]));
  const docs = markdownFiles().filter((file) => file !== "README.md");
  assert.deepEqual(
    docs.filter((file) => !linked.has(file)),
    [],
  );
});
