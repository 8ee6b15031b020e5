// The one decode used for training and prediction: any accepted image ->
// imageSize x imageSize RGB uint8, resized like Keras' image_dataset_from_directory
// (bilinear, aspect ratio not kept, no crop, alpha dropped, grayscale expanded,
// EXIF orientation ignored as tf.io.decode_image does).
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs";

export const CHANNELS = 3;

/**
 * Decoded pixels: imageSize * imageSize * 3 bytes, row-major RGB. Images over
 * `maxPixels` (width * height; default sharp's own limit) are refused by sharp.
 */
export async function decodeResizeRgb(input: Buffer | string, imageSize: number, maxPixels?: number): Promise<Buffer> {
  let image = sharp(input, { failOn: "none", limitInputPixels: maxPixels ?? true });
  if ((await image.metadata()).hasAlpha) {
    // sharp resizes premultiplied by alpha; Keras drops alpha untouched, so drop it before resizing.
    const { data, info } = await image.toColourspace("srgb").removeAlpha().raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    image = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
  }
  const { data, info } = await image
    .toColourspace("srgb")
    .removeAlpha()
    .resize(imageSize, imageSize, { fit: "fill", kernel: sharp.kernel.linear })
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== CHANNELS || data.length !== imageSize * imageSize * CHANNELS) {
    throw new Error(
      `decoded image has ${info.channels} channels and ${data.length} bytes, expected ${CHANNELS} and ${imageSize * imageSize * CHANNELS}`,
    );
  }
  return data;
}

/** uint8 RGB rows -> float32 [n, size, size, 3] in 0..255 (before the model's preprocessing). */
export function rgbToTensor(pixels: Uint8Array, count: number, imageSize: number): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(pixels), [count, imageSize, imageSize, CHANNELS]);
}
