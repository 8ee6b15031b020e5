// The console's pages, one per hash route, over the public /v1 API only.
import { blobUrl, client, data, followEvents, key, postForm, upload } from "./api.js";
import { barChart, curveChart, heatMap } from "./charts.js";
import { el, num, pct } from "./dom.js";

const view = document.getElementById("view");
let leave = () => {};

function page(title, ...children) {
  view.replaceChildren(el("h1", {}, title), ...children.filter((c) => c !== null && c !== undefined));
}

function errorBox(err) {
  return el("p", { class: "error", role: "alert" }, `${err.code ? `${err.code}: ` : ""}${err.message}`);
}

const link = (href, text) => el("a", { href }, text);
/** A two-column list of [label, value] pairs. */
const kv = (pairs) =>
  el(
    "div",
    { class: "kv" },
    pairs.flatMap(([k, v]) => [el("span", { class: "k" }, k), el("span", {}, v)]),
  );
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

/** Fills <img> elements with thumbnails fetched with the key. */
function thumb(path, caption, title) {
  const img = el("img", { alt: caption, loading: "lazy" });
  blobUrl(path).then(
    (url) => (img.src = url),
    () => img.setAttribute("alt", `${caption} (unavailable)`),
  );
  return el("figure", { title: title ?? caption }, [img, el("figcaption", {}, caption)]);
}

/** A drop zone with a file input (for keyboards and tests) that calls onFiles(FileList). */
function dropZone(text, accept, multiple, onFiles) {
  const input = el("input", {
    type: "file",
    accept,
    multiple,
    "data-testid": "file-input",
    onchange: () => input.files.length && onFiles(input.files),
  });
  const zone = el("div", { class: "drop" }, [el("p", {}, text), input]);
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) onFiles(e.dataTransfer.files);
  });
  return zone;
}

// ---- datasets

async function datasetsPage() {
  const bar = el("progress", { max: 1, value: 0, hidden: true, "data-testid": "upload-progress" });
  const status = el("p", { class: "muted" });
  const name = el("input", { placeholder: "name (optional)" });
  const zone = dropZone(
    "Drop a zip or tar(.gz) of <class>/<image> folders here, or choose it:",
    ".zip,.tar,.tgz,.gz",
    false,
    async (files) => {
      const form = new FormData();
      if (name.value.trim()) form.append("name", name.value.trim());
      form.append("file", files[0]);
      bar.hidden = false;
      status.replaceChildren(`Uploading ${files[0].name}…`);
      try {
        const dataset = await upload("/v1/datasets", form, (fraction) => {
          bar.value = fraction;
          if (fraction >= 1) status.replaceChildren("Checking the images…");
        });
        location.hash = `#/datasets/${dataset.id}`;
      } catch (err) {
        status.replaceChildren(errorBox(err));
      }
    },
  );
  const list = el("div", {}, el("p", { class: "muted" }, "Loading…"));
  page(
    "Datasets",
    el("section", { class: "card" }, [el("h2", {}, "Upload a dataset"), name, zone, bar, status]),
    el("section", { class: "card" }, [el("h2", {}, "Your datasets"), list]),
  );
  const { items } = data(await client.GET("/v1/datasets", { params: { query: { limit: 100 } } }));
  list.replaceChildren(
    items.length === 0
      ? el("p", { class: "muted" }, "No dataset yet.")
      : el("table", {}, [
          el("tr", {}, [
            el("th", {}, "name"),
            el("th", {}, "classes"),
            el("th", { class: "num" }, "images"),
            el("th", { class: "hide-narrow" }, "created"),
          ]),
          ...items.map((d) =>
            el("tr", {}, [
              el("td", {}, link(`#/datasets/${d.id}`, d.name)),
              el("td", {}, d.classes.join(", ")),
              el("td", { class: "num" }, d.imageCount),
              el("td", { class: "hide-narrow" }, when(d.createdAt)),
            ]),
          ),
        ]),
  );
}

