// The web console in a real browser (Debian's chromium, driven by
// playwright-core) against a really running service: API and worker processes
// on their own Redis. Upload a dataset, start a job, watch its curves gain
// points while it trains, see the confusion matrix when it ends, predict an
// image. Screenshots at 1280 px and phone width go to test-artifacts/console/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { freePort, startRedis } from "../helpers/redis.js";
import { tempDir } from "../helpers/app.js";
import { startService, type ServiceProcess } from "../helpers/processes.js";
import { datasetZip } from "../helpers/training-fixtures.js";
import { makeImage } from "../helpers/dataset-archives.js";
import type { BrowserContext } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = path.resolve("test-artifacts/console");
const KEY = "console-test-key";
const WIDE = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

const name = existsSync(CHROMIUM)
  ? "the console: upload a dataset, start a job, live curves, confusion matrix and predict, in chromium at 1280 px and phone width"
  : `the console in a browser (skipped: ${CHROMIUM} is not installed; .ci/run installs Debian's chromium)`;

test(name, { skip: !existsSync(CHROMIUM), timeout: 420_000 }, async (t) => {
  const { chromium } = await import("playwright-core");
  const redis = await startRedis();
  const dataDir = await tempDir("rf-console-");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    REDIS_URL: redis.url,
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: "127.0.0.1",
    API_KEYS: `default:${KEY}`,
    LOG_LEVEL: "info",
    TFJS_BACKEND: "wasm",
  };
  const services: ServiceProcess[] = [startService("api", "src/server.ts", env), startService("worker", "src/worker.ts", env)];
  const userDataDir = await tempDir("rf-chromium-");
  let browser: BrowserContext | undefined;
  t.after(async () => {
    // Chromium writes into its profile until it has closed: close it before removing the profile.
    await browser?.close();
    await Promise.all(services.map((s) => s.stop()));
    await redis.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
    await fs.rm(userDataDir, { recursive: true, force: true });
  });
  await services[0].waitFor(/Server listening/);
  await services[1].waitFor(/worker started/);
  await fs.mkdir(ARTIFACTS, { recursive: true });
  const files = await tempDir("rf-console-files-");
  const zip = path.join(files, "pets.zip");
  await fs.writeFile(zip, await datasetZip(6));
  const image = path.join(files, "query.png");
  await fs.writeFile(image, await makeImage(101, "png"));

  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: WIDE,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const requests: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  /** A real drop of `file` on the page's drop zone (DataTransfer with a File, as a dragged file gives). */
  const drop = async (file: string, type: string) => {
    const bytes = [...(await fs.readFile(file))];
    const transfer = await page.evaluateHandle(
      ({ bytes, name, type }) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], name, { type }));
        return dt;
      },
      { bytes, name: path.basename(file), type },
    );
    await page.dispatchEvent(".drop", "drop", { dataTransfer: transfer });
  };
  const shoot = async (file: string) => {
    await page.screenshot({ path: path.join(ARTIFACTS, `${file}-1280.png`), fullPage: true });
    await page.setViewportSize(PHONE);
    await page.screenshot({ path: path.join(ARTIFACTS, `${file}-390.png`), fullPage: true });
    await page.setViewportSize(WIDE);
  };

  try {
    // The key, typed once, kept in sessionStorage.
    await page.goto(`${base}/`);
    await page.fill("#key", KEY);
    await page.click("#key-form button");

    // Datasets: upload by dropping the archive, with a progress bar.
    await drop(zip, "application/zip");
    await page.waitForURL(/#\/datasets\/ds_/, { timeout: 60_000 });
    await page.waitForSelector("[data-testid=class-counts] .bar");
    assert.deepEqual(await page.locator("[data-testid=class-counts] .bar .label").allTextContents(), ["cat", "dog", "fox"]);
    await page.waitForFunction(() => document.querySelectorAll(".thumbs img[src^='blob:']").length === 18);
    await shoot("1-dataset");

    // New job: the form over the spec, the JSON it posts beside it.
    await page.click("text=Train a model on it");
    await page.waitForSelector("[data-testid=spec-json]");
    for (const [field, value] of Object.entries({
      baseWeights: "none",
      unfrozenLayers: "0",
      epochs: "3",
      batchSize: "2",
      imageSize: "32",
      validationSplit: "0.34",
      "head.denseUnits": "8",
      "head.dropout": "0.1",
      seed: "7",
    })) {
      await page.fill(`[id="f-${field}"]`, value);
    }
    await page.selectOption('[id="f-head.pooling"]', "avg");
    const posted = JSON.parse((await page.textContent("[data-testid=spec-json]"))!);
    assert.deepEqual(
      [posted.epochs, posted.imageSize, posted.baseWeights, posted.head],
      [3, 32, "none", { pooling: "avg", denseUnits: 8, dropout: 0.1 }],
    );
    await shoot("2-new-job");
    await page.click("text=Start training");
    await page.waitForURL(/#\/jobs\/job_/);

    // Live: the curves gain their first point while the job still runs.
    await page.waitForFunction(() => document.querySelector("[data-testid=loss-chart]")?.getAttribute("data-points") === "1", undefined, {
      timeout: 240_000,
      polling: "raf",
    });
    assert.equal(await page.textContent("[data-testid=job-state]"), "running");
    assert.equal(await page.getAttribute("[data-testid=accuracy-chart]", "data-points"), "1");
    await shoot("3-job-live");

    // The end: three points per curve, the confusion matrix and the report.
    await page.waitForSelector("[data-testid=confusion-matrix]", { timeout: 240_000 });
    assert.equal(await page.textContent("[data-testid=job-state]"), "completed");
    assert.equal(await page.getAttribute("[data-testid=loss-chart]", "data-points"), "3");
    const cells = (await page.locator("[data-testid=confusion-matrix] td").allTextContents()).map(Number);
    assert.equal(cells.length, 9);
    assert.equal(
      cells.reduce((a, b) => a + b, 0),
      6,
      "two validation images per class",
    );
    await shoot("4-job-done");

    // The model: predict by dropping an image; a download goes through with the key.
    await page.click("a[href^='#/models/mdl_']");
    await page.waitForSelector("text=Predict");
    await drop(image, "image/png");
    await page.waitForSelector("[data-testid=predictions] .bar");
    assert.equal(await page.locator("[data-testid=predictions] .bar").count(), 3);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("text=TensorFlow.js (.zip)")]);
    assert.match(download.suggestedFilename(), /^mdl_.*-tfjs\.zip$/);
    await shoot("5-model");

    // The lists.
    await page.click("nav >> text=Jobs");
    await page.waitForSelector("td .state.completed");
    await page.click("nav >> text=Models");
    await page.waitForSelector("a[href^='#/models/mdl_']");

    assert.equal(await page.evaluate(() => sessionStorage.getItem("resnet-finetune.key")), KEY);
    const foreign = requests.filter((u) => !u.startsWith(base) && !u.startsWith("blob:") && !u.startsWith("data:"));
    assert.deepEqual(foreign, [], "no request leaves the service");
    assert.deepEqual(
      requests.filter((u) => u.includes(KEY)),
      [],
      "the key is never in a URL",
    );
    assert.deepEqual(pageErrors, []);
  } catch (err) {
    await page.screenshot({ path: path.join(ARTIFACTS, "failure.png"), fullPage: true }).catch(() => {});
    const tail = services.map((s) => s.output.split("\n").slice(-30).join("\n")).join("\n----\n");
    throw Object.assign(err as Error, { message: `${(err as Error).message}\n--- service output ---\n${tail}` });
  } finally {
    await fs.rm(files, { recursive: true, force: true });
  }
});
