// Reads a dataset's layout from the paths of its files: class folders
// (optionally under one top folder), train/ + val/ folders, or a labels.csv.
// The result says which class (and predefined subset) every file belongs to.
import { createReadStream } from "node:fs";
import { AppError } from "../errors.js";
import type { ExtractedFile } from "./extract-archive.js";

export type Subset = "train" | "validation";

export type LayoutRejectReason = "not_in_a_class_folder" | "not_in_labels_csv" | "missing_file";

export interface LabelledFile extends ExtractedFile {
  class: string;
  /** The predefined subset, or null when the split is random. */
  subset: Subset | null;
}

export interface Layout {
  split: "random" | "predefined";
  files: LabelledFile[];
  rejected: { path: string; reason: LayoutRejectReason }[];
}

export const LABELS_CSV_FILE = "labels.csv";
const TRAIN_DIRS = ["train"];
const VAL_DIRS = ["val", "validation"];
const MAX_CLASS_NAME = 200;

const LAYOUT_HELP =
  "expected class folders (<class>/<image>, optionally under one top folder), train/<class>/... and val/<class>/..., or images with a labels.csv (header path,label) at the root";

/** The one folder every file sits in, when stripping it still leaves a layout (files in folders, or labels.csv). */
function commonTopFolder(paths: string[]): string | null {
  const first = paths[0]?.split("/")[0];
  if (!first || !paths.every((p) => p.startsWith(`${first}/`))) return null;
  const inner = paths.map((p) => p.slice(first.length + 1));
  return inner.includes(LABELS_CSV_FILE) || inner.every((p) => p.includes("/")) ? first : null;
}

/** labels.csv uses two columns; a few more are tolerated, a line of thousands of commas is not. */
const MAX_CSV_FIELDS = 64;

/**
 * Minimal RFC 4180 (quoted fields, doubled quotes, CRLF or LF), fed text piece by piece: rows go to
 * `onRow` as they end, so a file is never held whole. Blank lines are skipped; a row of more than
 * MAX_CSV_FIELDS fields is refused.
 */
export function createCsvParser(onRow: (row: string[]) => void) {
  let row: string[] = [];
  let field = "";
  let quoted = false;
  /** The previous piece ended on a quote inside a quoted field, or on a CR: decided by the next character. */
  let pending: '"' | "\r" | "" = "";
  const endRow = () => {
    row.push(field);
    if (!(row.length === 1 && row[0].trim() === "")) onRow(row);
    row = [];
    field = "";
  };
  const step = (c: string) => {
    if (pending === '"') {
      pending = "";
      if (c === '"') {
        field += '"';
        return;
      }
      quoted = false;
    } else if (pending === "\r") {
      pending = "";
      if (c === "\n") return;
    }
    if (quoted) {
      if (c === '"') pending = '"';
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
      if (row.length >= MAX_CSV_FIELDS) {
        throw new AppError("DATASET_LABELS_INVALID", `a labels.csv row has more than ${MAX_CSV_FIELDS} fields`, { limit: MAX_CSV_FIELDS });
      }
    } else if (c === "\n" || c === "\r") {
      endRow();
      if (c === "\r") pending = "\r";
    } else field += c;
  };
  return {
    write(text: string): void {
      for (const c of text) step(c);
    },
    end(): void {
      if (pending === '"') {
        pending = "";
        quoted = false;
      }
      if (quoted) throw new AppError("DATASET_LABELS_INVALID", "labels.csv has an unterminated quoted field");
      if (field !== "" || row.length > 0) endRow();
    },
  };
}

/** All rows of a CSV text (tests and small inputs; uploads go through createCsvParser). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  const parser = createCsvParser((row) => rows.push(row));
  parser.write(text);
  parser.end();
  return rows;
}

function checkClassName(name: string, where: string): string {
  const trimmed = name.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this check refuses in a class name
  if (!trimmed || trimmed.length > MAX_CLASS_NAME || /[\u0000-\u001f]/.test(trimmed)) {
    throw new AppError(
      "DATASET_LABELS_INVALID",
      `invalid class name ${JSON.stringify(name)} in ${where}: 1 to ${MAX_CLASS_NAME} printable characters`,
      {
        class: name,
      },
    );
  }
  return trimmed;
}

function normaliseCsvPath(p: string): string {
  return p
    .trim()
    .replace(/\\/g, "/")
    .split("/")
    .filter((s) => s !== "" && s !== ".")
    .join("/");
}

export interface LayoutLimits {
  /** MAX_LABELS_BYTES: a larger labels.csv is refused before a byte of it is parsed. */
  maxLabelsBytes: number;
  /** Data rows a labels.csv may hold: no more than an archive may hold files (MAX_ARCHIVE_ENTRIES). */
  maxLabelsRows: number;
}