async function datasetPage(id) {
  const [dataset, samples] = await Promise.all([
    client.GET("/v1/datasets/{id}", { params: { path: { id } } }).then(data),
    client.GET("/v1/datasets/{id}/samples", { params: { path: { id }, query: { perClass: 8 } } }).then(data),
  ]);
  const counts = el("section", { class: "card", "data-testid": "class-counts" }, [
    el("h2", {}, "Images per class"),
    barChart(dataset.classes.map((c) => ({ label: c, value: dataset.counts[c] ?? 0 }))),
    el("p", { class: "muted" }, `${dataset.imageCount} images, ${dataset.classes.length} classes, split ${dataset.split}.`),
  ]);
  const rejected = el("section", { class: "card" }, [
    el("h2", {}, `Rejected files (${dataset.rejected.length})`),
    dataset.rejected.length === 0
      ? el("p", { class: "muted" }, "Every file was usable.")
      : el("table", {}, [
          el("tr", {}, [el("th", {}, "file"), el("th", {}, "reason")]),
          ...dataset.rejected.slice(0, 200).map((r) => el("tr", {}, [el("td", {}, r.path), el("td", {}, r.reason)])),
        ]),
  ]);
  const grid = el("section", { class: "card" }, [
    el("h2", {}, "Samples"),
    ...samples.classes.map((c) =>
      el("div", {}, [
        el("h3", {}, `${c.class} (${c.count})`),
        el(
          "div",
          { class: "thumbs" },
          c.images.map((image) => thumb(`/v1/datasets/${id}/images/${image.index}/thumbnail`, image.path.split("/").pop(), image.path)),
        ),
      ]),
    ),
  ]);
  page(
    `Dataset ${dataset.name}`,
    el("p", {}, [
      el("code", {}, dataset.id),
      " ",
      el("a", { class: "button", href: `#/jobs/new?dataset=${dataset.id}` }, "Train a model on it"),
    ]),
    el("div", { class: "grid2" }, [counts, rejected]),
    grid,
  );
}

// ---- new job

/** The job spec form: the tutorial's defaults (openapi.yaml JobSpec), each field explained. */
const FIELDS = [
  {
    name: "baseWeights",
    label: "Base weights",
    value: "imagenet",
    help: "imagenet (Keras' ResNet-50 weights, which the server must have), none (random initialisation) or the id of uploaded weights.",
  },
  {
    name: "unfrozenLayers",
    label: "Unfrozen layers",
    value: 10,
    type: "int",
    help: "The last N of the base's 175 layers are trained (Keras base_model.layers[-N:]); 0 trains the head only.",
  },
  { name: "learningRate", label: "Learning rate", value: 0.0001, type: "number", help: "Adam's learning rate; fine-tuning wants it low." },
  { name: "epochs", label: "Epochs", value: 10, type: "int", help: "Passes over the training images." },
  { name: "batchSize", label: "Batch size", value: 32, type: "int", help: "Images per training step." },
  {
    name: "imageSize",
    label: "Image size",
    value: 224,
    type: "int",
    help: "Images are resized to this square size (32–512 px; ResNet-50 was trained at 224).",
  },
  {
    name: "validationSplit",
    label: "Validation split",
    value: 0.2,
    type: "number",
    help: "Share of each class held out to measure the model (0 = none).",
  },
  {
    name: "head.pooling",
    label: "Head pooling",
    value: "flatten",
    options: ["flatten", "avg"],
    help: "How the base's feature map becomes a vector: Flatten (the tutorial) or global average pooling.",
  },
  { name: "head.denseUnits", label: "Dense units", value: 256, type: "int", help: "Width of the head's hidden Dense(relu) layer." },
  { name: "head.dropout", label: "Dropout", value: 0.5, type: "number", help: "Share of the head's units dropped while training." },
  {
    name: "seed",
    label: "Seed",
    value: 42,
    type: "int",
    help: "Seeds the split, shuffling and initialisation: the same seed gives the same run.",
  },
  {
    name: "webhook.url",
    label: "Webhook URL",
    value: "",
    optional: true,
    help: "Optional: state changes of the job are POSTed there, signed (Standard Webhooks).",
  },
];

