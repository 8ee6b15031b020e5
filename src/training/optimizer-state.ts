// Adam's state (step count and per-weight moments) out of and back into a
// tfjs AdamOptimizer, keyed by model weight name, so a resumed job continues
// exactly where its checkpoint left off; plus a byte encoding for storage.
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../errors.js";

export interface WeightMoments {
  /** The model weight's name, e.g. "conv5_block3_3_conv/kernel" (LayerVariable.originalName: stable across processes). */
  name: string;
  shape: number[];
  /** First moment (m). */
  m: Float32Array;
  /** Second moment (v). */
  v: Float32Array;
}

export interface OptimizerState {
  kind: "adam";
  /** Steps taken so far (Keras' `optimizer.iterations`). */
  iterations: number;
  /**
   * beta1^(iterations+1) and beta2^(iterations+1) as the optimizer holds them
   * (float32, accumulated by repeated products): restoring them as they are,
   * rather than recomputing the power, keeps a resumed run bit-identical.
   */
  accBeta1: number;
  accBeta2: number;
  /** In the order of the model's trainable weights; empty before the first step (tfjs creates moments lazily). */
  moments: WeightMoments[];
}

/** What we use of tfjs' AdamOptimizer, private fields included (accBeta*, moments). */
interface AdamInternals extends Pick<tf.Optimizer, "getWeights" | "setWeights" | "iterations"> {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: unknown[];
}

function adamOf(optimizer: tf.Optimizer): AdamInternals {
  if (optimizer.getClassName() !== "Adam") {
    throw new AppError("OPTIMIZER_STATE_INVALID", `only Adam state is supported, got a ${optimizer.getClassName()} optimizer`);
  }
  return optimizer as unknown as AdamInternals;
}

export async function exportOptimizerState(optimizer: tf.Optimizer, model: tf.LayersModel): Promise<OptimizerState> {
  const adam = adamOf(optimizer);
  const weightName = new Map(model.weights.map((w) => [w.name, w.originalName]));
  // getWeights() is [iter, m_0..m_k, v_0..v_k]; moment i is named "<engine variable name>/m" (or "/v").
  const [iter, ...slots] = await adam.getWeights();
  const half = slots.length / 2;
  const moments: WeightMoments[] = [];
  for (let i = 0; i < half; i++) {
    const engineName = slots[i].name.replace(/\/m$/, "");
    const name = weightName.get(engineName);
    if (name === undefined) {
      throw new AppError("OPTIMIZER_STATE_INVALID", `the optimizer holds moments for "${engineName}", which is not a weight of this model`);
    }
    moments.push({
      name,
      shape: slots[i].tensor.shape,
      m: (await slots[i].tensor.data()) as Float32Array,
      v: (await slots[half + i].tensor.data()) as Float32Array,
    });
  }
  const iterations = (await iter.tensor.data())[0];
  iter.tensor.dispose();
  return {
    kind: "adam",
    iterations,
    accBeta1: (await adam.accBeta1.data())[0],
    accBeta2: (await adam.accBeta2.data())[0],
    moments,
  };
}

/**
 * Loads `state` into a fresh Adam optimizer (no step taken yet) for `model`,
 * whose trainable weights must be exactly the ones the state has moments for.
 * train() passes its varList in model.trainableWeights order, and tfjs pairs
 * moment i with variable i, so the moments are loaded in that order.
 */
