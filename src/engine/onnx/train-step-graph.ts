// One training step of the tail as a single ONNX graph: the forward pass in
// training mode and the backward pass, as ordinary ONNX ops. It takes the cut
// tensors, the one-hot labels, each Dropout's mask (already scaled by
// 1 / (1 - rate)), every trainable weight and BN moving statistic in TF.js
// layout; it returns the loss, the probabilities, each weight's gradient
// ("<input>@grad") and the new moving statistics ("<input>:new"). Adam is the
// caller's (OnnxTrainStep), in place.
// What TF.js computes is the reference: BatchNormalization uses batch
// statistics and updates its moving ones as tfjs-layers does, Adam is
// tfjs' (and the project's FusedAdamOptimizer's) formula. The same writer
// gives the tail's inference-mode forward (tailForwardGraph) for evaluation.
import type * as tf from "@tensorflow/tfjs";
import {
  AttributeType,
  DataType,
  encodeModel,
  type Attribute,
  type NodeMessage,
  type TensorMessage,
  type ValueInfoMessage,
} from "./onnx-proto.js";
import { convAsGemm, convNchw } from "./conv-step.js";
import { BATCH_DIM } from "./tfjs-to-onnx.js";

export interface AdamConstants {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** A tensor the step keeps: a trainable weight, a moving statistic or an Adam moment. */
export interface StateTensor {
  /**
   * Its name. Weights and moving statistics are graph inputs of that name; a moving statistic's new value is
   * the output `${input}:new`. Moments ("<weight>:m", "<weight>:v") are not in the graph.
   */
  input: string;
  shape: number[];
  /** The TF.js variable it mirrors (for moments: the weight's). */
  variable: tf.LayerVariable;
  kind: "weight" | "moving" | "m" | "v";
}

export interface TrainStepGraph {
  bytes: Uint8Array;
  /** Cut tensor inputs, in the tail's input order (NHWC, as TF.js). */
  cutInputs: string[];
  labels: string;
  /** One per Dropout layer: [batch, units], the layer's mask times 1 / (1 - rate). */
  dropoutMasks: { input: string; layer: string; units: number }[];
  state: StateTensor[];
  /**
   * Every weight (state input of kind "weight") and the output holding its gradient of the batch mean loss,
   * or null when the loss does not depend on it. Adam is the caller's: the graph does not update weights.
   */
  gradients: { weight: string; output: string | null }[];
  loss: string;
  /** [batch, classes]: the training-mode forward's softmax output. */
  probabilities: string;
}

/** The tail's inference-mode forward: BN on its moving statistics, no dropout; weights and statistics are inputs. */
export interface TailForwardGraph {
  bytes: Uint8Array;
  cutInputs: string[];
  /** Every weight and moving statistic it reads, named as the step graph's state inputs. */
  stateInputs: string[];
  probabilities: string;
}

/** Batch and pixel axes of an NHWC image: what BN's statistics and a conv bias's gradient reduce over. */
const PIXEL_AXES = [0, 1, 2];
/** Keras' (and tfjs') epsilon in categorical cross-entropy's clip. */
const LOSS_EPSILON = 1e-7;

export interface Value {
  name: string;
  /** [H, W, C] for images (held NHWC, as TF.js), [units] for flat values; without the batch. */
  shape: number[];
  image: boolean;
}

type Config = Record<string, unknown>;

function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number];
}

