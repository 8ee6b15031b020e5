// Splits the transfer model where frozen layers feed trainable ones: the trunk
// (input -> every tensor crossing the cut) is a fixed function of the image,
// the tail (those tensors -> predictions) is what training changes. Both share
// the full model's layer objects, so training the tail trains the full model.
import * as tf from "@tensorflow/tfjs";
import { RESNET50_LAYER_COUNT } from "./resnet50.js";
import type { TransferModel } from "./transfer-model.js";

export interface CutTensor {
  /** The layer whose output crosses the cut (e.g. `conv5_block2_out`). */
  layer: string;
  /** Shape of one example's tensor, without the batch dimension. */
  shape: number[];
}

export interface TrunkSplit {
  /** Input image -> the cut tensors, in `cut` order. Frozen: run it with training false. */
  trunk: tf.LayersModel;
  /** The cut tensors, in `cut` order -> class probabilities. */
  tail: tf.LayersModel;
  cut: CutTensor[];
}

/** The last `unfrozenLayers` base layers train (Keras' base.layers[-N:]); the trunk is the rest. */
export function trunkLayerCount(unfrozenLayers: number): number {
  return RESNET50_LAYER_COUNT - unfrozenLayers;
}

/**
 * null when nothing before the head is frozen (unfrozenLayers 175: the whole
 * network trains, there is no fixed part to precompute).
 */
export function splitAtFrozenBoundary(tm: TransferModel, unfrozenLayers: number): TrunkSplit | null {
  const frozenCount = trunkLayerCount(unfrozenLayers);
  if (frozenCount <= 1) return null; // only the input layer is frozen
  const frozen = new Set(tm.baseLayers.slice(0, frozenCount));
  // Keras' layer order is a topological order: a layer comes after every layer it reads from.
  const trainable = [...tm.baseLayers.slice(frozenCount), ...tm.headLayers];

  const cutTensors: tf.SymbolicTensor[] = [];
  const cutInputs: tf.SymbolicTensor[] = [];
  const replaced = new Map<number, tf.SymbolicTensor>();

  function tailTensorFor(t: tf.SymbolicTensor): tf.SymbolicTensor {
    const known = replaced.get(t.id);
    if (known) return known;
    if (!frozen.has(t.sourceLayer)) throw new Error(`layer ${t.sourceLayer.name} is reached before the layers it reads from`);
    const input = tf.input({ shape: t.shape.slice(1) as number[], name: `cut_${t.sourceLayer.name}` });
    cutTensors.push(t);
    cutInputs.push(input);
    replaced.set(t.id, input);
    return input;
  }

  for (const layer of trainable) {
    const node = layer.inboundNodes[0];
    const inputs = node.inputTensors.map(tailTensorFor);
    const outputs = layer.apply(inputs.length === 1 ? inputs[0] : inputs);
    const produced = (Array.isArray(outputs) ? outputs : [outputs]) as tf.SymbolicTensor[];
    for (const [i, t] of node.outputTensors.entries()) replaced.set(t.id, produced[i]);
  }

  const finalOutput = tm.model.outputs[0];
  const tailOutput = replaced.get(finalOutput.id);
  if (!tailOutput) throw new Error("the model's output is not reached from the trainable layers");
  return {
    trunk: tf.model({ inputs: tm.model.inputs, outputs: cutTensors, name: "frozen_trunk" }),
    tail: tf.model({ inputs: cutInputs, outputs: tailOutput, name: "trainable_tail" }),
    cut: cutTensors.map((t) => ({ layer: t.sourceLayer.name, shape: t.shape.slice(1) as number[] })),
  };
}