/** Streams labels.csv row by row: the header, then `onRow(row, line)` for each data row. */
async function readLabelsCsv(labelsFile: ExtractedFile, limits: LayoutLimits, onRow: (row: string[], line: number) => void): Promise<void> {
  if (labelsFile.size > limits.maxLabelsBytes) {
    throw new AppError("LABELS_TOO_LARGE", `labels.csv is larger than MAX_LABELS_BYTES=${limits.maxLabelsBytes} bytes`, {
      limit: limits.maxLabelsBytes,
      bytes: labelsFile.size,
    });
  }
  let line = 0;
  const parser = createCsvParser((row) => {
    line++;
    if (line === 1) {
      const header = row.map((h) => h.trim().toLowerCase());
      if (header[0] !== "path" || header[1] !== "label") {
        throw new AppError(
          "DATASET_LABELS_INVALID",
          `labels.csv must start with the header "path,label", got ${JSON.stringify(row.join(","))}`,
        );
      }
      return;
    }
    if (line - 1 > limits.maxLabelsRows) {
      throw new AppError("DATASET_LABELS_INVALID", `labels.csv has more than ${limits.maxLabelsRows} rows (MAX_ARCHIVE_ENTRIES)`, {
        limit: limits.maxLabelsRows,
      });
    }
    onRow(row, line);
  });
  const stream = createReadStream(labelsFile.file, { encoding: "utf8", highWaterMark: 64 * 1024 });
  let first = true;
  for await (const chunk of stream as AsyncIterable<string>) {
    parser.write(first ? chunk.replace(/^\uFEFF/, "") : chunk);
    first = false;
  }
  parser.end();
  if (line === 0) throw new AppError("DATASET_LABELS_INVALID", 'labels.csv must start with the header "path,label", got ""');
}

async function labelsLayout(files: ExtractedFile[], root: string, labelsFile: ExtractedFile, limits: LayoutLimits): Promise<Layout> {
  const byPath = new Map(files.map((f) => [f.path.slice(root.length), f]));
  const labels = new Map<string, string>();
  const rejected: Layout["rejected"] = [];
  await readLabelsCsv(labelsFile, limits, (row, line) => {
    if (row.length < 2) throw new AppError("DATASET_LABELS_INVALID", `labels.csv line ${line} has no label`, { line });
    const p = normaliseCsvPath(row[0]);
    const label = checkClassName(row[1], `labels.csv line ${line}`);
    const known = labels.get(p);
    if (known !== undefined && known !== label) {
      throw new AppError("DATASET_LABELS_INVALID", `labels.csv gives "${p}" two labels ("${known}" and "${label}")`, { line, path: p });
    }
    if (!byPath.has(p)) {
      if (known === undefined) rejected.push({ path: root + p, reason: "missing_file" });
    }
    labels.set(p, label);
  });
  const out: LabelledFile[] = [];
  for (const [p, f] of byPath) {
    if (f === labelsFile) continue;
    const label = labels.get(p);
    if (label === undefined) rejected.push({ path: f.path, reason: "not_in_labels_csv" });
    else out.push({ ...f, class: label, subset: null });
  }
  return { split: "random", files: out, rejected };
}

function folderLayout(files: ExtractedFile[], root: string): Layout {
  const inner = files.map((f) => ({ f, parts: f.path.slice(root.length).split("/") }));
  const tops = new Set(inner.filter((x) => x.parts.length > 1).map((x) => x.parts[0]));
  const predefined = [...tops].some((t) => TRAIN_DIRS.includes(t)) && [...tops].some((t) => VAL_DIRS.includes(t));
  const out: LabelledFile[] = [];
  const rejected: Layout["rejected"] = [];
  for (const { f, parts } of inner) {
    if (predefined) {
      const subset: Subset | null = TRAIN_DIRS.includes(parts[0]) ? "train" : VAL_DIRS.includes(parts[0]) ? "validation" : null;
      if (subset && parts.length > 2)
        out.push({ ...f, class: checkClassName(parts[1], `folder "${root}${parts[0]}/${parts[1]}"`), subset });
      else rejected.push({ path: f.path, reason: "not_in_a_class_folder" });
    } else if (parts.length > 1) {
      out.push({ ...f, class: checkClassName(parts[0], `folder "${root}${parts[0]}"`), subset: null });
    } else {
      rejected.push({ path: f.path, reason: "not_in_a_class_folder" });
    }
  }
  return { split: predefined ? "predefined" : "random", files: out, rejected };
}

/** Which class each file belongs to. Throws DATASET_LAYOUT_INVALID when no layout fits. */
export async function readLayout(files: ExtractedFile[], limits: LayoutLimits): Promise<Layout> {
  const top = commonTopFolder(files.map((f) => f.path));
  const root = top ? `${top}/` : "";
  const labelsFile = files.find((f) => f.path === `${root}${LABELS_CSV_FILE}`);
  const layout = labelsFile ? await labelsLayout(files, root, labelsFile, limits) : folderLayout(files, root);
  if (layout.files.length === 0) {
    throw new AppError("DATASET_LAYOUT_INVALID", `the archive holds no file in a recognised layout: ${LAYOUT_HELP}`, {
      files: files.length,
    });
  }
  return layout;
}
