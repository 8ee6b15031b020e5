// BatchNormalization with Keras TF2 semantics: a frozen (trainable = false) layer runs in inference
// mode, using and never updating its moving mean and variance, even when the model is trained.
import * as tf from "@tensorflow/tfjs";

type BatchNormalization = ReturnType<typeof tf.layers.batchNormalization>;
type BatchNormalizationArgs = NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]>;
type Kwargs = Parameters<BatchNormalization["call"]>[1];

// tfjs exports layer factories, not layer classes: take the class from an (unbuilt, weightless) instance.
const TfjsBatchNormalization = tf.layers.batchNormalization({}).constructor as {
  new (args?: BatchNormalizationArgs): BatchNormalization;
  fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T;
};

/**
 * tfjs' BatchNormalization normalises with batch statistics and updates its moving averages whenever
 * `training` is true, whatever `trainable` says. Keras (TF2) instead treats a frozen BN layer as
 * inference-only. Forcing `training: false` for a frozen layer gives exactly that; a trainable layer
 * keeps tfjs' behaviour, which equals Keras'.
 */
export class KerasBatchNormalization extends TfjsBatchNormalization {
  // Same class name as the built-in layer, so model.json and Keras topology still say "BatchNormalization".
  static className = "BatchNormalization";

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    return super.call(inputs, this.trainable ? kwargs : { ...kwargs, training: false });
  }
}

// Replaces the built-in registration: models loaded from model.json get these semantics too.
tf.serialization.registerClass(KerasBatchNormalization);

export function createBatchNormalization(args: BatchNormalizationArgs): KerasBatchNormalization {
  return new KerasBatchNormalization(args);
}
