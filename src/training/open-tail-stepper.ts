// Which engine runs train()'s steps: ONNX Runtime when the job's engine is
// onnxruntime and the tail's training-step graph can be built, else TF.js
// (with the reason logged, e.g. a layer the step graph does not support).
import type * as tf from "@tensorflow/tfjs";
import type { EngineName } from "../engine/engine.js";
import { createOnnxTrainStep } from "../engine/onnx/onnx-train-step.js";
import type { Logger } from "../log.js";
import { createOnnxTailStepper } from "./onnx-tail-stepper.js";
import { ADAM, type TailStepper } from "./tail-stepper.js";
import { createTfjsTailStepper } from "./tfjs-tail-stepper.js";

export interface StepperOptions {
  model: tf.LayersModel;
  engine: EngineName;
  learningRate: number;
  /** The job's seed: the ONNX steps' dropout masks derive from it. */
  seed: number;
  log?: Pick<Logger, "warn">;
}

export async function openTailStepper({ model, engine, learningRate, seed, log }: StepperOptions): Promise<TailStepper> {
  if (engine === "onnxruntime") {
    try {
      return createOnnxTailStepper(model, await createOnnxTrainStep(model, { learningRate, ...ADAM }), seed);
    } catch (error) {
      log?.warn({ err: error }, `the training steps run on TF.js: no ONNX training step for this model (${(error as Error).message})`);
    }
  }
  return createTfjsTailStepper(model, learningRate);
}
