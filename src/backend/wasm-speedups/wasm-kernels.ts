// Convolution gradients for the wasm backend, composed of kernels wasm runs well
// (XNNPACK Conv2D, matmul, transpose, pad): wasm has no Conv2DBackpropFilter at all,
// and its own Conv2DBackpropInput is a plain loop several times slower than Conv2D.
// And a BatchMatMul that transposes its operands before XNNPACK sees them, a
// Tile made of block copies, an Identity that shares instead of copying, and a
// Sum and Mean over leading axes without the transpose. The convolution kernels
// also feed gradient-thread.ts, which computes filter gradients on a second core.
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../../errors.js";
import type { GradientThread } from "./gradient-thread.js";
import { heapKernels, heapOffset, type WasmBackendInternals } from "./heap-kernels.js";

type Padding = "valid" | "same" | number | tf.backend_util.ExplicitPadding;

interface ConvGradAttrs {
  strides: [number, number] | number;
  pad: Padding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** The forward convolution's geometry, always channels-last. */
function convGeometry(xShape: [number, number, number, number], filterShape: [number, number, number, number], attrs: ConvGradAttrs) {
  const info = tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  return { ...info, pad: info.padInfo };
}

const toChannelsLast = (shape: number[], channelsLast: boolean) =>
  (channelsLast ? shape : [shape[0], shape[2], shape[3], shape[1]]) as [number, number, number, number];

/** Pads (positive amounts) and crops (negative amounts) the two spatial axes of an NHWC tensor. */
function padOrCrop(t: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  const [n, h, w, c] = t.shape;
  let out = t;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [t0, l0] = [Math.max(0, -top), Math.max(0, -left)];
    out = tf.slice(out, [0, t0, l0, 0], [n, h - t0 - Math.max(0, -bottom), w - l0 - Math.max(0, -right), c]);
  }
  const [pt, pb, pl, pr] = [top, bottom, left, right].map((p) => Math.max(0, p));
  return pt || pb || pl || pr
    ? tf.pad(out, [
        [0, 0],
        [pt, pb],
        [pl, pr],
        [0, 0],
      ])
    : out;
}

/**
 * dW[i, j, ci, co] = sum over n, oh, ow of xpad[n, oh*sh + i, ow*sw + j, ci] * dy[n, oh, ow, co].
 * Read with ci as the batch, n as the channels and dy as the filter, that sum is
 * a valid convolution of the padded input with dy dilated by the stride: one
 * XNNPACK Conv2D, whose first kh x kw outputs are the filter gradient. A 1x1
 * stride-1 convolution reduces to one matmul, done directly.
 */
export function conv2DBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  attrs: ConvGradAttrs & { filterShape: [number, number, number, number] },
): tf.Tensor4D {
  return tf.tidy(() => {
    const channelsLast = attrs.dataFormat !== "NCHW";
    const xs = channelsLast ? x : tf.transpose(x, [0, 2, 3, 1]);
    const dys = channelsLast ? dy : tf.transpose(dy, [0, 2, 3, 1]);
    const [kh, kw, inChannels, outChannels] = attrs.filterShape;
    const { strideHeight: sh, strideWidth: sw, pad } = convGeometry(xs.shape, attrs.filterShape, attrs);
    const [, height, width] = xs.shape;
    const [, outHeight, outWidth] = dys.shape;
    if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && outHeight === height && outWidth === width) {
      const xRows = tf.reshape(tf.transpose(xs, [3, 0, 1, 2]), [inChannels, -1]);
      return tf.reshape(tf.matMul(xRows, tf.reshape(dys, [-1, outChannels])), attrs.filterShape);
    }
    // Rows past the input are zero, which is what the convolution saw; rows the
    // convolution never reached are cropped.
    const bottom = (outHeight - 1) * sh + kh - height - pad.top;
    const right = (outWidth - 1) * sw + kw - width - pad.left;
    const xc = padOrCrop(tf.transpose(xs, [3, 1, 2, 0]), pad.top, bottom, pad.left, right); // [Cin, Hp, Wp, N]
    const dyFilter = tf.transpose(dys, [1, 2, 0, 3]); // [Ho, Wo, N, Cout]
    const taps = tf.conv2d(xc, dyFilter, 1, "valid", "NHWC", [sh, sw]); // [Cin, kh, kw, Cout]
    return tf.transpose(taps, [1, 2, 0, 3]);
  });
}

