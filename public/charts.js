// The console's pictures: training curves (uPlot, served by the API), and
// bar charts and a confusion-matrix heat map drawn as plain HTML.
import { el } from "./dom.js";

/**
 * Horizontal bars; bars scale to the largest value (or `max`).
 * @param {{ label: string, value: number, text?: string }[]} rows
 * @param {{ max?: number, className?: string }} [options]
 */
export function barChart(rows, { max, className = "" } = {}) {
  const top = max ?? Math.max(1, ...rows.map((r) => r.value));
  return el(
    "div",
    { class: `bars ${className}` },
    rows.map((r) =>
      el("div", { class: "bar" }, [
        el("span", { class: "label", title: r.label }, r.label),
        el("div", {}, el("div", { class: "fill", style: `width:${(100 * r.value) / top}%` })),
        el("span", { class: "num" }, r.text ?? String(r.value)),
      ]),
    ),
  );
}

/** The confusion matrix: rows are true classes, columns predictions; darker = more of the row. */
export function heatMap(classes, matrix) {
  const head = el("tr", {}, [el("th", {}, "true \\ predicted"), ...classes.map((c) => el("th", {}, c))]);
  const rows = matrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    return el("tr", {}, [
      el("th", {}, classes[i]),
      ...row.map((n, j) => {
        const share = n / total;
        const hue = i === j ? 140 : 5;
        return el(
          "td",
          {
            style: `background:hsla(${hue},60%,45%,${0.08 + 0.8 * share});color:${share > 0.55 ? "#fff" : "inherit"}`,
            title: `${n} of ${total}`,
          },
          String(n),
        );
      }),
    ]);
  });
  return el("table", { class: "heat", "data-testid": "confusion-matrix" }, [head, ...rows]);
}

/**
 * A uPlot line chart of per-epoch series that grows as epochs arrive.
 * `series`: [{label, color, value: (metrics) => number|null}].
 */
export function curveChart(container, title, series) {
  const points = [];
  let plot = null;
  const width = () => Math.max(260, container.clientWidth - 8);
  function data() {
    return [points.map((m) => m.epoch), ...series.map((s) => points.map((m) => s.value(m)))];
  }
  function draw() {
    if (!plot) {
      plot = new uPlot(
        {
          title,
          width: width(),
          height: 220,
          scales: { x: { time: false } },
          // Whole epochs on the x axis.
          axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] }, {}],
          series: [
            { label: "epoch" },
            ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: true, size: 6 } })),
          ],
        },
        data(),
        container,
      );
      new ResizeObserver(() => plot.setSize({ width: width(), height: 220 })).observe(container);
    } else {
      plot.setData(data());
    }
    container.dataset.points = String(points.length);
  }
  return {
    add(metrics) {
      const at = points.findIndex((m) => m.epoch === metrics.epoch);
      if (at >= 0) points[at] = metrics;
      else points.push(metrics);
      points.sort((a, b) => a.epoch - b.epoch);
      draw();
    },
  };
}
