// The tail's training steps on ONNX Runtime: the step graph gives the
// gradients, Adam updates each weight and its moments here in place; the
// state (weights, BN moving statistics, Adam moments, Adam's step count) is
// kept here between steps and written back into the TF.js variables for
// checkpoints and saving.
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../../errors.js";
import { adamStep } from "./adam-in-place.js";
import { allocateAdamMemory } from "./adam-memory.js";
import { createOrtSession, type FloatTensor, type OrtSession } from "./ort-session.js";
import { tailForwardGraph, trainStepGraph, type AdamConstants, type StateTensor, type TrainStepGraph } from "./train-step-graph.js";

export interface OnnxTrainStep {
  readonly graph: TrainStepGraph;
  /**
   * One step on a batch: the cut tensors (NHWC, in the tail's input order), one-hot labels and one mask
   * per Dropout layer (ones without dropout). Returns the batch mean loss and the probabilities
   * [count, classes] of the training-mode forward (for accuracy).
   */
  step(batch: {
    cuts: Float32Array[];
    labels: Float32Array;
    masks: Float32Array[];
    count: number;
  }): Promise<{ loss: number; probabilities: Float32Array }>;
  /** Inference-mode forward of the tail on the current state (BN moving statistics, no dropout): probabilities [count, classes]. */
  evaluate(batch: { cuts: Float32Array[]; count: number }): Promise<Float32Array>;
  /** The current value of a state tensor, by its graph input name (a copy). */
  value(input: string): Float32Array;
  /** Replace a state tensor's value (resume from a checkpoint): weights, moving statistics or moments. */
  setValue(input: string, data: Float32Array): void;
  /** tfjs Adam's step count and float32 beta^t accumulators (as tfjs' Adam / training/optimizer-state.ts hold them). */
  adamCounters(): { iterations: number; accBeta1: number; accBeta2: number };
  setAdamCounters(c: { iterations: number; accBeta1: number; accBeta2: number }): void;
  /** Writes the weights and moving statistics into the TF.js model's variables. */
  writeBack(): void;
  close(): Promise<void>;
}

const f32 = Math.fround;

export async function createOnnxTrainStep(tail: tf.LayersModel, adam: AdamConstants): Promise<OnnxTrainStep> {
  const graph = trainStepGraph(tail);
  const session: OrtSession = await createOrtSession(graph.bytes);
  // The inference-mode graph is made on the first evaluate: a run that never validates never builds it.
  let forward: Promise<{ session: OrtSession; stateInputs: string[] }> | undefined;
  const size = (s: StateTensor) => s.shape.reduce((a, b) => a * b, 1);
  const stateOf = new Map(graph.state.map((s) => [s.input, s]));
  // Weights, moments and gradient buffers where Adam updates them in place (see adam-memory.ts).
  const adamMemory = allocateAdamMemory(
    graph.gradients.map(({ weight, output }) => ({ length: size(stateOf.get(weight)!), hasGradient: output !== null })),
  );
  const state = new Map<string, Float32Array>();
  graph.gradients.forEach(({ weight }, i) => {
    const arrays = adamMemory.arrays[i];
    arrays.weight.set(stateOf.get(weight)!.variable.read().dataSync() as Float32Array);
    state.set(weight, arrays.weight).set(`${weight}:m`, arrays.m).set(`${weight}:v`, arrays.v);
  });
  for (const s of graph.state) {
    if (!state.has(s.input)) state.set(s.input, (s.variable.read().dataSync() as Float32Array).slice());
  }
  // Moving statistics: two buffers each, a step reads one and ONNX Runtime writes the other, then they swap.
  const moving = graph.state.filter((s) => s.kind === "moving");
  const spare = new Map<string, Float32Array>(moving.map((s) => [s.input, new Float32Array(size(s))]));
  const graphInputs = graph.state.filter((s) => s.kind === "weight" || s.kind === "moving");
  // tfjs' Adam keeps beta^t in float32 accumulators that start at beta and are multiplied after each step.
  let iterations = 0;
  let accBeta1 = f32(adam.beta1);
  let accBeta2 = f32(adam.beta2);
  const cutShapes = tail.inputs.map((t) => t.shape.slice(1) as number[]);
  const classes = tail.outputs[0].shape[1] as number;
  const cutFeeds = (cuts: Float32Array[], count: number, names: string[]) => {
    const feeds: Record<string, FloatTensor> = {};
    names.forEach((name, i) => {
      feeds[name] = { data: cuts[i], dims: [count, ...cutShapes[i]] };
    });
    return feeds;
  };

  return {
    graph,
    async step({ cuts, labels, masks, count }) {
      const feeds = cutFeeds(cuts, count, graph.cutInputs);
      feeds[graph.labels] = { data: labels, dims: [count, classes] };
      graph.dropoutMasks.forEach((m, i) => {
        feeds[m.input] = { data: masks[i], dims: [count, m.units] };
      });
      for (const s of graphInputs) feeds[s.input] = { data: state.get(s.input)!, dims: s.shape };
      const into: Record<string, FloatTensor> = {};
      for (const s of moving) into[`${s.input}:new`] = { data: spare.get(s.input)!, dims: s.shape };
      // Gradients go straight into Adam's buffers, so no step allocates them.
      graph.gradients.forEach(({ weight, output }, i) => {
        if (output) into[output] = { data: adamMemory.arrays[i].gradient!, dims: stateOf.get(weight)!.shape };
      });
      const out = await session.run(feeds, into);
      for (const s of moving) {
        const updated = spare.get(s.input)!;
        spare.set(s.input, state.get(s.input)!);
        state.set(s.input, updated);
      }
      adamMemory.step(adamStep(adam, f32(1 - accBeta1), f32(1 - accBeta2)));
      iterations++;
      accBeta1 = f32(accBeta1 * f32(adam.beta1));
      accBeta2 = f32(accBeta2 * f32(adam.beta2));
      return { loss: out[graph.loss].data[0], probabilities: out[graph.probabilities].data };
    },
    async evaluate({ cuts, count }) {
      forward ??= (async () => {
        const g = tailForwardGraph(tail);
        return { session: await createOrtSession(g.bytes), stateInputs: g.stateInputs };
      })();
      const f = await forward;
      const feeds = cutFeeds(cuts, count, graph.cutInputs);
      for (const input of f.stateInputs) feeds[input] = { data: state.get(input)!, dims: stateOf.get(input)!.shape };
      const out = await f.session.run(feeds);
      return out.probabilities.data;
    },
    value: (input) => state.get(input)!.slice(),
    setValue(input, data) {
      const s = stateOf.get(input);
      if (!s) throw new AppError("INTERNAL", `the tail's training step has no state tensor ${input}`);
      if (data.length !== size(s)) {
        const code = s.kind === "m" || s.kind === "v" ? "OPTIMIZER_STATE_INVALID" : "WEIGHTS_MISMATCH";
        throw new AppError(code, `${input} has ${size(s)} values [${s.shape.join(", ")}], got ${data.length}`);
      }
      state.get(input)!.set(data);
    },
    adamCounters: () => ({ iterations, accBeta1, accBeta2 }),
    setAdamCounters(c) {
      iterations = c.iterations;
      accBeta1 = f32(c.accBeta1);
      accBeta2 = f32(c.accBeta2);
    },
    writeBack() {
      for (const s of graph.state) {
        if (s.kind === "weight" || s.kind === "moving") s.variable.write(tf.tensor(state.get(s.input)!, s.shape));
      }
    },
    async close() {
      await session.release();
      if (forward) await (await forward).session.release();
    },
  };
}
