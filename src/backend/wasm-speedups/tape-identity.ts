// One fact two modules share: a tensor the gradient tape saves (tfjs' engine
// saves inputs through clone, i.e. the Identity kernel) keeps the dataId of the
// tensor it saves. wasm-kernels.ts makes it true (sharedIdentity);
// gradient-thread.ts relies on it to match a filter-gradient request with the
// input the forward convolution saw, and checks it here before starting.
import * as tf from "@tensorflow/tfjs";

/** Whether tf.clone (what the tape saves with) shares its input's data on the active backend, checked on a probe tensor. */
export function savedTensorsKeepTheirData(): boolean {
  const probe = tf.tensor1d([0]);
  const saved = tf.clone(probe);
  const shares = saved.dataId === probe.dataId;
  tf.dispose([probe, saved]);
  return shares;
}