/** Inserts stride-1 zeros after every row and column of dy: the forward stride undone. */
function dilate(dy: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const wide = tf.reshape(
    tf.pad(tf.reshape(dy, [n * h, w, 1, c]), [
      [0, 0],
      [0, 0],
      [0, sw - 1],
      [0, 0],
    ]),
    [n, h, 1, w * sw * c],
  );
  return tf.reshape(
    tf.pad(wide, [
      [0, 0],
      [0, 0],
      [0, sh - 1],
      [0, 0],
    ]),
    [n, h * sh, w * sw, c],
  );
}

/**
 * The filter turned by 180 degrees with input and output channels swapped,
 * [kh, kw, Cin, Cout] -> [kh, kw, Cout, Cin]. The turn reverses the order of
 * the kh*kw taps; it is done as a matmul with the anti-identity matrix (exact:
 * each output is one input times 1 plus zeros) because wasm's Reverse and
 * Gather kernels copy element by element and were 10x slower.
 */
function rotateFilter(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, inChannels, outChannels] = filter.shape;
  const count = kh * kw;
  const taps = tf.reshape(filter, [count, inChannels * outChannels]);
  const turned = count === 1 ? taps : tf.matMul(tf.reverse(tf.eye(count), [0]), taps);
  return tf.reshape(tf.transpose(tf.reshape(turned, [count, inChannels, outChannels]), [0, 2, 1]), [kh, kw, outChannels, inChannels]);
}

/**
 * dx is the full correlation of the stride-dilated dy with the filter rotated by
 * 180 degrees and its in/out channels swapped: one stride-1 XNNPACK Conv2D.
 */
export function conv2DBackpropInput(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  attrs: ConvGradAttrs & { inputShape: [number, number, number, number] },
): tf.Tensor4D {
  return tf.tidy(() => {
    const channelsLast = attrs.dataFormat !== "NCHW";
    const dys = channelsLast ? dy : tf.transpose(dy, [0, 2, 3, 1]);
    const xShape = toChannelsLast(attrs.inputShape, channelsLast);
    const [kh, kw] = filter.shape;
    const { strideHeight: sh, strideWidth: sw, pad } = convGeometry(xShape, filter.shape, attrs);
    const [, height, width] = xShape;
    const [, outHeight, outWidth] = dys.shape;
    // dilate() leaves stride-1 trailing zeros, already part of the bottom/right padding.
    const dilated = dilate(dys, sh, sw);
    const top = kh - 1 - pad.top;
    const left = kw - 1 - pad.left;
    const bottom = height + pad.top - 1 - (outHeight - 1) * sh - (sh - 1);
    const right = width + pad.left - 1 - (outWidth - 1) * sw - (sw - 1);
    const dx = tf.conv2d(padOrCrop(dilated, top, bottom, left, right), rotateFilter(filter), 1, "valid");
    return channelsLast ? dx : tf.transpose(dx, [0, 3, 1, 2]);
  });
}

/** t with its last two axes swapped. */
function swapLastAxes(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1], perm[t.rank - 2]];
  return tf.transpose(t, perm);
}

/**
 * wasm's BatchMatMul gives XNNPACK only untransposed operands and multiplies
 * transposed ones in a plain loop: a Dense layer's kernel gradient x^T dy
 * ([32, 100352]^T by [32, 256], the tutorial's Flatten head at 224 px) took
 * 2.5 s that way, 0.08 s as a transpose then an XNNPACK matmul. So transpose
 * first, then call wasm's own kernel. For a B^T much larger than A (the
 * gradient dy W^T of that layer's input) transposing A and the product,
 * (B A^T)^T, moves far fewer values than transposing B: 0.09 s instead of 0.4.
 */
