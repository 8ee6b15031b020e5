// train()'s steps on ONNX Runtime: the tail's training-step graph (forward,
// backward and Adam in one run, engine/onnx/onnx-train-step.ts) fed with each
// batch's data, dropout masks drawn from the job's seed per step, and Adam's
// state converted to and from the checkpoint format, so a job can resume on
// either engine. Validation runs the same graph's inference mode.
import * as tf from "@tensorflow/tfjs";
import type { ModelInputs } from "../datasets/batch-source.js";
import type { OnnxTrainStep } from "../engine/onnx/onnx-train-step.js";
import { AppError } from "../errors.js";
import { dropoutMasks, type MaskedLayer } from "./dropout-masks.js";
import { createRunningMean } from "./loss-metrics.js";
import type { WeightMoments } from "./optimizer-state.js";
import type { TailStepper } from "./tail-stepper.js";
import { yieldToEventLoop } from "./yield.js";

/** Keras' (and tfjs') epsilon in categorical cross-entropy's clip. */
const LOSS_EPSILON = 1e-7;

async function floats(t: tf.Tensor): Promise<Float32Array> {
  const data = await t.data();
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

async function cutsOf(xs: ModelInputs): Promise<Float32Array[]> {
  return Promise.all((Array.isArray(xs) ? xs : [xs]).map(floats));
}

function argMax(values: Float32Array, offset: number, classes: number): number {
  let best = offset;
  for (let j = offset + 1; j < offset + classes; j++) if (values[j] > values[best]) best = j;
  return best - offset;
}

/** Per batch: summed Keras categorical cross-entropy (renormalise, clip, -sum y log p) and correct count. */
function scoreBatch(
  probabilities: Float32Array,
  labels: Float32Array,
  count: number,
): { lossSum: number; correct: number; finite: boolean } {
  const classes = labels.length / count;
  let lossSum = 0;
  let correct = 0;
  let finite = true;
  for (let i = 0; i < count; i++) {
    const row = i * classes;
    let total = 0;
    for (let j = 0; j < classes; j++) total += probabilities[row + j];
    let loss = 0;
    for (let j = 0; j < classes; j++) {
      const p = probabilities[row + j];
      if (!Number.isFinite(p)) finite = false;
      if (labels[row + j] !== 0) loss -= labels[row + j] * Math.log(Math.min(Math.max(p / total, LOSS_EPSILON), 1 - LOSS_EPSILON));
    }
    lossSum += loss;
    if (argMax(probabilities, row, classes) === argMax(labels, row, classes)) correct += 1;
  }
  return { lossSum, correct, finite };
}

function invalid(message: string, details?: Record<string, unknown>): AppError {
  return new AppError("OPTIMIZER_STATE_INVALID", message, details);
}

/** `step` must have been created from `tail`'s current weights; `seed` is the job's (dropout masks). */
export function createOnnxTailStepper(tail: tf.LayersModel, step: OnnxTrainStep, seed: number): TailStepper {
  const masked: MaskedLayer[] = step.graph.dropoutMasks.map((m) => ({
    units: m.units,
    rate: Number(tail.getLayer(m.layer).getConfig().rate ?? 0),
  }));
  const momentsOf = (weight: tf.LayerVariable, kind: "m" | "v") => step.graph.state.find((s) => s.kind === kind && s.variable === weight)!;
  return {
    engine: "onnxruntime",
    async step(xs, ys, epoch, batch) {
      const count = ys.shape[0];
      const labels = await floats(ys);
      const out = await step.step({ cuts: await cutsOf(xs), labels, masks: dropoutMasks(masked, count, seed, epoch, batch), count });
      const { correct, finite } = scoreBatch(out.probabilities, labels, count);
      // As on TF.js: outputs that are not finite make the loss NaN, whatever the clipped loss says.
      return { loss: finite ? out.loss : Number.NaN, correct };
    },
    async evaluate(source, signal) {
      const loss = createRunningMean();
      let correct = 0;
      for await (const { xs, ys } of source.batches(0)) {
        try {
          const count = ys.shape[0];
          const labels = await floats(ys);
          const probabilities = await step.evaluate({ cuts: await cutsOf(xs), count });
          const scored = scoreBatch(probabilities, labels, count);
          loss.add(scored.finite ? scored.lossSum / count : Number.NaN, count);
          correct += scored.correct;
        } finally {
          for (const t of [...(Array.isArray(xs) ? xs : [xs]), ys]) t.dispose();
        }
        await yieldToEventLoop();
        if (signal?.aborted) return null;
      }
      return { loss: loss.value, accuracy: correct / loss.count };
    },
    async exportOptimizerState() {
      const counters = step.adamCounters();
      // As tfjs, which creates its moments at the first step: none before it.
      const moments: WeightMoments[] =
        counters.iterations === 0
          ? []
          : tail.trainableWeights.map((weight) => {
              const m = momentsOf(weight, "m");
              return {
                name: weight.originalName,
                shape: [...m.shape],
                m: step.value(m.input),
                v: step.value(momentsOf(weight, "v").input),
              };
            });
      return { kind: "adam", iterations: counters.iterations, accBeta1: counters.accBeta1, accBeta2: counters.accBeta2, moments };
    },
    async importOptimizerState(state) {
      if (state.kind !== "adam") throw invalid(`optimizer state of kind "${String(state.kind)}", expected "adam"`);
      const trainable = tail.trainableWeights;
      const extra = state.moments.map((m) => m.name).filter((name) => !trainable.some((w) => w.originalName === name));
      if (extra.length > 0)
        throw invalid(`the optimizer state has moments for weights that are not trainable here: ${extra.slice(0, 20).join(", ")}`, {
          extra,
        });
      if (state.moments.length > 0) {
        for (const weight of trainable) {
          const moments = state.moments.find((m) => m.name === weight.originalName);
          if (!moments) throw invalid(`the optimizer state has no moments for trainable weight "${weight.originalName}"`);
          const m = momentsOf(weight, "m");
          if (moments.shape.join() !== m.shape.join()) {
            throw invalid(`moments of "${weight.originalName}" have shape [${moments.shape}], the weight [${m.shape}]`);
          }
          step.setValue(m.input, moments.m);
          step.setValue(momentsOf(weight, "v").input, moments.v);
        }
      }
      step.setAdamCounters({ iterations: state.iterations, accBeta1: state.accBeta1, accBeta2: state.accBeta2 });
    },
    // writeBack assigns a new tensor to each variable, which then shares its data: tidy frees the tensors, not the data.
    syncWeights: () => tf.tidy(() => step.writeBack()),
    dispose: () => step.close(),
  };
}
