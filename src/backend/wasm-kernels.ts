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
 * offset sees is exactly the [N, Ho, Wo, Cin] patch matching dy, so one matmul
 * per offset gives that filter tap. Memory stays at one patch at a time
 * instead of an im2col matrix kh*kw times the input.
 */
export function conv2DBackpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: Conv2DBackpropFilterAttrs): tf.Tensor4D {
  return tf.tidy(() => {
    const channelsLast = attrs.dataFormat !== "NCHW";
    const xs = channelsLast ? x : tf.transpose(x, [0, 2, 3, 1]);
    const dys = channelsLast ? dy : tf.transpose(dy, [0, 2, 3, 1]);
    const [kh, kw, inChannels, outChannels] = attrs.filterShape;
    const info = tf.backend_util.computeConv2DInfo(
      xs.shape,
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      "channelsLast",
    );
    const { strideHeight: sh, strideWidth: sw, padInfo } = info;
    const [batch, height, width] = xs.shape;
    const [, outHeight, outWidth] = dys.shape;
    // Enough padding that every offset's slice is in range; rows past the input
    // are zero, which is what the convolution saw.
    const bottom = Math.max(padInfo.bottom, (outHeight - 1) * sh + kh - height - padInfo.top);
    const right = Math.max(padInfo.right, (outWidth - 1) * sw + kw - width - padInfo.left);
    const padded =
      padInfo.top || padInfo.left || bottom || right
        ? tf.pad(xs, [[0, 0], [padInfo.top, bottom], [padInfo.left, right], [0, 0]])
        : xs;
    const rows = batch * outHeight * outWidth;
    const dyRows = tf.reshape(dys, [rows, outChannels]);
    const taps: tf.Tensor2D[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const patch = tf.stridedSlice(
          padded,
          [0, i, j, 0],
          [batch, i + (outHeight - 1) * sh + 1, j + (outWidth - 1) * sw + 1, inChannels],
          [1, sh, sw, 1],
        );
        taps.push(tf.matMul(tf.reshape(patch, [rows, inChannels]), dyRows, true, false));
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
