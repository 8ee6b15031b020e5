// The engine seam of train(): what one optimizer step, one validation pass and
// the optimizer's state look like, whichever engine computes them (TF.js on
// the model itself, or ONNX Runtime on the tail's training-step graph).
import type * as tf from "@tensorflow/tfjs";
import type { BatchSource, ModelInputs } from "../datasets/batch-source.js";
import type { EngineName } from "../engine/engine.js";
import type { OptimizerState } from "./optimizer-state.js";

/** Keras' Adam defaults; epsilon fixed rather than tfjs' backend-dependent default. */
export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } as const;

export interface StepOutcome {
  /** The batch's mean loss; NaN when the model's outputs are not finite (train() reports it, the NaN guard stops). */
  loss: number;
  /** Examples whose argmax is the labelled class, in training mode. */
  correct: number;
}

export interface TailStepper {
  /** Which engine runs the steps (after any fallback). */
  readonly engine: EngineName;
  /** One training-mode step on a batch: dropout masks from (epoch, batch), so runs and resumes draw the same ones. The caller disposes xs, ys. */
  step(xs: ModelInputs, ys: tf.Tensor, epoch: number, batch: number): Promise<StepOutcome>;
  /** Inference-mode mean loss and accuracy over a source; null when `signal` fires (checked between batches). */
  evaluate(source: BatchSource<ModelInputs>, signal?: AbortSignal): Promise<{ loss: number; accuracy: number } | null>;
  /** Adam's state in the checkpoint format, whichever engine holds it. */
  exportOptimizerState(): Promise<OptimizerState>;
  /** Loads a checkpoint's Adam state; only before the first step. */
  importOptimizerState(state: OptimizerState): Promise<void>;
  /** Makes the TF.js model's variables hold the trained weights (checkpoints, early stopping, the saved model read them). */
  syncWeights(): void;
  dispose(): Promise<void>;
}
