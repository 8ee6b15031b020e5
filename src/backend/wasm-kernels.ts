// Kernels that ResNet training needs and @tensorflow/tfjs-backend-wasm does not
// register, composed from ops that wasm does implement (strided slice, pad, matmul).
import * as tf from "@tensorflow/tfjs";

type Conv2DBackpropFilterAttrs = {
  strides: [number, number] | number;
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape: [number, number, number, number];
};

/**
 * dW[i, j] = sum over batch and output positions of x(padded)[., oh*sh + i, ow*sw + j, :]^T dy[., oh, ow, :].
 * For each kernel offset (i, j) the strided slice of the padded input that
 * offset sees is exactly the patch matching dy, so one matmul per offset gives
 * that filter tap. The input is transposed to channels-major once up front:
 * every patch then comes out as [Cin, rows] and the matmul needs no transposed
 * operand, which wasm runs 10-20x slower. Memory stays at one patch at a time
 * instead of an im2col matrix kh*kw times the input.
 */
export function conv2DBackpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: Conv2DBackpropFilterAttrs): tf.Tensor4D {
  return tf.tidy(() => {
    const channelsLast = attrs.dataFormat !== "NCHW";
    const [kh, kw, inChannels, outChannels] = attrs.filterShape;
    const xShape = channelsLast ? x.shape : ([x.shape[0], x.shape[2], x.shape[3], x.shape[1]] as const);
    const info = tf.backend_util.computeConv2DInfo(
      [...xShape],
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      "channelsLast",
    );
    const { strideHeight: sh, strideWidth: sw, padInfo } = info;
    const [batch, height, width] = xShape;
    const [outHeight, outWidth] = channelsLast ? dy.shape.slice(1, 3) : dy.shape.slice(2, 4);
    // [Cin, N, H, W]
    const xc = tf.transpose(x, channelsLast ? [3, 0, 1, 2] : [1, 0, 2, 3]);
    // Enough padding that every offset's slice is in range; rows past the input
    // are zero, which is what the convolution saw.
    const bottom = Math.max(padInfo.bottom, (outHeight - 1) * sh + kh - height - padInfo.top);
    const right = Math.max(padInfo.right, (outWidth - 1) * sw + kw - width - padInfo.left);
    const padded =
      padInfo.top || padInfo.left || bottom || right
        ? tf.pad(xc, [[0, 0], [0, 0], [padInfo.top, bottom], [padInfo.left, right]])
        : xc;
    const rows = batch * outHeight * outWidth;
    const dyRows = tf.reshape(channelsLast ? dy : tf.transpose(dy, [0, 2, 3, 1]), [rows, outChannels]);
    const taps: tf.Tensor2D[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const end = [inChannels, batch, i + (outHeight - 1) * sh + 1, j + (outWidth - 1) * sw + 1];
        // A 1x1 stride-1 convolution sees the whole input: no copy needed.
        const whole = i === 0 && j === 0 && sh === 1 && sw === 1 && end.every((d, k) => d === padded.shape[k]);
        const patch = whole ? padded : tf.stridedSlice(padded, [0, 0, i, j], end, [1, 1, sh, sw]);
        taps.push(tf.matMul(tf.reshape(patch, [inChannels, rows]), dyRows));
      }
    }
    return tf.reshape(tf.stack(taps), attrs.filterShape);
  });
}

const KERNELS: tf.KernelConfig[] = [
  {
    kernelName: tf.Conv2DBackpropFilter,
    backendName: "wasm",
    kernelFunc: ({ inputs, attrs }) => {
      const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
      return conv2DBackpropFilter(x, dy, attrs as unknown as Conv2DBackpropFilterAttrs);
    },
  },
];

/** Registers the missing wasm kernels; safe to call more than once. */
export function registerWasmKernels(): void {
  for (const config of KERNELS) {
    if (!tf.getKernel(config.kernelName, config.backendName)) tf.registerKernel(config);
  }
}
