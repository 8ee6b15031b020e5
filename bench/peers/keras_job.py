"""The tutorial's job as its Keras script runs it (full forward every epoch, no
feature cache), on the PNG files the bench wrote: <class>-<i>.png in --data.
Prints one JSON line: {"seconds", "valAccuracy", "framework"}. A peer for
`npm run bench`, not part of the service."""
import json, time

from job_args import job_args, job_files

start = time.perf_counter()
import numpy as np
import tensorflow as tf
from tensorflow import keras

a = job_args()
keras.utils.set_random_seed(a.seed)

files, names, classes = job_files(a.data)
x = np.stack([tf.image.resize(tf.io.decode_png(tf.io.read_file(f), channels=3), (a.size, a.size)).numpy() for f in files])
x = keras.applications.resnet50.preprocess_input(x)
y = keras.utils.to_categorical([classes.index(n) for n in names], len(classes))
order = np.random.default_rng(a.seed).permutation(len(files))
n_val = int(round(len(files) * a.validation_split))
val, train = order[:n_val], order[n_val:]

base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(a.size, a.size, 3))
base.trainable = False
for layer in base.layers[-a.unfrozen_layers:] if a.unfrozen_layers > 0 else []:
    layer.trainable = True
model = keras.Sequential([base, keras.layers.Flatten(), keras.layers.Dense(256, activation="relu"), keras.layers.Dropout(0.5), keras.layers.Dense(len(classes), activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=a.epochs, batch_size=a.batch_size, verbose=0)
print(json.dumps({"seconds": time.perf_counter() - start, "valAccuracy": float(history.history["val_accuracy"][-1]), "framework": f"TensorFlow {tf.__version__}"}))
