// docs/ holds what the README links to: the operations topics are where the
// README sends readers, every relative link and anchor resolves, and every
// source path the docs name exists (so a renamed file or folder fails here
// until the docs follow it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { anchorsOf, codeSpans, markdownFiles, readMarkdown, relativeLinks, section } from "../helpers/markdown.js";

/** Top-level folders whose paths the docs name from the repository root. */
const ROOT_FOLDERS = ["src", "test", "bench", "scripts", "docker", "public"];
/** Files docs name by extension; a bare name (`config.ts`) or `folder/file.ts` is taken from src/. */
const SOURCE_FILE = /\.(ts|mjs|wat|py|sh)$/;
/** docs/architecture.md names src/ folders and files relative to src/ (`queue/`, `api/auth.ts`). */
const SRC_RELATIVE_DOC = path.join("docs", "architecture.md");

test("the docs cover Docker, GPU hosts, scaling out, ImageNet weights and troubleshooting", () => {
  const operations = readMarkdown("docs/operations.md");
  for (const title of ["Running with Docker", "Scaling out", "Troubleshooting"]) {
    assert.ok(section(operations, title) !== undefined, `docs/operations.md has "## ${title}"`);
  }
  assert.ok(section(operations, "GPU hosts", 3) !== undefined, 'docs/operations.md has "### GPU hosts"');
  assert.match(section(operations, "Troubleshooting") ?? "", /stays `queued`/);
  assert.ok(section(readMarkdown("docs/weights.md"), "ImageNet weights") !== undefined, 'docs/weights.md has "## ImageNet weights"');
});

test("every relative link in README.md and docs/ points to an existing file and heading", () => {
  const broken: string[] = [];
  for (const file of markdownFiles()) {
    for (const target of relativeLinks(readMarkdown(file))) {
      const [pathPart, anchor] = target.split("#");
      const linked = pathPart === "" ? file : path.normalize(path.join(path.dirname(file), pathPart));
      if (!existsSync(linked)) broken.push(`${file}: ${target} (no file ${linked})`);
      else if (anchor !== undefined && !(linked.endsWith(".md") && anchorsOf(readMarkdown(linked)).has(anchor))) {
        broken.push(`${file}: ${target} (no heading #${anchor} in ${linked})`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

/** The repository paths a code span names, or none when it is not a path (a route, a storage key, a command). */
function namedPaths(span: string, file: string): string[] {
  if (!/^[\w./-]+$/.test(span) || span.startsWith("/") || span.startsWith(".")) return [];
  const first = span.split("/")[0];
  if (ROOT_FOLDERS.includes(first) && span.includes("/")) return [span];
  if (file === SRC_RELATIVE_DOC && (span.includes("/") || SOURCE_FILE.test(span))) return [path.join("src", span)];
  if (SOURCE_FILE.test(span) && !span.includes("<")) return [span.includes("/") ? span : path.join("src", span)];
  return [];
}

test("every source path named in README.md and docs/ exists", () => {
  const missing: string[] = [];
  let named = 0;
  for (const file of markdownFiles()) {
    for (const span of codeSpans(readMarkdown(file))) {
      for (const p of namedPaths(span, file)) {
        named++;
        if (!existsSync(p) && !existsSync(path.join("src", p))) missing.push(`${file}: \`${span}\` (${p})`);
      }
    }
  }
  assert.ok(named > 50, `the docs name ${named} paths: the check reads them`);
  assert.deepEqual(missing, []);
});