/** Forward nodes, backward closures run in reverse, and gradient sums. */
function createBuilder() {
  const nodes: NodeMessage[] = [];
  const initializers: TensorMessage[] = [];
  const inputs: ValueInfoMessage[] = [];
  const outputs: ValueInfoMessage[] = [];
  const backward: (() => void)[] = [];
  const grads = new Map<string, string[]>();
  let counter = 0;

  const fresh = (hint: string) => `${hint}#${counter++}`;
  const op = (opType: string, input: string[], attrs: Attribute[] = [], output = fresh(opType)): string => {
    nodes.push({ opType, name: fresh(`n_${opType}`), input, output: [output], attribute: attrs });
    return output;
  };
  const floats = (hint: string, dims: number[], values: ArrayLike<number>): string => {
    const name = fresh(hint);
    const data = Float32Array.from(values);
    initializers.push({ name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer) });
    return name;
  };
  const int64s = (values: number[]): string => {
    const name = fresh("i64");
    const data = BigInt64Array.from(values.map(BigInt));
    initializers.push({ name, dims: [values.length], dataType: DataType.INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  };
  const ints = (name: string, values: number[]): Attribute => ({ name, type: AttributeType.INTS, ints: values });
  const int = (name: string, i: number): Attribute => ({ name, type: AttributeType.INT, i });
  const scalar = (v: number) => floats("c", [1], [v]);
  const scalarTensor = (v: number) => floats("c", [], [v]);
  const sum = (x: string, axes: number[], keep = 0) => op("ReduceSum", [x, int64s(axes)], [int("keepdims", keep)]);
  const mean = (x: string, axes: number[], keep = 1) => op("ReduceMean", [x], [ints("axes", axes), int("keepdims", keep)]);

  return {
    nodes,
    initializers,
    inputs,
    outputs,
    op,
    floats,
    int64s,
    ints,
    int,
    scalar,
    scalarTensor,
    sum,
    mean,
    input(name: string, shape: (number | string)[]): string {
      inputs.push({ name, elemType: DataType.FLOAT, shape });
      return name;
    },
    output(value: string, name: string, shape: (number | string)[]): void {
      op("Identity", [value], [], name);
      outputs.push({ name, elemType: DataType.FLOAT, shape });
    },
    /** A graph output computed by one node written straight to it: no Identity copy (which costs on big weights). */
    outputOp(opType: string, input: string[], name: string, shape: (number | string)[]): string {
      op(opType, input, [], name);
      outputs.push({ name, elemType: DataType.FLOAT, shape });
      return name;
    },
    /**
     * The nodes that lead to a graph output. Backward closures add the gradient of every layer input,
     * including ones nothing reads (a Dense's input gradient when the Dense sits right on the cut).
     */
    liveNodes(): NodeMessage[] {
      const wanted = new Set(outputs.map((o) => o.name));
      const live: NodeMessage[] = [];
      for (let i = nodes.length - 1; i >= 0; i--) {
        if (!nodes[i].output.some((o) => wanted.has(o))) continue;
        live.push(nodes[i]);
        for (const input of nodes[i].input) wanted.add(input);
      }
      return live.reverse();
    },
    /** Makes `value` (a node's output) a graph output named `name`, without a copy. */
    rename(value: string, name: string, shape: (number | string)[]): void {
      for (const node of nodes) {
        node.output = node.output.map((o) => (o === value ? name : o));
        node.input = node.input.map((i) => (i === value ? name : i));
      }
      outputs.push({ name, elemType: DataType.FLOAT, shape });
    },
    onBackward(fn: () => void) {
      backward.push(fn);
    },
    addGrad(value: string, grad: string) {
      const list = grads.get(value) ?? [];
      list.push(grad);
      grads.set(value, list);
    },
    /** The summed gradient of `value`, or null when nothing downstream depends on it. */
    gradOf(value: string): string | null {
      const list = grads.get(value);
      if (!list || list.length === 0) return null;
      return list.slice(1).reduce((total, g) => op("Add", [total, g]), list[0]);
    },
    runBackward() {
      for (let i = backward.length - 1; i >= 0; i--) backward[i]();
    },
  };
}

export type Builder = ReturnType<typeof createBuilder>;

function unsupported(layer: tf.layers.Layer, why: string): Error {
  return new Error(`cannot write the training step of layer ${layer.name} (${layer.getClassName()}) to ONNX: ${why}`);
}

function variablesOf(layer: tf.layers.Layer): Map<string, tf.LayerVariable> {
  return new Map(layer.weights.map((w) => [w.originalName.slice(w.originalName.lastIndexOf("/") + 1), w]));
}

/** "same" padding as TF computes it (the extra pixel at the end), or none. */
function convPads(config: Config, size: [number, number], kernel: [number, number], strides: [number, number]): number[] {
  if (config.padding !== "same") return [0, 0, 0, 0];
  const begin: number[] = [];
  const end: number[] = [];
  for (let d = 0; d < 2; d++) {
    const out = Math.ceil(size[d] / strides[d]);
    const total = Math.max((out - 1) * strides[d] + kernel[d] - size[d], 0);
    begin.push(Math.floor(total / 2));
    end.push(total - Math.floor(total / 2));
  }
  return [...begin, ...end];
}

/**
 * The tail's layers as ONNX nodes: in training mode, the training-mode forward with each layer's backward
 * registered (run by trainStepGraph); else the inference-mode forward. Every layer must be trainable.
 */
function writeTail(tail: tf.LayersModel, training: boolean) {
  const g = createBuilder();
  const state: StateTensor[] = [];
  const dropoutMasks: TrainStepGraph["dropoutMasks"] = [];
  const weightGrads: { variable: tf.LayerVariable; input: string; grad: () => string | null }[] = [];
  const values = new Map<number, Value>();

  const stateInput = (variable: tf.LayerVariable, kind: StateTensor["kind"], suffix = ""): string => {
    const input = `${variable.name}${suffix}`;
    state.push({ input, shape: variable.shape as number[], variable, kind });
    return g.input(input, variable.shape as number[]);
  };
  const weight = (variable: tf.LayerVariable | undefined, layer: tf.layers.Layer): string => {
    if (!variable) throw unsupported(layer, "a weight is missing (use_bias/center/scale false)");
    if (!variable.trainable) throw unsupported(layer, `${variable.name} is frozen: the tail must be trainable throughout`);
    const input = stateInput(variable, "weight");
    const gradName = `${input}@grad`;
    weightGrads.push({ variable, input, grad: () => g.gradOf(gradName) });
    return input;
  };

  // The cut's gradient is nobody's: its nodes are left out.
  const cutValues = new Set<string>();
  const needsGrad = (v: Value) => !cutValues.has(v.name);
  const cutInputs = tail.inputs.map((t) => {
    const name = t.sourceLayer.name;
    const shape = t.shape.slice(1) as number[];
    g.input(name, [BATCH_DIM, ...shape]);
    const value = { name, shape, image: shape.length === 3 };
    cutValues.add(name);
    values.set(t.id, value);
    return name;
  });
  let logits: string | null = null;

  const relu = (x: Value): Value => {
    const y = g.op("Relu", [x.name]);
    g.onBackward(() => {
      const dy = g.gradOf(y);
      if (dy) g.addGrad(x.name, g.op("Mul", [dy, g.op("Cast", [g.op("Greater", [x.name, g.scalar(0)])], [g.int("to", DataType.FLOAT)])]));
    });
    return { ...x, name: y };
  };

  const layerStep = (layer: tf.layers.Layer, inputs: Value[]): Value => {
    const config = layer.getConfig() as Config;
    const [x] = inputs;
    const vars = variablesOf(layer);
    switch (layer.getClassName()) {
      case "Conv2D": {
        if (!x.image) throw unsupported(layer, "not an image input");
        if (pair(config.dilationRate).some((d) => d !== 1)) throw unsupported(layer, "dilation");
        // ResNet's convolutions are linear (BatchNormalization and a ReLU layer follow): refuse the rest rather than train it as linear.
        if ((config.activation ?? "linear") !== "linear") throw unsupported(layer, `activation ${String(config.activation)}`);
        const kernelVar = vars.get("kernel");
        const kernel = weight(kernelVar, layer);
        const bias = weight(vars.get("bias"), layer);
        const [kh, kw, ci, co] = kernelVar!.shape as number[];
        const strides = pair(config.strides);
        const [h, w] = x.shape;
        const pads = convPads(config, [h, w], [kh, kw], strides);
        const ho = Math.floor((h + pads[0] + pads[2] - kh) / strides[0]) + 1;
        const wo = Math.floor((w + pads[1] + pads[3] - kw) / strides[1]) + 1;
        const y =
          strides[0] === 1 && strides[1] === 1
            ? convAsGemm(g, x, kernel, bias, [kh, kw, ci, co], pads, [ho, wo], needsGrad(x))
            : convNchw(g, x, kernel, bias, [kh, kw, ci, co], strides, pads, [ho, wo], needsGrad(x));
        return { name: y, shape: [ho, wo, co], image: true };
      }
      case "BatchNormalization": {
        if (!x.image || !(config.axis === -1 || config.axis === 3)) throw unsupported(layer, `axis ${String(config.axis)}`);
        const channels = x.shape[2];
        const gamma = weight(vars.get("gamma"), layer);
        const beta = weight(vars.get("beta"), layer);
        const movingMean = stateInput(vars.get("moving_mean")!, "moving");
        const movingVariance = stateInput(vars.get("moving_variance")!, "moving");
        if (!training) {
          // tfjs' batchNorm: (x - mean) * gamma / sqrt(variance + epsilon) + beta, on the moving statistics.
          const scale = g.op("Div", [gamma, g.op("Sqrt", [g.op("Add", [movingVariance, g.scalar(config.epsilon as number)])])]);
          const y = g.op("Add", [g.op("Mul", [g.op("Sub", [x.name, movingMean]), scale]), beta]);
          return { ...x, name: y };
        }
        const batchMean = g.mean(x.name, PIXEL_AXES);
        const centred = g.op("Sub", [x.name, batchMean]);
        const batchVariance = g.mean(g.op("Mul", [centred, centred]), PIXEL_AXES);
        const inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [batchVariance, g.scalar(config.epsilon as number)])])]);
        const xhat = g.op("Mul", [centred, inv]);
        const y = g.op("Add", [g.op("Mul", [xhat, gamma]), beta]);
        // tfjs-layers: moving -= (moving - batch statistic) * (1 - momentum), with the biased batch variance.
        const decay = g.scalar(1 - (config.momentum as number));
        const flat = g.int64s([channels]);
        for (const [moving, batch] of [
          [movingMean, batchMean],
          [movingVariance, batchVariance],
        ]) {
          const updated = g.op("Sub", [moving, g.op("Mul", [g.op("Sub", [moving, g.op("Reshape", [batch, flat])]), decay])]);
          g.output(updated, `${moving}:new`, [channels]);
        }
        g.onBackward(() => {
          const dy = g.gradOf(y);
          if (!dy) return;
          g.addGrad(`${beta}@grad`, g.sum(dy, PIXEL_AXES));
          g.addGrad(`${gamma}@grad`, g.sum(g.op("Mul", [dy, xhat]), PIXEL_AXES));
          const dxhat = g.op("Mul", [dy, gamma]);
          const projection = g.op("Mul", [xhat, g.mean(g.op("Mul", [dxhat, xhat]), PIXEL_AXES)]);
          g.addGrad(x.name, g.op("Mul", [inv, g.op("Sub", [g.op("Sub", [dxhat, g.mean(dxhat, PIXEL_AXES)]), projection])]));
        });
        return { ...x, name: y };
      }
      case "Activation": {
        if (config.activation === "relu") return relu(x);
        if (config.activation === "linear") return x;
        throw unsupported(layer, `activation ${String(config.activation)}`);
      }
      case "Add": {
        const y = inputs.slice(1).reduce((total, v) => g.op("Add", [total, v.name]), x.name);
        g.onBackward(() => {
          const dy = g.gradOf(y);
          if (dy) for (const v of inputs) g.addGrad(v.name, dy);
        });
        return { ...x, name: y };
      }
      case "Flatten": {
        if (!x.image) return x;
        const [h, w, c] = x.shape;
        // Keras flattens NHWC, as the image is held: the Dense weights' rows are in that order.
        const y = g.op("Flatten", [x.name], [g.int("axis", 1)]);
        g.onBackward(() => {
          const dy = g.gradOf(y);
          if (dy && needsGrad(x)) g.addGrad(x.name, g.op("Reshape", [dy, g.int64s([-1, h, w, c])]));
        });
        return { name: y, shape: [c * h * w], image: false };
      }
      case "GlobalAveragePooling2D": {
        const [h, w, c] = x.shape;
        const y = g.mean(x.name, [1, 2], 0);
        g.onBackward(() => {
          const dy = g.gradOf(y);
          if (dy && needsGrad(x))
            g.addGrad(
              x.name,
              g.op("Mul", [
                g.op("Reshape", [dy, g.int64s([-1, 1, 1, c])]),
                g.floats("avg", [1, h, w, 1], new Array(h * w).fill(1 / (h * w))),
              ]),
            );
        });
        return { name: y, shape: [c], image: false };
      }
      case "Dense": {
        if (x.image) throw unsupported(layer, "a Dense on an image input");
        const kernelVar = vars.get("kernel");
        const kernel = weight(kernelVar, layer);
        const bias = weight(vars.get("bias"), layer);
        const units = kernelVar!.shape[1] as number;
        const z = g.op("Gemm", [x.name, kernel, bias]);
        g.onBackward(() => {
          const dz = g.gradOf(z);
          if (!dz) return;
          g.addGrad(`${kernel}@grad`, g.op("Gemm", [x.name, dz], [g.int("transA", 1)]));
          g.addGrad(`${bias}@grad`, g.sum(dz, [0]));
          g.addGrad(x.name, g.op("Gemm", [dz, kernel], [g.int("transB", 1)]));
        });
        const out = { name: z, shape: [units], image: false };
        if (config.activation === "relu") return relu(out);
        if (config.activation === "linear") return out;
        if (config.activation === "softmax") {
          if (logits) throw unsupported(layer, "a second softmax");
          logits = z;
          return out; // the loss takes the logits: softmax and cross-entropy differentiate together
        }
        throw unsupported(layer, `activation ${String(config.activation)}`);
      }
      case "Dropout": {
        if (!training) return x;
        const mask = g.input(`${layer.name}/mask`, [BATCH_DIM, ...x.shape]);
        dropoutMasks.push({ input: mask, layer: layer.name, units: x.shape.reduce((a, b) => a * b, 1) });
        const y = g.op("Mul", [x.name, mask]);
        g.onBackward(() => {
          const dy = g.gradOf(y);
          if (dy) g.addGrad(x.name, g.op("Mul", [dy, mask]));
        });
        return { ...x, name: y };
      }
      default:
        throw unsupported(layer, "no training-step writer for this layer class");
    }
  };

  const visit = (t: tf.SymbolicTensor): Value => {
    const known = values.get(t.id);
    if (known) return known;
    const node = t.sourceLayer.inboundNodes[t.nodeIndex];
    const value = layerStep(t.sourceLayer, node.inputTensors.map(visit));
    values.set(t.id, value);
    return value;
  };
  if (tail.outputs.length !== 1) throw new Error("the tail must have one output");
  visit(tail.outputs[0]);
  if (!logits) throw new Error("the tail must end in a Dense softmax layer");
  return { g, state, dropoutMasks, weightGrads, cutInputs, logits: logits as string };
}

