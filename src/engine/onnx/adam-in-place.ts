// Adam's update of one weight in place, in one pass over its values: what the
// tail's ONNX step applies to the gradients its graph outputs. As ONNX ops the
// update was ~10 passes over each weight, each writing a new tensor (the Dense
// kernel of the tutorial's head alone is 25.7 M values).
export interface AdamStep {
  beta1: number;
  beta2: number;
  /** -learningRate * sqrt(1 - beta2^t) / (1 - beta1^t): the bias corrections folded into the step. */
  stepSize: number;
  /** epsilon * sqrt(1 - beta2^t). */
  epsilonHat: number;
}

/** The step's constants, tfjs' formula w += -lr (m / c1) / (sqrt(v / c2) + eps) rearranged (same value, fewer operations). */
export function adamStep(
  adam: { learningRate: number; beta1: number; beta2: number; epsilon: number },
  correction1: number,
  correction2: number,
): AdamStep {
  const root = Math.sqrt(correction2);
  return { beta1: adam.beta1, beta2: adam.beta2, stepSize: (-adam.learningRate * root) / correction1, epsilonHat: adam.epsilon * root };
}

/** m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w += stepSize m / (sqrt(v) + epsilonHat); in place. g null: zero. */
export function adamInPlace(w: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array | null, c: AdamStep): void {
  const { beta1, beta2, stepSize, epsilonHat } = c;
  const keep1 = 1 - beta1;
  const keep2 = 1 - beta2;
  const n = w.length;
  if (g === null) {
    for (let i = 0; i < n; i++) {
      const mi = beta1 * m[i];
      const vi = beta2 * v[i];
      m[i] = mi;
      v[i] = vi;
      w[i] += (stepSize * mi) / (Math.sqrt(vi) + epsilonHat);
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = beta1 * m[i] + keep1 * gi;
    const vi = beta2 * v[i] + keep2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] += (stepSize * mi) / (Math.sqrt(vi) + epsilonHat);
  }
}