function batchMatMulViaTranspose(original: tf.KernelFunc): tf.KernelFunc {
  const seen = new WeakSet<object>();
  return (args) => {
    const { a, b } = args.inputs as { a: tf.Tensor; b: tf.Tensor };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const plain = (x: tf.Tensor, y: tf.Tensor) =>
      original({ ...args, inputs: { a: x, b: y }, attrs: { ...args.attrs, transposeA: false, transposeB: false } }) as tf.TensorInfo;
    if (!transposeA && !transposeB) {
      // XNNPACK packs B on its first use and keeps the packing for B's next
      // uses. A B used once (a Dense kernel in training: new values every step)
      // is cheaper as (B^T A^T)^T when A has few rows: the Flatten head at
      // 224 px, [32, 100352] by [100352, 256], 0.41 s packed, 0.22 s this way.
      const fresh = !seen.has(b.dataId);
      seen.add(b.dataId);
      if (!(fresh && a.rank === 2 && b.rank === 2 && a.shape[0] <= 64 && b.size >= 1 << 20)) return original(args);
      return tf.tidy(() => swapLastAxes(tf.engine().makeTensorFromTensorInfo(plain(swapLastAxes(b), swapLastAxes(a)))));
    }
    return tf.tidy(() => {
      if (!transposeA) {
        // A B^T with A [m, k] and B [n, k].
        const [m, k] = a.shape.slice(-2);
        const n = b.shape[b.rank - 2];
        if (m * k + m * n < n * k) return swapLastAxes(tf.engine().makeTensorFromTensorInfo(plain(b, swapLastAxes(a))));
      }
      return tf.engine().makeTensorFromTensorInfo(plain(transposeA ? swapLastAxes(a) : a, transposeB ? swapLastAxes(b) : b));
    });
  };
}

type NumericArray = Float32Array | Int32Array | Uint8Array;

/**
 * wasm's Sum and Mean reduce the innermost axes only: any other reduction
 * transposes the whole tensor first. A BatchNormalization gradient or a conv
 * bias gradient sums an NHWC tensor over N, H and W (the leading axes): for
 * [32, 7, 7, 2048] that took 27 ms, most of it the transpose. Adding the rows
 * where they are (heap-kernels.wat, SIMD) takes 2. Other reductions keep wasm's kernel.
 */
function leadingAxesByRows(original: tf.KernelFunc, mean: boolean): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const reduced = axes.length;
    if (x.dtype !== "float32" || reduced === 0 || reduced === x.shape.length || axes.some((a, i) => a !== i)) return original(args);
    const rows = tf.util.sizeFromShape(x.shape.slice(0, reduced));
    const columns = tf.util.sizeFromShape(x.shape.slice(reduced));
    const heap = args.backend as unknown as WasmBackendInternals;
    const out = heap.makeOutput(keepDims ? x.shape.map((n, d) => (d < reduced ? 1 : n)) : x.shape.slice(reduced), "float32");
    heapKernels(heap).sumRows(heapOffset(heap, x), rows, columns, heapOffset(heap, out));
    if (mean) {
      const result = heap.typedArrayFromHeap(out);
      for (let c = 0; c < columns; c++) result[c] /= rows;
    }
    return out;
  };
}

/**
 * x repeated reps[d] times along each axis d, by block copies: axis by axis
 * from the last, each row of the result so far is copied reps[d] times.
 */
export function tileValues(values: NumericArray, shape: number[], reps: number[]): NumericArray {
  let current = values;
  let inner = 1; // elements of one slice below axis d, in the tiled result so far
  for (let d = shape.length - 1; d >= 0; d--) {
    const block = shape[d] * inner;
    if (reps[d] !== 1) {
      const outer = current.length / block;
      const next = new (current.constructor as new (n: number) => NumericArray)(current.length * reps[d]);
      for (let o = 0; o < outer; o++) {
        const row = current.subarray(o * block, (o + 1) * block);
        for (let r = 0; r < reps[d]; r++) next.set(row, (o * reps[d] + r) * block);
      }
      current = next;
    }
    inner = block * reps[d];
  }
  return current;
}

/**
 * wasm's Tile computes every output element's source index (a BatchNorm
 * gradient's tile of [1, 1, 1, 2048] to [32, 7, 7, 2048] took 0.24 s); block
 * copies do the same in a few milliseconds. Strings and complex numbers keep wasm's kernel.
 */
function tileByBlocks(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { reps } = args.attrs as unknown as { reps: number[] };
    if (x.dtype === "string" || x.dtype === "complex64") return original(args);
    const values = tileValues((args.backend as tf.KernelBackend).readSync(x.dataId) as NumericArray, x.shape, reps);
    return tf.tensor(
      values,
      x.shape.map((n, d) => n * reps[d]),
      x.dtype,
    );
  };
}

