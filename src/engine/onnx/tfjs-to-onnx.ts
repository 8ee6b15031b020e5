// Writes an inference ONNX graph from one of the project's TF.js layers models
// (the transfer model, its frozen trunk or its tail): the same inputs (NHWC,
// as TF.js) and outputs, named after their layers. Inside, images are NCHW,
// ONNX's native layout: one Transpose after each image input and before each
// image output or Flatten. Frozen BatchNormalization layers are folded into
// the convolution before them, and a ZeroPadding2D into the Conv (or, on a
// ReLU's output, the MaxPool) after it: a separate Pad node would make ONNX
// Runtime leave its NCHWc layout and copy the image twice around it.
import type * as tf from "@tensorflow/tfjs";
import {
  AttributeType,
  DataType,
  encodeModel,
  type Attribute,
  type GraphMessage,
  type NodeMessage,
  type TensorMessage,
} from "./onnx-proto.js";

/** Name of the batch dimension in the graph's inputs and outputs. */
export const BATCH_DIM = "N";

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

/** A value of the graph: its name and whether it is a 4-d image held NCHW. */
interface Value {
  name: string;
  nchw: boolean;
  /** Known >= 0 (a ReLU's output): zero padding before a MaxPool then equals the MaxPool's own padding. */
  nonNegative?: boolean;
  /** A ZeroPadding2D not written yet: `name` is its unpadded input; the next Conv or MaxPool may take it as its pads. */
  pending?: { layer: string; pads: Pads };
}

/** ONNX's order for 2-d pads: top, left, bottom, right. */
type Pads = [number, number, number, number];

/** A convolution still open to folding: its weights are written out at the end, so a BN can scale them. */
interface ConvWeights {
  kernel: Float32Array; // OIHW
  bias: Float32Array;
}

type Config = Record<string, unknown>;

function attrInts(name: string, ints: number[]): Attribute {
  return { name, type: AttributeType.INTS, ints };
}
function attrInt(name: string, i: number): Attribute {
  return { name, type: AttributeType.INT, i };
}
function attrString(name: string, s: string): Attribute {
  return { name, type: AttributeType.STRING, s: new TextEncoder().encode(s) };
}
function pair(v: unknown): [number, number] {
  return Array.isArray(v) ? [v[0] as number, v[1] as number] : [v as number, v as number];
}

function floatTensor(name: string, dims: number[], data: Float32Array): TensorMessage {
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
function int64Tensor(name: string, values: number[]): TensorMessage {
  const data = BigInt64Array.from(values.map(BigInt));
  return { name, dims: [values.length], dataType: DataType.INT64, rawData: new Uint8Array(data.buffer) };
}

/** HWIO (TF.js) -> OIHW (ONNX). */
function kernelToOihw(hwio: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(hwio.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + h) * kw + w] = hwio[((h * kw + w) * ci + i) * co + o];
  return out;
}

function weightsByName(layer: tf.layers.Layer): Map<string, { shape: number[]; values: Float32Array }> {
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const w of layer.weights) {
    // "conv1_bn/gamma" -> "gamma"; the variable's tensor is read, not copied or disposed.
    const short = w.originalName.slice(w.originalName.lastIndexOf("/") + 1);
    out.set(short, { shape: w.shape as number[], values: w.read().dataSync() as Float32Array });
  }
  return out;
}

function unsupported(layer: tf.layers.Layer, why: string): Error {
  return new Error(`cannot write layer ${layer.name} (${layer.getClassName()}) to ONNX: ${why}`);
}

export interface OnnxModel {
  bytes: Uint8Array;
  inputNames: string[];
  outputNames: string[];
}