function specOf(datasetId, inputs) {
  const spec = { datasetId };
  for (const field of FIELDS) {
    const raw = inputs[field.name].value.trim();
    if (field.optional && raw === "") continue;
    const value = field.type === "int" ? Number.parseInt(raw, 10) : field.type === "number" ? Number(raw) : raw;
    const [outer, inner] = field.name.split(".");
    if (inner) {
      spec[outer] ??= {};
      spec[outer][inner] = value;
    } else {
      spec[outer] = value;
    }
  }
  return spec;
}

async function newJobPage(params) {
  const { items } = data(await client.GET("/v1/datasets", { params: { query: { limit: 100 } } }));
  const dataset = el(
    "select",
    { name: "datasetId" },
    items.map((d) => el("option", { value: d.id, selected: d.id === params.get("dataset") }, `${d.name} (${d.id})`)),
  );
  const inputs = {};
  const rows = FIELDS.map((f) => {
    const input = f.options
      ? el(
          "select",
          { id: `f-${f.name}`, name: f.name },
          f.options.map((o) => el("option", { value: o, selected: o === f.value }, o)),
        )
      : el("input", { id: `f-${f.name}`, name: f.name, value: String(f.value), inputmode: f.type ? "decimal" : undefined });
    inputs[f.name] = input;
    return el("div", { class: "field" }, [el("label", { for: `f-${f.name}` }, f.label), input, el("p", { class: "help" }, f.help)]);
  });
  const preview = el("pre", { "data-testid": "spec-json" });
  const status = el("div");
  const refresh = () => preview.replaceChildren(JSON.stringify(specOf(dataset.value, inputs), null, 2));
  const form = el("form", { class: "card", oninput: refresh, onchange: refresh }, [
    el("div", { class: "field" }, [el("label", {}, "Dataset"), dataset, el("p", { class: "help" }, "One of your datasets.")]),
    ...rows,
    el("p", {}, el("button", { type: "submit" }, "Start training")),
    status,
  ]);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const job = data(await client.POST("/v1/jobs", { body: /** @type {any} */ (specOf(dataset.value, inputs)) }));
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  });
  page(
    "New job",
    items.length === 0
      ? el("p", { class: "error" }, "Upload a dataset first.")
      : el("div", { class: "spec-form" }, [
          form,
          el("aside", { class: "card preview" }, [el("h2", {}, "What will be posted to /v1/jobs"), preview]),
        ]),
  );
  refresh();
}

// ---- jobs

async function jobsPage() {
  const { items } = data(await client.GET("/v1/jobs", { params: { query: { limit: 50 } } }));
  page(
    "Jobs",
    el(
      "section",
      { class: "card" },
      items.length === 0
        ? el("p", { class: "muted" }, ["No job yet: ", link("#/jobs/new", "start one"), "."])
        : el("table", {}, [
            el("tr", {}, [
              el("th", {}, "job"),
              el("th", {}, "state"),
              el("th", { class: "hide-narrow" }, "dataset"),
              el("th", { class: "hide-narrow" }, "created"),
            ]),
            ...items.map((j) =>
              el("tr", {}, [
                el("td", {}, link(`#/jobs/${j.id}`, `${j.id.slice(0, 12)}…`)),
                el("td", {}, el("span", { class: `state ${j.state}` }, j.state)),
                el("td", { class: "hide-narrow" }, link(`#/datasets/${j.datasetId}`, j.datasetId)),
                el("td", { class: "hide-narrow" }, when(j.createdAt)),
              ]),
            ),
          ]),
    ),
  );
}

function progressBlock() {
  const overall = el("progress", { max: 1, value: 0, "data-testid": "job-progress" });
  const epochBar = el("progress", { max: 1, value: 0 });
  const text = el("p", { class: "muted" }, "Waiting for the first batch…");
  return {
    node: el("div", {}, [el("label", {}, ["Whole job", overall]), el("label", {}, ["This epoch", epochBar]), text]),
    update(p) {
      overall.value = p.fraction;
      epochBar.value = p.batches ? p.batch / p.batches : 0;
      text.replaceChildren(`Epoch ${p.epoch} of ${p.epochs}, batch ${p.batch} of ${p.batches}`);
    },
    epochDone(epoch, epochs) {
      overall.value = epoch / epochs;
      epochBar.value = 1;
      text.replaceChildren(`Epoch ${epoch} of ${epochs} done`);
    },
  };
}