export async function importOptimizerState(optimizer: tf.Optimizer, model: tf.LayersModel, state: OptimizerState): Promise<void> {
  const adam = adamOf(optimizer);
  if (state.kind !== "adam") {
    throw new AppError("OPTIMIZER_STATE_INVALID", `optimizer state of kind "${String(state.kind)}", expected "adam"`);
  }
  if (adam.iterations !== 0 || adam.accumulatedFirstMoment.length !== 0) {
    throw new AppError("OPTIMIZER_STATE_INVALID", "optimizer state can only be loaded into an optimizer that has not taken a step");
  }
  const trainable = model.trainableWeights;
  const ordered =
    state.moments.length === 0
      ? []
      : trainable.map((weight) => {
          const moments = state.moments.find((m) => m.name === weight.originalName);
          if (!moments) {
            throw new AppError(
              "OPTIMIZER_STATE_INVALID",
              `the optimizer state has no moments for trainable weight "${weight.originalName}"`,
            );
          }
          if (!tf.util.arraysEqual(moments.shape, weight.shape as number[])) {
            throw new AppError(
              "OPTIMIZER_STATE_INVALID",
              `moments of "${weight.originalName}" have shape [${moments.shape}], the weight [${weight.shape}]`,
            );
          }
          return { weight, moments };
        });
  if (ordered.length !== state.moments.length) {
    const extra = state.moments.map((m) => m.name).filter((name) => !trainable.some((w) => w.originalName === name));
    throw new AppError(
      "OPTIMIZER_STATE_INVALID",
      `the optimizer state has moments for weights that are not trainable here: ${extra.slice(0, 20).join(", ")}`,
      { extra },
    );
  }
  const values = [
    { name: "iter", tensor: tf.scalar(state.iterations, "int32") },
    ...ordered.map(({ weight, moments }) => ({ name: `${weight.name}/m`, tensor: tf.tensor(moments.m, moments.shape) })),
    ...ordered.map(({ weight, moments }) => ({ name: `${weight.name}/v`, tensor: tf.tensor(moments.v, moments.shape) })),
  ];
  // setWeights makes variables sharing these tensors' data, so ours can go.
  await adam.setWeights(values);
  tf.dispose(values.map((v) => v.tensor));
  tf.tidy(() => {
    adam.accBeta1.assign(tf.scalar(state.accBeta1));
    adam.accBeta2.assign(tf.scalar(state.accBeta2));
  });
}

// Byte layout: "RFADAM1\n", uint32 LE header length, JSON header
// {iterations, accBeta1, accBeta2, moments: [{name, shape}]}, zero padding to a
// multiple of 4, then per weight its m then v as float32 LE.
const MAGIC = new TextEncoder().encode("RFADAM1\n");

interface Header {
  iterations: number;
  accBeta1: number;
  accBeta2: number;
  moments: { name: string; shape: number[] }[];
}

export function encodeOptimizerState(state: OptimizerState): Uint8Array {
  const header: Header = {
    iterations: state.iterations,
    accBeta1: state.accBeta1,
    accBeta2: state.accBeta2,
    moments: state.moments.map(({ name, shape }) => ({ name, shape })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = Math.ceil((MAGIC.length + 4 + json.length) / 4) * 4;
  const floats = state.moments.reduce((n, m) => n + m.m.length + m.v.length, 0);
  const bytes = new Uint8Array(dataStart + floats * 4);
  bytes.set(MAGIC, 0);
  new DataView(bytes.buffer).setUint32(MAGIC.length, json.length, true);
  bytes.set(json, MAGIC.length + 4);
  const data = new Float32Array(bytes.buffer, dataStart, floats);
  let offset = 0;
  for (const { m, v } of state.moments) {
    data.set(m, offset);
    data.set(v, offset + m.length);
    offset += m.length + v.length;
  }
  return bytes;
}

function unreadable(reason: string): AppError {
  return new AppError("OPTIMIZER_STATE_INVALID", `optimizer state file unreadable: ${reason}`);
}

export function decodeOptimizerState(bytes: Uint8Array): OptimizerState {
  if (bytes.length < MAGIC.length + 4 || !MAGIC.every((b, i) => bytes[i] === b)) throw unreadable("not an optimizer state");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLength = view.getUint32(MAGIC.length, true);
  if (MAGIC.length + 4 + jsonLength > bytes.length) throw unreadable("truncated header");
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + jsonLength))) as Header;
  } catch {
    throw unreadable("header is not JSON");
  }
  const dataStart = Math.ceil((MAGIC.length + 4 + jsonLength) / 4) * 4;
  const sizes = header.moments.map((m) => m.shape.reduce((a, b) => a * b, 1));
  const floats = sizes.reduce((a, b) => a + 2 * b, 0);
  if (bytes.length !== dataStart + floats * 4) throw unreadable(`expected ${dataStart + floats * 4} bytes, found ${bytes.length}`);
  // Copy into an aligned buffer of its own: `bytes` may be a view at any offset. Not bytes.slice(): on a
  // Node Buffer (a file read from storage) slice() is a view, and .buffer would be the whole file, header included.
  const data = new Float32Array(floats);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart));
  let offset = 0;
  const moments = header.moments.map(({ name, shape }, i) => {
    const m = data.slice(offset, offset + sizes[i]);
    const v = data.slice(offset + sizes[i], offset + 2 * sizes[i]);
    offset += 2 * sizes[i];
    return { name, shape, m, v };
  });
  return { kind: "adam", iterations: header.iterations, accBeta1: header.accBeta1, accBeta2: header.accBeta2, moments };
}
