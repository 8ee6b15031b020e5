// npm run bench: the training-speed and API benchmark suite. Writes
// bench/results/bench-<date>.json and prints a table; a benchmark, not a test.
//   npm run bench                      everything (full 224 px end-to-end: tens of minutes on wasm)
//   npm run bench -- --only e2e        one or more sections: trunk,train,e2e,api,predict,tailstep
//   npm run bench -- --quick           64 px, 2 epochs, shorter runs: checks the harness in a few minutes
import { spawn } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { selectBackend } from "../src/backend/select-backend.js";
import { gradientThreadCanHelp, installTrainingSpeedups } from "../src/backend/wasm-speedups/index.js";
import { ORT_MALLOC_ENV } from "../src/engine/onnx/ort-session.js";
import { loadConfig } from "../src/config.js";
import { machineInfo, printReport } from "./bench-report.js";
import { apiThroughput } from "./suite/api-throughput.js";
import { endToEnd } from "./suite/end-to-end.js";
import { predictLatency } from "./suite/predict-latency.js";
import { tailStep } from "./suite/tail-step.js";
import type { Figure, SuiteOptions } from "./suite/figure.js";
import { trainStep } from "./suite/train-step.js";
import { trunkForward } from "./suite/trunk-forward.js";

const SECTIONS = ["trunk", "train", "e2e", "api", "predict", "tailstep"] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    only: { type: "string", default: SECTIONS.join(",") },
    quick: { type: "boolean", default: false },
    // Internal: run the sections here and write their figures to this file (one child process per section).
    "figures-out": { type: "string" },
  },
});
const only = values.only.split(",").map((s) => s.trim());
const unknown = only.filter((s) => !SECTIONS.includes(s as Section));
if (unknown.length > 0) {
  console.error(`unknown section(s) ${unknown.join(", ")}: choose from ${SECTIONS.join(", ")}`);
  process.exit(2);
}

const config = loadConfig();
const backend = await selectBackend(config.tfjsBackend);
// A section's child that trains or runs the trunk does so as a training worker does: with the training
// speed-ups (and the helper thread where it can help); the API and predict sections run as the API does, without.
const trains = only.some((s) => s !== "api" && s !== "predict");
if (values["figures-out"] && trains) await installTrainingSpeedups(backend.name, { gradientThread: config.gradientThread });
const gradientThread = config.gradientThread && gradientThreadCanHelp();
const opts: SuiteOptions = { quick: values.quick, backend: backend.name };
const sizes = values.quick ? [64] : [64, 224];
const runs: Record<Section, () => Promise<Figure[]>> = {
  trunk: () => trunkForward(opts, sizes),
  train: () => trainStep(opts, sizes),
  e2e: () => endToEnd(opts),
  api: () => apiThroughput(opts),
  predict: () => predictLatency(opts),
  tailstep: () => tailStep(opts, sizes),
};

/**
 * Each section in a child process of its own: a fresh wasm heap (it never
 * shrinks, so a section that grew it to gigabytes would leave the next one
 * less room), and a section that dies does not take the others' figures with it.
 */
async function runInChild(section: Section): Promise<Figure[]> {
  const out = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "rf-bench-")), "figures.json");
  const args = [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    "--only",
    section,
    "--figures-out",
    out,
    ...(values.quick ? ["--quick"] : []),
  ];
  // Sections that run the tail's ONNX step graph get glibc's settings (see ORT_MALLOC_ENV), as a training child does.
  const env = section === "tailstep" || section === "e2e" ? { ...process.env, ...ORT_MALLOC_ENV } : process.env;
  const child = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"], env });
  const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
  try {
    if (code !== 0) throw new Error(`section ${section} failed (${signal ?? `exit code ${code}`})`);
    return JSON.parse(await fs.readFile(out, "utf8")) as Figure[];
  } finally {
    await fs.rm(path.dirname(out), { recursive: true, force: true });
  }
}

const started = new Date();
const figures: Figure[] = [];
const failures: string[] = [];
for (const section of SECTIONS.filter((s) => only.includes(s))) {
  const t0 = performance.now();
  try {
    figures.push(...(values["figures-out"] ? await runs[section]() : await runInChild(section)));
    if (!values["figures-out"]) console.error(`${section}: done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  } catch (error) {
    failures.push((error as Error).message);
    console.error((error as Error).message);
  }
}
if (values["figures-out"]) {
  await fs.writeFile(values["figures-out"], JSON.stringify(figures));
  process.exit(failures.length > 0 ? 1 : 0);
}

const machine = machineInfo();
const report = { started: started.toISOString(), quick: opts.quick, sections: only, gradientThread, machine, figures, failures };
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "results");
await fs.mkdir(dir, { recursive: true });
const file = path.join(dir, `bench-${started.toISOString().replace(/[:.]/g, "-")}.json`);
await fs.writeFile(file, `${JSON.stringify(report, null, 2)}\n`);

printReport(
  machine,
  [
    `${opts.quick ? "QUICK mode (64 px, 2 epochs, short runs): not the figures docs/performance.md quotes" : "full run"}; written to ${path.relative(process.cwd(), file)}`,
    `filter-gradient helper thread (GRADIENT_THREAD): ${gradientThread ? "on in training steps" : "off"}`,
  ],
  figures.map((f) => ({
    section: f.section,
    figure: f.name,
    value: Number(f.value.toPrecision(4)),
    unit: f.unit,
    backend: f.backend,
    imageSize: f.imageSize ?? "",
    batchSize: f.batchSize ?? "",
    threads: f.threads ?? "",
  })),
);
const details = new Map(figures.filter((f) => f.detail).map((f) => [f.detail!, f.name.split(":")[0]]));
for (const [detail, name] of details) console.log(`${name}: ${detail}`);
for (const failure of failures) console.log(`FAILED: ${failure}`);
if (failures.length > 0) process.exitCode = 1;