async function jobPage(id) {
  const job = data(await client.GET("/v1/jobs/{id}", { params: { path: { id } } }));
  const state = el("span", { class: `state ${job.state}`, "data-testid": "job-state" }, job.state);
  const cancel = el(
    "button",
    {
      class: "danger",
      onclick: async () => {
        cancel.disabled = true;
        try {
          data(await client.POST("/v1/jobs/{id}/cancel", { params: { path: { id } } }));
        } catch (err) {
          end.replaceChildren(errorBox(err));
        }
      },
    },
    "Cancel",
  );
  const progress = progressBlock();
  const lossBox = el("div", { class: "chart", "data-testid": "loss-chart" });
  const accBox = el("div", { class: "chart", "data-testid": "accuracy-chart" });
  const checkpoints = el("div", {}, el("p", { class: "muted" }, "None yet."));
  const end = el("div");
  page(
    "Job",
    el("section", { class: "card" }, [
      kv([
        ["id", el("code", {}, job.id)],
        ["state", state],
        ["dataset", link(`#/datasets/${job.datasetId}`, job.datasetId)],
        [
          "spec",
          `${job.spec.epochs} epochs, ${job.spec.imageSize} px, batch ${job.spec.batchSize}, unfrozen ${job.spec.unfrozenLayers}, lr ${job.spec.learningRate}, base ${job.spec.baseWeights}`,
        ],
      ]),
      progress.node,
      el("p", {}, cancel),
    ]),
    el("div", { class: "grid2" }, [el("section", { class: "card" }, lossBox), el("section", { class: "card" }, accBox)]),
    el("section", { class: "card" }, [el("h2", {}, "Checkpoints"), checkpoints]),
    end,
  );
  const loss = curveChart(lossBox, "Loss", [
    { label: "train", color: "#2f6fdf", value: (m) => m.loss },
    { label: "validation", color: "#e67e22", value: (m) => m.valLoss },
  ]);
  const accuracy = curveChart(accBox, "Accuracy", [
    { label: "train", color: "#2f6fdf", value: (m) => m.accuracy },
    { label: "validation", color: "#e67e22", value: (m) => m.valAccuracy },
  ]);
  for (const m of job.metrics ?? []) {
    loss.add(m);
    accuracy.add(m);
  }
  async function loadCheckpoints() {
    const { items: list } = data(await client.GET("/v1/jobs/{id}/checkpoints", { params: { path: { id }, query: { limit: 100 } } }));
    if (list.length === 0) return;
    checkpoints.replaceChildren(
      el("table", {}, [
        el("tr", {}, [
          el("th", {}, "epoch"),
          el("th", { class: "num" }, "loss"),
          el("th", { class: "num" }, "val loss"),
          el("th", { class: "num hide-narrow" }, "MB"),
        ]),
        ...list.map((c) =>
          el("tr", {}, [
            el("td", {}, c.epoch),
            el("td", { class: "num" }, num(c.metrics.loss)),
            el("td", { class: "num" }, num(c.metrics.valLoss)),
            el("td", { class: "num hide-narrow" }, (c.bytes / 1e6).toFixed(1)),
          ]),
        ),
      ]),
    );
  }
  const setState = (s) => {
    state.className = `state ${s}`;
    state.textContent = s;
    cancel.disabled = s === "completed" || s === "failed" || s === "cancelled";
  };
  setState(job.state);
  loadCheckpoints().catch(() => {});
  const stream = followEvents(
    `/v1/jobs/${id}/events`,
    (event, data) => {
      if (event === "state") setState(data.state);
      else if (event === "progress") {
        setState("running");
        progress.update(data);
      } else if (event === "epoch") {
        progress.epochDone(data.epoch, job.spec.epochs);
        loss.add(data);
        accuracy.add(data);
      } else if (event === "checkpoint") loadCheckpoints().catch(() => {});
      else if (["completed", "failed", "cancelled"].includes(event)) {
        setState(data.state);
        if (data.state === "completed") progress.epochDone(data.progress?.epoch ?? data.spec.epochs, data.spec.epochs);
        finished(data);
        return "stop";
      }
    },
    (err) => end.replaceChildren(errorBox(err)),
  );
  async function finished(final) {
    loadCheckpoints().catch(() => {});
    if (final.state === "failed")
      return end.replaceChildren(
        el("section", { class: "card" }, [el("h2", {}, "Failed"), errorBox(final.error ?? { message: "the job failed" })]),
      );
    if (final.state !== "completed" || !final.modelId) return;
    const model = data(await client.GET("/v1/models/{id}", { params: { path: { id: final.modelId } } }));
    end.replaceChildren(
      el("p", {}, ["Model ", link(`#/models/${model.id}`, model.id), " — downloads and predict on its page."]),
      reportNodes(model),
    );
  }
  return () => stream.stop();
}

