// The tail's training steps on ONNX Runtime: the step graph's state (weights,
// BN moving statistics, Adam moments, Adam's step count) kept here between
// steps and written back into the TF.js variables for checkpoints and saving.
import * as tf from "@tensorflow/tfjs";
import { createOrtSession, type OrtSession } from "./ort-session.js";
import { trainStepGraph, type AdamConstants, type StateTensor, type TrainStepGraph } from "./train-step-graph.js";

export interface OnnxTrainStep {
  readonly graph: TrainStepGraph;
  /**
   * One step on a batch: the cut tensors (NHWC, in the tail's input order), one-hot labels and one mask
   * per Dropout layer (ones without dropout). Returns the batch's loss.
   */
  step(batch: { cuts: Float32Array[]; labels: Float32Array; masks: Float32Array[]; count: number }): Promise<number>;
  /** The current value of a state tensor, by its graph input name (a copy). */
  value(input: string): Float32Array;
  /** Writes the weights and moving statistics into the TF.js model's variables. */
  writeBack(): void;
  close(): Promise<void>;
}

const f32 = Math.fround;

export async function createOnnxTrainStep(tail: tf.LayersModel, adam: AdamConstants): Promise<OnnxTrainStep> {
  const graph = trainStepGraph(tail, adam);
  const session: OrtSession = await createOrtSession(graph.bytes);
  const size = (s: StateTensor) => s.shape.reduce((a, b) => a * b, 1);
  let state = new Map<string, Float32Array>(
    graph.state.map((s) => [s.input, s.kind === "m" || s.kind === "v" ? new Float32Array(size(s)) : (s.variable.read().dataSync() as Float32Array).slice()]),
  );
  // Two buffers per state tensor: a step reads one and ONNX Runtime writes the other in place, then they
  // swap, so no step allocates its new state (the Dense kernel and its two moments alone are 77 M floats).
  let spare = new Map<string, Float32Array>(graph.state.map((s) => [s.input, new Float32Array(size(s))]));
  // tfjs' Adam keeps beta^t in float32 accumulators that start at beta and are multiplied after each step.
  let accBeta1 = f32(adam.beta1);
  let accBeta2 = f32(adam.beta2);
  const cutShapes = tail.inputs.map((t) => t.shape.slice(1) as number[]);
  const classes = tail.outputs[0].shape[1] as number;

  return {
    graph,
    async step({ cuts, labels, masks, count }) {
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
      graph.cutInputs.forEach((name, i) => (feeds[name] = { data: cuts[i], dims: [count, ...cutShapes[i]] }));
      feeds[graph.labels] = { data: labels, dims: [count, classes] };
      graph.dropoutMasks.forEach((m, i) => (feeds[m.input] = { data: masks[i], dims: [count, m.units] }));
      for (const s of graph.state) feeds[s.input] = { data: state.get(s.input)!, dims: s.shape };
      feeds[graph.corrections[0]] = { data: Float32Array.of(f32(1 - accBeta1)), dims: [1] };
      feeds[graph.corrections[1]] = { data: Float32Array.of(f32(1 - accBeta2)), dims: [1] };
      const into: Record<string, { data: Float32Array; dims: number[] }> = {};
      for (const s of graph.state) into[`${s.input}:new`] = { data: spare.get(s.input)!, dims: s.shape };
      const out = await session.run(feeds, into);
      [state, spare] = [spare, state];
      accBeta1 = f32(accBeta1 * f32(adam.beta1));
      accBeta2 = f32(accBeta2 * f32(adam.beta2));
      return out[graph.loss].data[0];
    },
    value: (input) => state.get(input)!.slice(),
    writeBack() {
      for (const s of graph.state) {
        if (s.kind === "weight" || s.kind === "moving") s.variable.write(tf.tensor(state.get(s.input)!, s.shape));
      }
    },
    close: () => session.release(),
  };
}
