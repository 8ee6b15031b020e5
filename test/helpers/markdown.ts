// Reading the project's Markdown as GitHub renders it, so tests can check the
// docs against the tree: sections, heading anchors, relative links, code spans.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/** README.md and every docs/*.md, as paths relative to the repository root. */
export function markdownFiles(): string[] {
  const docs = readdirSync("docs")
    .filter((name) => name.endsWith(".md"))
    .sort();
  return ["README.md", ...docs.map((name) => path.join("docs", name))];
}

/** The text outside fenced code blocks (a `#` comment in a shell block is no heading). */
export function proseOf(markdown: string): string {
  let fenced = false;
  return markdown
    .split("\n")
    .map((line) => {
      if (/^\s*```/.test(line)) {
        fenced = !fenced;
        return "";
      }
      return fenced ? "" : line;
    })
    .join("\n");
}

/** The section under the heading `## title` (or the level given), code blocks included, up to the next heading of its level or above. */
export function section(markdown: string, title: string, level = 2): string | undefined {
  const prose = proseOf(markdown).split("\n");
  const start = prose.indexOf(`${"#".repeat(level)} ${title}`);
  if (start < 0) return undefined;
  const end = prose.findIndex((line, i) => i > start && /^#+ /.test(line) && line.indexOf(" ") <= level);
  return markdown
    .split("\n")
    .slice(start, end < 0 ? undefined : end)
    .join("\n");
}

/** GitHub's anchor of a heading: lower case, punctuation (backticks, colons...) dropped, spaces to hyphens. */
export function slugOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor the file's headings give, a repeated heading getting `-1`, `-2`... as on GitHub. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of proseOf(markdown).matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = slugOf(m[1]);
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** The targets of `[text](target)` links that stay in the repository (no scheme). */
export function relativeLinks(markdown: string): string[] {
  return [...proseOf(markdown).matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((target) => !/^[a-z]+:/i.test(target));
}

/** The contents of inline code spans (`...`) outside fenced blocks. */
export function codeSpans(markdown: string): string[] {
  return [...proseOf(markdown).matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
}

export function readMarkdown(file: string): string {
  return readFileSync(file, "utf8");
}