/** The final report: confusion matrix, per-class precision/recall/F1, misclassified validation images. */
function reportNodes(model) {
  const report = model.report;
  if (!report)
    return el("section", { class: "card" }, el("p", { class: "muted" }, "The job had no validation data, so there is no report."));
  const classes = report.classes.map((c) => c.class);
  const perClass = el("table", {}, [
    el("tr", {}, [
      el("th", {}, "class"),
      el("th", { class: "num" }, "precision"),
      el("th", { class: "num" }, "recall"),
      el("th", { class: "num" }, "F1"),
      el("th", { class: "num" }, "support"),
    ]),
    ...report.classes.map((c) =>
      el("tr", {}, [
        el("td", {}, c.class),
        el("td", { class: "num" }, num(c.precision, 3)),
        el("td", { class: "num" }, num(c.recall, 3)),
        el("td", { class: "num" }, num(c.f1, 3)),
        el("td", { class: "num" }, c.support),
      ]),
    ),
    el("tr", {}, [
      el("th", {}, "macro avg"),
      el("td", { class: "num" }, num(report.macroAvg.precision, 3)),
      el("td", { class: "num" }, num(report.macroAvg.recall, 3)),
      el("td", { class: "num" }, num(report.macroAvg.f1, 3)),
      el("td", { class: "num" }, report.macroAvg.support),
    ]),
  ]);
  const wrong = report.misclassified ?? [];
  return el("div", {}, [
    el("div", { class: "grid2" }, [
      el("section", { class: "card" }, [
        el("h2", {}, `Confusion matrix (validation, accuracy ${pct(report.accuracy)})`),
        el("div", { style: "overflow:auto" }, heatMap(classes, report.confusionMatrix)),
      ]),
      el("section", { class: "card" }, [el("h2", {}, "Per class"), perClass]),
    ]),
    el("section", { class: "card", "data-testid": "misclassified" }, [
      el("h2", {}, `Validation images the model got wrong (${wrong.length})`),
      el("p", { class: "muted" }, "Each captioned labelled class → predicted class."),
      wrong.length === 0
        ? el("p", { class: "muted" }, "None.")
        : el(
            "div",
            { class: "thumbs" },
            wrong.map((w) =>
              thumb(
                `/v1/datasets/${model.datasetId}/images/${w.index}/thumbnail`,
                `${w.true} → ${w.predicted}`,
                `${w.path}: predicted ${w.predicted}, labelled ${w.true}`,
              ),
            ),
          ),
    ]),
  ]);
}

// ---- models

async function modelsPage() {
  const { items } = data(await client.GET("/v1/models", { params: { query: { limit: 100 } } }));
  page(
    "Models",
    el(
      "section",
      { class: "card" },
      items.length === 0
        ? el("p", { class: "muted" }, "No model yet: a completed job makes one.")
        : el("table", {}, [
            el("tr", {}, [
              el("th", {}, "model"),
              el("th", {}, "classes"),
              el("th", { class: "num" }, "val acc"),
              el("th", { class: "hide-narrow" }, "created"),
            ]),
            ...items.map((m) =>
              el("tr", {}, [
                el("td", {}, link(`#/models/${m.id}`, `${m.id.slice(0, 14)}…`)),
                el("td", {}, m.classes.join(", ")),
                el("td", { class: "num" }, pct(m.metrics?.valAccuracy)),
                el("td", { class: "hide-narrow" }, when(m.createdAt)),
              ]),
            ),
          ]),
    ),
  );
}

