// tfjs' Adam, with each weight's update done in one pass over its values on
// the wasm and cpu backends. tfjs composes the update of 14 element-wise ops,
// each writing a new tensor the size of the weight: for the tutorial's head at
// 224 px (a 25.7 M-value Dense kernel) that was about 0.4 s of a 4.4 s training
// step on wasm. On wasm the pass is a small hand-written SIMD kernel
// (src/backend/heap-kernels.wat) working in the backend's own heap; on cpu a
// JavaScript loop (in JavaScript the 3 divisions and the square root per value
// make it slower than wasm's 14 SIMD ops, hence the kernel). Both compute the same float32
// operations in the same order as tfjs, each rounded to float32, so the weights
// and moments are those of tfjs' Adam, bit for bit. Other backends (tfjs-node,
// whose ops are native and threaded), and processes that did not install the
// training speed-ups, keep tfjs' ops.
import * as tf from "@tensorflow/tfjs";
import { heapKernels, heapOffset, type WasmBackendInternals } from "./heap-kernels.js";

export const ADAM_UPDATE_KERNEL = "ResnetFinetuneAdamUpdate";

export interface AdamConstants {
  beta1: number;
  beta2: number;
  epsilon: number;
  learningRate: number;
  /** 1 - beta1^t and 1 - beta2^t as tfjs computes them: float32 subtractions from the float32 accumulators. */
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
}

const f32 = Math.fround;

/** One Adam step over flat float32 arrays; outputs may not alias inputs. */
export function adamUpdateValues(
  value: Float32Array,
  m: Float32Array,
  v: Float32Array,
  gradient: Float32Array,
  out: { value: Float32Array; m: Float32Array; v: Float32Array },
  c: AdamConstants,
): void {
  // Each scalar as tfjs makes it: a float32 tensor of the JavaScript number.
  const beta1 = f32(c.beta1);
  const beta2 = f32(c.beta2);
  const keep1 = f32(1 - c.beta1);
  const keep2 = f32(1 - c.beta2);
  const correction1 = f32(c.oneMinusAccBeta1);
  const correction2 = f32(c.oneMinusAccBeta2);
  const epsilon = f32(c.epsilon);
  const step = f32(-c.learningRate);
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const g = gradient[i];
    const newM = f32(f32(m[i] * beta1) + f32(g * keep1));
    const newV = f32(f32(v[i] * beta2) + f32(f32(g * g) * keep2));
    const mHat = f32(newM / correction1);
    const vHat = f32(newV / correction2);
    out.m[i] = newM;
    out.v[i] = newV;
    out.value[i] = f32(f32(f32(mHat / f32(f32(Math.sqrt(vHat)) + epsilon)) * step) + value[i]);
  }
}

interface AdamUpdateInputs {
  value: tf.TensorInfo;
  m: tf.TensorInfo;
  v: tf.TensorInfo;
  gradient: tf.TensorInfo;
}

/** The cpu backend's storage, as far as this kernel uses it. */
interface CpuBackend {
  readSync(dataId: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function wasmAdamUpdate({
  inputs,
  backend,
  attrs,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const { value, m, v, gradient } = inputs as unknown as AdamUpdateInputs;
  const wasm = backend as WasmBackendInternals;
  const c = attrs as unknown as AdamConstants;
  const outputs = [value, m, v].map((t) => wasm.makeOutput(t.shape, "float32"));
  const [x, mIn, vIn, g, outX, outM, outV] = [value, m, v, gradient, ...outputs].map((t) => heapOffset(wasm, t));
  const count = tf.util.sizeFromShape(value.shape);
  const constants = [c.beta1, c.beta2, 1 - c.beta1, 1 - c.beta2, c.oneMinusAccBeta1, c.oneMinusAccBeta2, c.epsilon, -c.learningRate];
  heapKernels(wasm).adam(x, mIn, vIn, g, outX, outM, outV, count, ...constants);
  return outputs;
}

function cpuAdamUpdate({
  inputs,
  backend,
  attrs,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const { value, m, v, gradient } = inputs as unknown as AdamUpdateInputs;
  const cpu = backend as CpuBackend;
  const [x, mIn, vIn, g] = [value, m, v, gradient].map((t) => cpu.readSync(t.dataId));
  const out = { value: new Float32Array(x.length), m: new Float32Array(x.length), v: new Float32Array(x.length) };
  adamUpdateValues(x, mIn, vIn, g, out, attrs as unknown as AdamConstants);
  return [
    cpu.makeTensorInfo(value.shape, "float32", out.value),
    cpu.makeTensorInfo(m.shape, "float32", out.m),
    cpu.makeTensorInfo(v.shape, "float32", out.v),
  ];
}

const KERNELS: Record<string, tf.KernelFunc> = { wasm: wasmAdamUpdate as tf.KernelFunc, cpu: cpuAdamUpdate as tf.KernelFunc };

/** Registers the update kernel for `backendName` when this module has one for it; false when it has none. */
export function registerAdamUpdateKernel(backendName: string): boolean {
  const kernelFunc = KERNELS[backendName];
  if (!kernelFunc) return false;
  if (tf.getKernel(ADAM_UPDATE_KERNEL, backendName)) tf.unregisterKernel(ADAM_UPDATE_KERNEL, backendName);
  tf.registerKernel({ kernelName: ADAM_UPDATE_KERNEL, backendName, kernelFunc });
  return true;
}

interface OptimizerVariable {
  originalName: string;
  variable: tf.Variable;
}

/** The fields of tfjs' AdamOptimizer that are private in its typings (tfjs-internals.test.ts checks them). */
export interface AdamFields {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: OptimizerVariable[];
  accumulatedSecondMoment: OptimizerVariable[];
  incrementIterations(): void;
}

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer["applyGradients"]>[0]): void {
    if (!tf.getKernel(ADAM_UPDATE_KERNEL, tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const self = this as unknown as AdamFields;
    const named = Array.isArray(variableGradients)
      ? variableGradients
      : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
    tf.tidy(() => {
      // tfjs' own order of operations: the corrections from the accumulators, then each weight, then the accumulators.
      const [oneMinusAccBeta1, oneMinusAccBeta2] = [self.accBeta1, self.accBeta2].map((acc) => tf.sub(1, acc).dataSync()[0]);
      named.forEach(({ name, tensor: gradient }, i) => {
        const value = tf.engine().registeredVariables[name];
        // Created as tfjs creates them, with the names its getWeights() and setWeights() use.
        self.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        self.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        if (gradient == null) return;
        const m = self.accumulatedFirstMoment[i].variable;
        const v = self.accumulatedSecondMoment[i].variable;
        if (value.dtype !== "float32" || gradient.dtype !== "float32")
          throw new Error(`Adam update of ${name}: float32 weights only, got ${value.dtype}`);
        const attrs = {
          beta1: this.beta1,
          beta2: this.beta2,
          epsilon: this.epsilon,
          learningRate: this.learningRate,
          oneMinusAccBeta1,
          oneMinusAccBeta2,
        };
        const [newValue, newM, newV] = tf
          .engine()
          .runKernel(ADAM_UPDATE_KERNEL, { value, m, v, gradient }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(newM);
        v.assign(newV);
        value.assign(newValue);
      });
      self.accBeta1.assign(tf.mul(self.accBeta1, this.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, this.beta2));
    });
    self.incrementIterations();
  }
}