/** The convolution gradient kernels; with a helper thread, dW may come from it. */
function convolutionGradientKernels(helper: GradientThread | undefined): tf.KernelConfig[] {
  return [
    {
      kernelName: tf.Conv2DBackpropFilter,
      backendName: "wasm",
      kernelFunc: ({ inputs, attrs }) => {
        const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
        const convAttrs = attrs as unknown as Parameters<typeof conv2DBackpropFilter>[2];
        return helper?.takeFilterGradient(x, dy, convAttrs) ?? conv2DBackpropFilter(x, dy, convAttrs);
      },
    },
    {
      kernelName: tf.Conv2DBackpropInput,
      backendName: "wasm",
      kernelFunc: ({ inputs, attrs, backend }) => {
        const { dy, filter } = inputs as { dy: tf.Tensor4D; filter: tf.Tensor4D };
        const convAttrs = attrs as unknown as Parameters<typeof conv2DBackpropInput>[2];
        // tfjs asks for the filter gradient right after this one: the helper thread, if any, starts on it now.
        helper?.offloadFilterGradient(dy, filter, convAttrs, backend);
        return conv2DBackpropInput(dy, filter, convAttrs);
      },
    },
  ];
}

/**
 * wasm's Identity copies the values; tfjs calls it for every tensor a gradient
 * saves (tf.clone), e.g. 14 copies of [32, 7, 7, 2048] per step of the
 * tutorial's tail. Tensors are immutable, so the clone can share the values,
 * reference-counted, as wasm's own Reshape and the cpu backend's Identity do.
 * It also keeps a saved tensor's dataId, which gradient-thread.ts relies on
 * (checked by tape-identity.ts before a helper starts).
 */
function sharedIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === "string") return original(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/** The original wasm kernel function each wrapped one replaced, so that a second registration wraps the original. */
const originals = new WeakMap<tf.KernelFunc, tf.KernelFunc>();

/** Replaces wasm's kernel `name` by wrap(its original kernel function). */
function wrapWasmKernel(name: string, wrap: (original: tf.KernelFunc) => tf.KernelFunc): void {
  const registered = tf.getKernel(name, "wasm");
  if (!registered) {
    throw new AppError("BACKEND_UNAVAILABLE", `the tfjs wasm backend has no ${name} kernel to wrap: is it loaded?`, { kernel: name });
  }
  const original = originals.get(registered.kernelFunc) ?? registered.kernelFunc;
  const kernelFunc = wrap(original);
  originals.set(kernelFunc, original);
  tf.unregisterKernel(name, "wasm");
  tf.registerKernel({ ...registered, kernelFunc });
}

/** wasm's own kernels this module wraps, each with its wrapper; the forward convolutions tell `helper` their inputs. */
function wasmKernelWrappers(helper: GradientThread | undefined): Record<string, (original: tf.KernelFunc) => tf.KernelFunc> {
  const rememberingInputs = (original: tf.KernelFunc): tf.KernelFunc =>
    helper
      ? (args) => {
          const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
          helper.rememberConvInput(x, filter);
          return original(args);
        }
      : original;
  return {
    [tf.BatchMatMul]: batchMatMulViaTranspose,
    [tf.Tile]: tileByBlocks,
    [tf.Identity]: sharedIdentity,
    [tf.Conv2D]: rememberingInputs,
    [tf.FusedConv2D]: rememberingInputs,
    [tf.Sum]: (original) => leadingAxesByRows(original, false),
    [tf.Mean]: (original) => leadingAxesByRows(original, true),
  };
}

/** The wasm kernels that must exist for registerWasmKernels to wrap them (tfjs-internals.test.ts checks them). */
export const WRAPPED_WASM_KERNELS: readonly string[] = Object.keys(wasmKernelWrappers(undefined));

/**
 * Registers these kernels for wasm (the wasm backend must be loaded), replacing
 * wasm's own where it has one. The convolution kernels hand filter gradients to
 * `helper` when it runs; calling again re-binds them to the new helper.
 */
export function registerWasmKernels(helper?: GradientThread): void {
  for (const config of convolutionGradientKernels(helper)) {
    if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
  }
  for (const [name, wrap] of Object.entries(wasmKernelWrappers(helper))) wrapWasmKernel(name, wrap);
}