async function modelPage(id) {
  const model = data(await client.GET("/v1/models/{id}", { params: { path: { id } } }));
  const download = (format, file, label) =>
    el(
      "button",
      {
        class: "secondary",
        onclick: async () => {
          const url = await blobUrl(`/v1/models/${id}/download?format=${format}`);
          const a = el("a", { href: url, download: file });
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10_000);
        },
      },
      label,
    );
  const results = el("div", { "data-testid": "predictions" });
  const zone = dropZone("Drop images here (or choose them) to classify them:", "image/*", true, async (files) => {
    const form = new FormData();
    for (const file of [...files].slice(0, 32)) form.append("file", file, file.name);
    results.replaceChildren(el("p", { class: "muted" }, "Classifying…"));
    try {
      const answer = await postForm(`/v1/models/${id}/predict?k=${Math.min(5, model.classes.length)}`, form);
      results.replaceChildren(
        ...answer.predictions.map((p, i) =>
          el("div", { class: "card" }, [
            el(
              "div",
              { class: "thumbs" },
              el("figure", {}, [el("img", { src: URL.createObjectURL(files[i]), alt: p.file }), el("figcaption", {}, p.file)]),
            ),
            barChart(
              p.top.map((t) => ({ label: t.class, value: t.probability, text: pct(t.probability) })),
              { max: 1, className: "top" },
            ),
          ]),
        ),
      );
    } catch (err) {
      results.replaceChildren(errorBox(err));
    }
  });
  page(
    "Model",
    el("section", { class: "card" }, [
      kv([
        ["id", el("code", {}, model.id)],
        ["job", link(`#/jobs/${model.jobId}`, model.jobId)],
        ["classes", model.classes.join(", ")],
        ["image size", `${model.imageSize} px`],
        ["validation accuracy", pct(model.metrics?.valAccuracy)],
      ]),
      el("h2", {}, "Downloads"),
      el("p", {}, [download("tfjs", `${id}-tfjs.zip`, "TensorFlow.js (.zip)"), " ", download("keras", `${id}.h5`, "Keras (.h5)")]),
      el("p", { class: "muted" }, "TensorFlow.js layers model (zip with model.json, weights and labels.json) or a Keras HDF5 file."),
    ]),
    el("section", { class: "card" }, [el("h2", {}, "Predict"), zone, results]),
    reportNodes(model),
  );
}

// ---- routing

/** @type {[RegExp, (arg: any, params: URLSearchParams) => Promise<unknown>][]} */
const ROUTES = [
  [/^#\/datasets\/([\w-]+)$/, datasetPage],
  [/^#\/datasets$/, datasetsPage],
  [/^#\/jobs\/new$/, newJobPage],
  [/^#\/jobs\/([\w-]+)$/, jobPage],
  [/^#\/jobs$/, jobsPage],
  [/^#\/models\/([\w-]+)$/, modelPage],
  [/^#\/models$/, modelsPage],
];

async function route() {
  leave();
  leave = () => {};
  const [hash, query = ""] = (location.hash || "#/datasets").split("?");
  const params = new URLSearchParams(query);
  for (const [pattern, render] of ROUTES) {
    const match = pattern.exec(hash);
    if (!match) continue;
    try {
      const cleanup = await render(match[1] ?? params, params);
      if (typeof cleanup === "function") leave = /** @type {() => void} */ (cleanup);
    } catch (err) {
      page("Something went wrong", errorBox(err), err.status === 401 ? el("p", {}, "Enter your API key above.") : null);
    }
    return;
  }
  location.hash = "#/datasets";
}

const keyInput = /** @type {HTMLInputElement} */ (document.getElementById("key"));
keyInput.value = key.get();
document.getElementById("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  key.set(keyInput.value.trim());
  route();
});
window.addEventListener("hashchange", route);
route();
