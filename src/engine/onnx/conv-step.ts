// A Conv2D's forward and backward nodes for the tail's training step, on NHWC
// images (TF.js' layout, so the step transposes nothing): a stride-1 conv as
// one GEMM over its im2col matrix, anything else through ONNX's NCHW Conv.
import type { Builder, Value } from "./train-step-graph.js";

/** [kh, kw, ci, co], as the TF.js kernel. */
type KernelShape = [number, number, number, number];

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

/**
 * Stride 1: the kh x kw shifted windows of the padded input side by side on the channel axis (im2col, in the
 * kernel's [kh, kw, ci] row order) times the kernel as a [kh kw ci, co] matrix. Backward: dW = col^T dy and
 * dcol = dy W^T, whose windows are shifted back and summed (col2im). A 1x1 conv is the GEMM alone. ONNX
 * Runtime's Conv and ConvTranspose in NCHW, with the transposes around them, took ~3x longer in the profile.
 * `wantDx` false skips the input's gradient (the cut's: nothing needs it).
 */
export function convAsGemm(
  g: Builder,
  x: Value,
  kernel: string,
  bias: string,
  [kh, kw, ci, co]: KernelShape,
  pads: number[],
  [ho, wo]: [number, number],
  wantDx: boolean,
): string {
  const [h, w] = x.shape;
  const k = kh * kw * ci;
  const padded = pads.some((p) => p > 0);
  const windows: [number, number][] = [];
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) windows.push([i, j]);
  let cols = x.name;
  if (windows.length > 1 || padded) {
    const source = padded ? g.op("Pad", [x.name, g.int64s([0, pads[0], pads[1], 0, 0, pads[2], pads[3], 0])]) : x.name;
    const slices = windows.map(([i, j]) => g.op("Slice", [source, g.int64s([i, j]), g.int64s([i + ho, j + wo]), g.int64s([1, 2])]));
    cols = slices.length > 1 ? g.op("Concat", slices, [g.int("axis", 3)]) : slices[0];
  }
  const cols2 = g.op("Reshape", [cols, g.int64s([-1, k])]);
  const w2 = g.op("Reshape", [kernel, g.int64s([k, co])]);
  const y = g.op("Reshape", [g.op("Gemm", [cols2, w2, bias]), g.int64s([-1, ho, wo, co])]);
  g.onBackward(() => {
    const dy = g.gradOf(y);
    if (!dy) return;
    const dy2 = g.op("Reshape", [dy, g.int64s([-1, co])]);
    g.addGrad(`${bias}@grad`, g.sum(dy2, [0]));
    g.addGrad(`${kernel}@grad`, g.op("Reshape", [g.op("Gemm", [cols2, dy2], [g.int("transA", 1)]), g.int64s([kh, kw, ci, co])]));
    if (!wantDx) return;
    const dcols = g.op("Reshape", [g.op("Gemm", [dy2, w2], [g.int("transB", 1)]), g.int64s([-1, ho, wo, k])]);
    if (cols === x.name) {
      g.addGrad(x.name, dcols);
      return;
    }
    const [hp, wp] = [h + pads[0] + pads[2], w + pads[1] + pads[3]];
    const parts = windows.map(([i, j], n) => {
      const piece = g.op("Slice", [dcols, g.int64s([n * ci]), g.int64s([(n + 1) * ci]), g.int64s([3])]);
      return g.op("Pad", [piece, g.int64s([0, i, j, 0, 0, hp - ho - i, wp - wo - j, 0])]);
    });
    const total = parts.length > 1 ? g.op("Sum", parts) : parts[0];
    g.addGrad(
      x.name,
      padded ? g.op("Slice", [total, g.int64s([pads[0], pads[1]]), g.int64s([pads[0] + h, pads[1] + w]), g.int64s([1, 2])]) : total,
    );
  });
  return y;
}

/** Any stride: ONNX's Conv in NCHW; the filter's gradient as a conv of the input by dy, the input's as a ConvTranspose. */
export function convNchw(
  g: Builder,
  x: Value,
  kernel: string,
  bias: string,
  [kh, kw]: KernelShape,
  strides: [number, number],
  pads: number[],
  [ho, wo]: [number, number],
  wantDx: boolean,
): string {
  const [h, w] = x.shape;
  const xc = g.op("Transpose", [x.name], [g.ints("perm", TO_NCHW)]);
  const oihw = g.op("Transpose", [kernel], [g.ints("perm", [3, 2, 0, 1])]);
  const yc = g.op("Conv", [xc, oihw, bias], [g.ints("kernel_shape", [kh, kw]), g.ints("strides", strides), g.ints("pads", pads)]);
  const y = g.op("Transpose", [yc], [g.ints("perm", TO_NHWC)]);
  g.onBackward(() => {
    const dy = g.gradOf(y);
    if (!dy) return;
    g.addGrad(`${bias}@grad`, g.sum(dy, [0, 1, 2]));
    const dyc = g.op("Transpose", [dy], [g.ints("perm", TO_NCHW)]);
    const xT = g.op("Transpose", [xc], [g.ints("perm", [1, 0, 2, 3])]);
    const dyT = g.op("Transpose", [dyc], [g.ints("perm", [1, 0, 2, 3])]);
    // Filter gradient: the input (channels as batch) convolved with dy (channels as filters), dilated by the stride.
    let dW = g.op("Conv", [xT, dyT], [g.ints("kernel_shape", [ho, wo]), g.ints("dilations", strides), g.ints("pads", pads)]); // [ci, co, kh', kw']
    const fullH = h + pads[0] + pads[2] - (ho - 1) * strides[0];
    const fullW = w + pads[1] + pads[3] - (wo - 1) * strides[1];
    if (fullH !== kh || fullW !== kw) dW = g.op("Slice", [dW, g.int64s([0, 0]), g.int64s([kh, kw]), g.int64s([2, 3])]);
    g.addGrad(`${kernel}@grad`, g.op("Transpose", [dW], [g.ints("perm", [2, 3, 0, 1])]));
    if (!wantDx) return;
    const outputPadding = [h - ((ho - 1) * strides[0] + kh - pads[0] - pads[2]), w - ((wo - 1) * strides[1] + kw - pads[1] - pads[3])];
    const dxc = g.op(
      "ConvTranspose",
      [dyc, oihw],
      [g.ints("kernel_shape", [kh, kw]), g.ints("strides", strides), g.ints("pads", pads), g.ints("output_padding", outputPadding)],
    );
    g.addGrad(x.name, g.op("Transpose", [dxc], [g.ints("perm", TO_NHWC)]));
  });
  return y;
}
