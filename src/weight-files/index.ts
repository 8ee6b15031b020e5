// The weights API the rest of the engine uses: reading, checking and writing weights files.
export { KERAS_VERSION, saveKerasH5 } from "./keras-h5.js";
export { IMAGENET_WEIGHTS_FILE, IMAGENET_WEIGHTS_MD5, IMAGENET_WEIGHTS_URL } from "./imagenet.js";
export {
  MAX_LISTED,
  inspectWeightsFile,
  loadBaseWeights,
  loadImagenetWeights,
  loadModelWeights,
  openWeightsFile,
  type WeightsReport,
} from "./load-weights.js";
export type { ShapeMismatch } from "./match-weights.js";
export { MODEL_JSON, loadTfjsModel, saveTfjs } from "./tfjs-format.js";
export type { WeightsFormat } from "./weights-source.js";
