// `summary`: the ResNet-50 base layer by layer (names, classes, output shapes, parameters) and which
// layers `--unfrozen-layers N` makes trainable, like Keras' model.summary() as JSON.
import { selectBackend } from "../backend/select-backend.js";
import { loadConfig } from "../config.js";
import { buildResNet50 } from "../network/resnet50.js";
import { setUnfrozenLayers, validateUnfrozenLayers } from "../network/transfer-model.js";
import { integerOption, parseCommandArgs, type CliCommand } from "./cli-command.js";

const DEFAULT_IMAGE_SIZE = 224;

function weightCount(weights: { shape: (number | null)[] }[]): number {
  return weights.reduce((sum, w) => sum + w.shape.reduce<number>((n, d) => n * (d ?? 1), 1), 0);
}

export const summaryCommand: CliCommand = {
  name: "summary",
  usage: "summary [--image-size N] [--unfrozen-layers N]",
  description: "the ResNet-50 base: layers, output shapes, parameter counts, and which layers unfrozenLayers = N trains",
  async run(args) {
    const { values } = parseCommandArgs(this, args, { "image-size": { type: "string" }, "unfrozen-layers": { type: "string" } });
    const imageSize = integerOption("image-size", values["image-size"], DEFAULT_IMAGE_SIZE);
    const unfrozenLayers = integerOption("unfrozen-layers", values["unfrozen-layers"], 0);
    validateUnfrozenLayers(unfrozenLayers);
    const backend = await selectBackend(loadConfig().tfjsBackend);
    const model = buildResNet50({ imageSize, seed: 0 });
    try {
      setUnfrozenLayers({ model, baseLayers: model.layers, headLayers: [] }, unfrozenLayers);
      const layers = model.layers.map((layer, index) => ({
        index,
        name: layer.name,
        class: layer.getClassName(),
        outputShape: layer.outputShape,
        params: layer.countParams(),
        trainable: layer.trainable,
      }));
      const trainableParams = weightCount(model.trainableWeights);
      return {
        output: {
          model: model.name,
          backend: backend.name,
          imageSize,
          unfrozenLayers,
          layers,
          totals: {
            layers: layers.length,
            trainableLayers: layers.filter((l) => l.trainable).length,
            params: model.countParams(),
            trainableParams,
            nonTrainableParams: model.countParams() - trainableParams,
          },
        },
      };
    } finally {
      model.dispose();
    }
  },
};
