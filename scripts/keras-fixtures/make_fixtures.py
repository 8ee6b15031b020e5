"""Writes the real-Keras weights files the tests read (test/fixtures/keras/).

Run through scripts/keras-fixtures/make-fixtures.sh, which makes a venv with
TensorFlow/Keras. The outputs are committed; the tests never need Python.

- small-cnn.keras3.h5, small-cnn.weights.h5: a small network that is not
  ResNet-50 (Conv2D, BatchNormalization, DepthwiseConv2D, Dense), saved by
  `model.save()` (legacy HDF5) and `model.save_weights()` (Keras 3 format).
  Offered as base weights, both must be refused with a mismatch report.
- resnet50-notop.keras3.h5.gz, resnet50-notop.weights.h5.gz:
  `keras.applications.ResNet50(include_top=False, weights=None)` at 32 px
  (weight shapes do not depend on the input size), each weight set to a
  pattern the tests recompute: value i of weight k (in `model.weights` order)
  is ((7 i + k) mod 251 - 125) / 1000 as float32, and for moving variances
  its absolute value plus 0.5. The pattern compresses ~180x, so the 95 MB
  files are committed gzipped; resnet50-notop.weights.json lists each weight
  (Keras path, shape, k).
"""
import gzip
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/keras"
os.makedirs(out, exist_ok=True)
keras.utils.set_random_seed(1)


def small_cnn():
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", name="conv2d")(inputs)
    x = layers.BatchNormalization(name="batch_normalization")(x)
    x = layers.Activation("relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="depthwise_conv2d")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs)


def patterned_resnet50():
    model = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    entries = []
    for k, weight in enumerate(model.weights):
        n = int(np.prod(weight.shape))
        values = (((np.arange(n, dtype=np.int64) * 7 + k) % 251 - 125) / 1000).astype(np.float32)
        if weight.path.endswith("moving_variance"):
            values = np.abs(values) + np.float32(0.5)
        weight.assign(values.reshape(weight.shape))
        entries.append({"path": weight.path, "shape": list(weight.shape), "k": k})
    return model, entries


def save_gzipped(save, name):
    plain = os.path.join(out, name)
    save(plain)
    with open(plain, "rb") as src, gzip.GzipFile(plain + ".gz", "wb", 9, mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    os.remove(plain)


small = small_cnn()
small.save(os.path.join(out, "small-cnn.keras3.h5"))
small.save_weights(os.path.join(out, "small-cnn.weights.h5"))

resnet, entries = patterned_resnet50()
save_gzipped(resnet.save, "resnet50-notop.keras3.h5")
save_gzipped(resnet.save_weights, "resnet50-notop.weights.h5")
with open(os.path.join(out, "resnet50-notop.weights.json"), "w") as f:
    json.dump({"keras_version": keras.__version__, "weights": entries}, f, indent=0)
print(f"wrote {out} with Keras {keras.__version__}")
