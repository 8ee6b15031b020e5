// Dropout whose masks are reproducible from a seed yet differ from one training step to the next.
import * as tf from "@tensorflow/tfjs";

type Dropout = ReturnType<typeof tf.layers.dropout>;
type DropoutArgs = Parameters<typeof tf.layers.dropout>[0];
type Kwargs = Parameters<Dropout["call"]>[1];

// tfjs exports layer factories, not layer classes: take the class from an (unbuilt, weightless) instance.
const TfjsDropout = tf.layers.dropout({ rate: 0 }).constructor as {
  new (args: DropoutArgs): Dropout;
  fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T;
};

/**
 * tfjs' Dropout passes its fixed seed to every mask it draws, so a seeded layer drops the same units
 * at every step. This one draws step k's mask from seed + k: the same sequence of masks for the same
 * seed (reproducible runs), a new mask each step. Unseeded, it is tfjs' Dropout unchanged.
 */
export class SeededDropout extends TfjsDropout {
  // Serialises as a plain Keras Dropout (rate, seed), and models loaded from model.json get this class.
  static className = "Dropout";
  private readonly dropoutRate: number;
  private readonly dropoutSeed: number | undefined;
  private step = 0;

  constructor(args: DropoutArgs) {
    super(args);
    this.dropoutRate = args.rate;
    this.dropoutSeed = args.seed ?? undefined; // null when read back from a model.json
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const active = kwargs["training"] === true && this.dropoutRate > 0 && this.dropoutRate < 1;
    if (!active || this.dropoutSeed === undefined) return super.call(inputs, kwargs);
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const seed = this.dropoutSeed + this.step++;
    return tf.tidy(() => tf.dropout(input, this.dropoutRate, undefined, seed));
  }
}

tf.serialization.registerClass(SeededDropout);
