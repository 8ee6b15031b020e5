// train()'s steps on TF.js: the model's own forward pass under Adam's
// minimize (FusedAdamOptimizer), dropout seeded per step by the caller's
// DropoutSeeder, validation through evaluateUntilAborted.
import * as tf from "@tensorflow/tfjs";
import { evaluateUntilAborted } from "./evaluate.js";
import { FusedAdamOptimizer } from "../backend/wasm-speedups/index.js";
import { correctCount, exampleLosses } from "./loss-metrics.js";
import { exportOptimizerState, importOptimizerState } from "./optimizer-state.js";
import { ADAM, type TailStepper } from "./tail-stepper.js";

/** What tfjs' AdamOptimizer exposes of its step count (for tests and logs). */
export interface TfjsTailStepper extends TailStepper {
  readonly optimizer: tf.AdamOptimizer;
}

/** `model` must be compiled with `optimizer` (compileRecipe) by the caller. */
export function createTfjsTailStepper(model: tf.LayersModel, learningRate: number): TfjsTailStepper {
  const optimizer = new FusedAdamOptimizer(learningRate, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
  // Compiling records the recipe on the model (and in a saved Keras file); the loop does the fitting.
  model.compile({ optimizer, loss: "categoricalCrossentropy", metrics: ["accuracy"] });
  // The same variables, in the same order, at every step: Adam pairs its moments with them by position.
  const variables = () => model.trainableWeights.map((w) => w.read() as tf.Variable);
  return {
    engine: "tfjs",
    optimizer,
    async step(xs, ys) {
      let correct: tf.Scalar | undefined;
      let outputSum: tf.Scalar | undefined;
      const cost = optimizer.minimize(
        () => {
          const output = model.apply(xs, { training: true }) as tf.Tensor;
          correct = tf.keep(correctCount(ys, output));
          outputSum = tf.keep(tf.sum<tf.Scalar>(output));
          // Regularisation penalties join the loss, as in Keras (ResNet-50 itself has none).
          return model.calculateLosses().reduce<tf.Scalar>((total, penalty) => tf.add(total, penalty), tf.mean(exampleLosses(ys, output)));
        },
        true,
        variables(),
      ) as tf.Scalar;
      try {
        // The loss clips probabilities, which on wasm turns NaN outputs into a finite loss; TensorFlow's
        // clip keeps NaN, so Keras would report NaN: so do we (and the caller can stop, as TerminateOnNaN does).
        const finite = Number.isFinite((await outputSum!.data())[0]);
        return { loss: finite ? (await cost.data())[0] : Number.NaN, correct: (await correct!.data())[0] };
      } finally {
        tf.dispose([cost, correct!, outputSum!]);
      }
    },
    async evaluate(source, signal) {
      return evaluateUntilAborted(model, source, signal);
    },
    exportOptimizerState: () => exportOptimizerState(optimizer, model),
    importOptimizerState: (state) => importOptimizerState(optimizer, model, state),
    syncWeights() {},
    async dispose() {
      optimizer.dispose();
    },
  };
}