/** The model's inference graph as ONNX bytes. Inputs and outputs keep TF.js' shapes (NHWC) and take their layers' names. */
export function tfjsToOnnx(model: tf.LayersModel): OnnxModel {
  const nodes: NodeMessage[] = [];
  const initializers: TensorMessage[] = [];
  const convs = new Map<string, ConvWeights & { dims: number[] }>(); // by kernel initializer name
  const values = new Map<number, Value>(); // by symbolic tensor id
  const convOf = new Map<number, string>(); // tensor id -> kernel name of the linear conv that made it
  const inputIds = new Set(model.inputs.map((t) => t.id));
  const outputIds = new Set(model.outputs.map((t) => t.id));

  // How many layers read each tensor: a conv output read only by its BN can be folded.
  const readers = new Map<number, number>();
  const counted = new Set<number>();
  const countReaders = (t: tf.SymbolicTensor): void => {
    if (counted.has(t.id)) return;
    counted.add(t.id);
    if (inputIds.has(t.id)) return;
    for (const input of t.sourceLayer.inboundNodes[t.nodeIndex].inputTensors) {
      readers.set(input.id, (readers.get(input.id) ?? 0) + 1);
      countReaders(input);
    }
  };
  model.outputs.forEach(countReaders);

  let counter = 0;
  const node = (opType: string, input: string[], output: string, attribute: Attribute[] = []): string => {
    nodes.push({ opType, name: `${opType}_${counter++}`, input, output: [output], attribute });
    return output;
  };

  // A pending padding becomes a Pad node once, for the readers that cannot take it as their pads.
  const padded = new Map<string, Value>();
  const materialise = (x: Value): Value => {
    if (!x.pending) return x;
    const { layer, pads } = x.pending;
    let out = padded.get(layer);
    if (!out) {
      const [top, left, bottom, right] = pads;
      initializers.push(int64Tensor(`${layer}/pads`, [0, 0, top, left, 0, 0, bottom, right]));
      out = { name: node("Pad", [x.name, `${layer}/pads`], `${layer}/out`), nchw: true, nonNegative: x.nonNegative };
      padded.set(layer, out);
    }
    return out;
  };
  /** The pads a Conv or MaxPool with "valid" padding takes from its input, [] when it has none. */
  const padsOf = (x: Value): { pads: number[]; unpadded: Value } =>
    x.pending ? { pads: x.pending.pads, unpadded: { name: x.name, nchw: true, nonNegative: x.nonNegative } } : { pads: [], unpadded: x };

  const activation = (layer: tf.layers.Layer, x: Value, kind: unknown): Value => {
    switch (kind ?? "linear") {
      case "linear":
        return x;
      case "relu":
        return { name: node("Relu", [x.name], `${layer.name}/relu`), nchw: x.nchw, nonNegative: true };
      case "softmax":
        return { name: node("Softmax", [x.name], `${layer.name}/softmax`, [attrInt("axis", x.nchw ? 1 : -1)]), nchw: x.nchw };
      default:
        throw unsupported(layer, `activation ${String(kind)}`);
    }
  };

  const convert = (layer: tf.layers.Layer, read: Value[], inputTensors: tf.SymbolicTensor[]): { value: Value; conv?: string } => {
    const config = layer.getConfig() as Config;
    const className = layer.getClassName();
    const valid = config.padding === "valid";
    // Only a "valid" Conv, and a "valid" MaxPool of values >= 0 with pads smaller than its window, take a pending padding as their pads.
    const poolSize = pair(config.poolSize);
    const takesPads =
      read.length === 1 &&
      read[0].pending !== undefined &&
      valid &&
      (className === "Conv2D" ||
        (className === "MaxPooling2D" && read[0].nonNegative === true && read[0].pending.pads.every((p, i) => p < poolSize[i % 2])));
    const inputs = takesPads ? read : read.map(materialise);
    const [x] = inputs;
    const out = `${layer.name}/out`;
    if (config.dataFormat !== undefined && config.dataFormat !== "channelsLast")
      throw unsupported(layer, `dataFormat ${String(config.dataFormat)}`);
    switch (className) {
      case "Conv2D": {
        const w = weightsByName(layer);
        const kernel = w.get("kernel");
        if (!kernel || !x.nchw) throw unsupported(layer, "no kernel or not an image input");
        const [kh, kw, , co] = kernel.shape;
        const kernelName = `${layer.name}/kernel`;
        const { pads, unpadded } = padsOf(x);
        convs.set(kernelName, {
          kernel: kernelToOihw(kernel.values, kernel.shape),
          bias: w.get("bias")?.values.slice() ?? new Float32Array(co),
          dims: [co, kernel.shape[2], kh, kw],
        });
        const conv = node("Conv", [unpadded.name, kernelName, `${layer.name}/bias`], out, [
          attrInts("kernel_shape", [kh, kw]),
          attrInts("strides", pair(config.strides)),
          attrInts("dilations", pair(config.dilationRate)),
          pads.length > 0 ? attrInts("pads", pads) : attrString("auto_pad", config.padding === "same" ? "SAME_UPPER" : "VALID"),
        ]);
        const value = { name: conv, nchw: true };
        const act = config.activation ?? "linear";
        return act === "linear" ? { value, conv: kernelName } : { value: activation(layer, value, act) };
      }
      case "BatchNormalization": {
        const w = weightsByName(layer);
        const channels = w.get("moving_mean")!.values.length;
        const axis = config.axis as number;
        if (!(x.nchw && (axis === -1 || axis === 3))) throw unsupported(layer, `axis ${axis}`);
        const eps = config.epsilon as number;
        const gamma = w.get("gamma")?.values ?? new Float32Array(channels).fill(1);
        const beta = w.get("beta")?.values ?? new Float32Array(channels);
        const mean = w.get("moving_mean")!.values;
        const variance = w.get("moving_variance")!.values;
        // Inference mode (y = gamma * (x - mean) / sqrt(var + eps) + beta) as a scale and a shift per channel.
        const scale = new Float32Array(channels);
        const shift = new Float32Array(channels);
        for (let c = 0; c < channels; c++) {
          scale[c] = gamma[c] / Math.sqrt(variance[c] + eps);
          shift[c] = beta[c] - mean[c] * scale[c];
        }
        const source = inputTensors[0];
        const kernelName = convOf.get(source.id);
        if (kernelName && readers.get(source.id) === 1 && !outputIds.has(source.id)) {
          const conv = convs.get(kernelName)!;
          const perOut = conv.kernel.length / channels;
          for (let o = 0; o < channels; o++) {
            for (let k = o * perOut; k < (o + 1) * perOut; k++) conv.kernel[k] *= scale[o];
            conv.bias[o] = conv.bias[o] * scale[o] + shift[o];
          }
          return { value: x };
        }
        initializers.push(
          floatTensor(`${layer.name}/scale`, [channels, 1, 1], scale),
          floatTensor(`${layer.name}/shift`, [channels, 1, 1], shift),
        );
        const scaled = node("Mul", [x.name, `${layer.name}/scale`], `${layer.name}/scaled`);
        return { value: { name: node("Add", [scaled, `${layer.name}/shift`], out), nchw: true } };
      }
      case "Activation":
        return { value: activation(layer, x, config.activation) };
      case "Add": {
        let sum = inputs[0].name;
        for (let i = 1; i < inputs.length; i++)
          sum = node("Add", [sum, inputs[i].name], i === inputs.length - 1 ? out : `${layer.name}/sum${i - 1}`);
        return { value: { name: sum, nchw: x.nchw } };
      }
      case "ZeroPadding2D": {
        // Written by its reader: as that Conv's or MaxPool's pads, else as a Pad node (materialise).
        const [[top, bottom], [left, right]] = config.padding as [[number, number], [number, number]];
        if (!x.nchw) throw unsupported(layer, "not an image input");
        return { value: { ...x, pending: { layer: layer.name, pads: [top, left, bottom, right] } } };
      }
      case "MaxPooling2D": {
        const { pads, unpadded } = padsOf(x);
        return {
          value: {
            name: node("MaxPool", [unpadded.name], out, [
              attrInts("kernel_shape", poolSize),
              attrInts("strides", pair(config.strides ?? config.poolSize)),
              pads.length > 0 ? attrInts("pads", pads) : attrString("auto_pad", config.padding === "same" ? "SAME_UPPER" : "VALID"),
            ]),
            nchw: true,
            nonNegative: x.nonNegative,
          },
        };
      }
      case "GlobalAveragePooling2D": {
        const pooled = node("GlobalAveragePool", [x.name], `${layer.name}/pooled`);
        return { value: { name: node("Flatten", [pooled], out, [attrInt("axis", 1)]), nchw: false } };
      }
      case "Flatten": {
        // Keras flattens in NHWC order, and the next Dense's weights rows follow that order.
        const nhwc = x.nchw ? node("Transpose", [x.name], `${layer.name}/nhwc`, [attrInts("perm", TO_NHWC)]) : x.name;
        return { value: { name: node("Flatten", [nhwc], out, [attrInt("axis", 1)]), nchw: false } };
      }
      case "Dense": {
        if (x.nchw) throw unsupported(layer, "a Dense on an image (rank 4) input");
        const w = weightsByName(layer);
        const kernel = w.get("kernel")!;
        const units = kernel.shape[1];
        initializers.push(
          floatTensor(`${layer.name}/kernel`, kernel.shape, kernel.values),
          floatTensor(`${layer.name}/bias`, [units], w.get("bias")?.values ?? new Float32Array(units)),
        );
        const gemm = node("Gemm", [x.name, `${layer.name}/kernel`, `${layer.name}/bias`], out);
        return { value: activation(layer, { name: gemm, nchw: false }, config.activation) };
      }
      case "Dropout":
        return { value: x }; // identity at inference
      default:
        throw unsupported(layer, "no ONNX writer for this layer class");
    }
  };

  const graphInputs = model.inputs.map((t) => ({ name: t.sourceLayer.name, shape: t.shape }));
  for (const t of model.inputs) {
    const name = t.sourceLayer.name;
    values.set(
      t.id,
      t.shape.length === 4
        ? { name: node("Transpose", [name], `${name}/nchw`, [attrInts("perm", TO_NCHW)]), nchw: true }
        : { name, nchw: false },
    );
  }

  const visit = (t: tf.SymbolicTensor): Value => {
    const known = values.get(t.id);
    if (known) return known;
    const layerNode = t.sourceLayer.inboundNodes[t.nodeIndex];
    if (layerNode.outputTensors.length !== 1) throw unsupported(t.sourceLayer, "more than one output");
    const inputs = layerNode.inputTensors.map(visit);
    const { value, conv } = convert(t.sourceLayer, inputs, layerNode.inputTensors);
    values.set(t.id, value);
    if (conv) convOf.set(t.id, conv);
    return value;
  };

  const outputNames: string[] = [];
  for (const t of model.outputs) {
    const value = materialise(visit(t));
    const name = t.sourceLayer.name;
    if (value.nchw) node("Transpose", [value.name], name, [attrInts("perm", TO_NHWC)]);
    else node("Identity", [value.name], name);
    outputNames.push(name);
  }
  for (const [name, conv] of convs) {
    initializers.push(
      floatTensor(name, conv.dims, conv.kernel),
      floatTensor(name.replace(/\/kernel$/, "/bias"), [conv.dims[0]], conv.bias),
    );
  }

  const graph: GraphMessage = {
    name: model.name,
    node: nodes,
    initializer: initializers,
    input: graphInputs.map(({ name, shape }) => ({ name, elemType: DataType.FLOAT, shape: [BATCH_DIM, ...(shape.slice(1) as number[])] })),
    output: model.outputs.map((t, i) => ({
      name: outputNames[i],
      elemType: DataType.FLOAT,
      shape: [BATCH_DIM, ...(t.shape.slice(1) as number[])],
    })),
  };
  return { bytes: encodeModel(graph), inputNames: graphInputs.map((i) => i.name), outputNames };
}
