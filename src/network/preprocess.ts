// keras.applications.resnet50.preprocess_input ("caffe" mode): the input ResNet-50's ImageNet weights expect.
import * as tf from "@tensorflow/tfjs";
import { AppError } from "../errors.js";

/** ImageNet channel means in BGR order, as Keras subtracts them after flipping RGB to BGR. */
export const IMAGENET_BGR_MEANS = [103.939, 116.779, 123.68] as const;

/** RGB pixels in 0..255 (channels last) -> BGR minus the ImageNet means, no scaling. A new tensor; the input is kept. */
export function preprocessInput(rgb: tf.Tensor4D): tf.Tensor4D {
  if (rgb.rank !== 4 || rgb.shape[3] !== 3) {
    // Callers decode the images themselves: a wrong shape here is a bug, not bad input.
    throw new AppError("INTERNAL", `preprocessInput expects [n, height, width, 3] RGB, got shape [${rgb.shape.join(", ")}]`);
  }
  return tf.tidy(() => tf.sub(tf.reverse(tf.cast(rgb, "float32"), -1), tf.tensor1d([...IMAGENET_BGR_MEANS])));
}