/** The tail's inference-mode forward, reading the same state inputs as its training step. */
export function tailForwardGraph(tail: tf.LayersModel): TailForwardGraph {
  const { g, state, cutInputs, logits } = writeTail(tail, false);
  g.output(g.op("Softmax", [logits], [g.int("axis", -1)]), "probabilities", [BATCH_DIM, tail.outputs[0].shape[1] as number]);
  const bytes = encodeModel({
    name: `${tail.name}_forward`,
    node: g.liveNodes(),
    initializer: g.initializers,
    input: g.inputs,
    output: g.outputs,
  });
  return { bytes, cutInputs, stateInputs: state.map((s) => s.input), probabilities: "probabilities" };
}

/** The tail's training step. Every layer of the tail must be trainable (what splitAtFrozenBoundary gives). */
export function trainStepGraph(tail: tf.LayersModel): TrainStepGraph {
  const { g, state, dropoutMasks, weightGrads, cutInputs, logits } = writeTail(tail, true);
  const labels = g.input("labels", [BATCH_DIM, ...(tail.outputs[0].shape.slice(1) as number[])]);

  // Loss as Keras reports it: renormalise, clip, -sum y log p, mean over the batch.
  const probabilities = g.op("Softmax", [logits], [g.int("axis", -1)]);
  g.output(probabilities, "probabilities", [BATCH_DIM, tail.outputs[0].shape[1] as number]);
  const renormalised = g.op("Div", [probabilities, g.sum(probabilities, [1], 1)]);
  const clipped = g.op("Clip", [renormalised, g.scalarTensor(LOSS_EPSILON), g.scalarTensor(1 - LOSS_EPSILON)]);
  const batchSize = g.op("Cast", [g.op("Shape", [labels], [g.int("start", 0), g.int("end", 1)])], [g.int("to", DataType.FLOAT)]);
  const perExample = g.op("Neg", [g.sum(g.op("Mul", [labels, g.op("Log", [clipped])]), [1])]);
  g.output(g.op("Div", [g.sum(perExample, [0], 1), batchSize]), "loss", [1]);
  g.addGrad(logits, g.op("Div", [g.op("Sub", [probabilities, labels]), batchSize]));
  g.runBackward();

  // Adam is not in the graph: each weight's gradient is an output, and OnnxTrainStep updates the weight
  // and its moments in place in one pass (as ONNX ops it was ~10 passes, each a new tensor of the weight's size).
  const gradients: TrainStepGraph["gradients"] = [];
  for (const { variable, input, grad } of weightGrads) {
    const gradient = grad();
    if (gradient) g.rename(gradient, `${input}@grad`, variable.shape as number[]);
    gradients.push({ weight: input, output: gradient ? `${input}@grad` : null });
    state.push({ input: `${input}:m`, shape: variable.shape as number[], variable, kind: "m" });
    state.push({ input: `${input}:v`, shape: variable.shape as number[], variable, kind: "v" });
  }

  const bytes = encodeModel({
    name: `${tail.name}_train_step`,
    node: g.liveNodes(),
    initializer: g.initializers,
    input: g.inputs,
    output: g.outputs,
  });
  return { bytes, cutInputs, labels, dropoutMasks, state, gradients, loss: "loss", probabilities: "probabilities" };
}
