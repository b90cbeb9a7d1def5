"""Peer (c): Keras 3 in the style of seed 002 — a Sequential CNN, augmentation, Adam at 1e-3,
batch 64, `model.fit(..., validation_data=(x_test, y_test))`, so the test accuracy is printed after
every epoch. Keras 3 dropped `ImageDataGenerator`; its replacement, augmentation layers at the
model's input (RandomTranslation by 2 pixels, RandomFlip), is what a Keras 3 user writes.

Runs in its own environment (tensorflow-cpu from the package index):
    python3 -m venv bench/.venv-keras && bench/.venv-keras/bin/pip install tensorflow-cpu
    bench/.venv-keras/bin/python bench/contestants/keras_fit.py --model '{"channels": [[32], [64]]}'

One JSON line per epoch: {"epoch", "test_accuracy", "train_seconds", "t"}.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from common import load_numpy, stages  # noqa: E402

MEAN, STD = 0.2860, 0.3530


def build_model(spec: dict) -> keras.Sequential:
    bn, k = spec["batch_norm"], spec["kernel_size"]
    layers: list = [keras.Input((28, 28, 1)), keras.layers.RandomTranslation(2 / 28, 2 / 28,
                                                                              fill_mode="constant"),
                    keras.layers.RandomFlip("horizontal"),
                    keras.layers.Normalization(mean=MEAN * 255, variance=(STD * 255) ** 2)]
    for convs in stages(spec):
        for c in convs:
            layers.append(keras.layers.Conv2D(c, k, padding="same"))
            layers += [keras.layers.BatchNormalization()] if bn else []
            layers.append(keras.layers.ReLU())
        layers.append(keras.layers.MaxPooling2D(2))
        if spec["conv_dropout"]:
            layers.append(keras.layers.Dropout(spec["conv_dropout"]))
    layers.append(keras.layers.Flatten())
    for h in spec["hidden"]:
        layers.append(keras.layers.Dense(h))
        layers += [keras.layers.BatchNormalization()] if bn else []
        layers.append(keras.layers.ReLU())
        layers += [keras.layers.Dropout(spec["dropout"])] if spec["dropout"] else []
    if not spec["hidden"] and spec["dropout"]:
        layers.append(keras.layers.Dropout(spec["dropout"]))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


class Report(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.trained = time.perf_counter(), None

    def on_test_begin(self, logs=None):  # validation on the test set starts: training is over
        self.trained = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.trained if self.trained is not None else time.perf_counter() - self.start
        print(json.dumps({"epoch": epoch + 1, "test_accuracy": round(float(logs["val_accuracy"]), 4),
                          "train_seconds": round(seconds, 2), "t": time.time()}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="the config's model block as JSON")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--limit", type=int, help="train and test on this many images (smoke test)")
    args = ap.parse_args()
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = load_numpy("train"), load_numpy("test")
    if args.limit:
        x_train, y_train, x_test, y_test = (a[: args.limit] for a in (x_train, y_train, x_test, y_test))
    x_train, x_test = x_train[..., None].astype("float32"), x_test[..., None].astype("float32")
    model = build_model(json.loads(args.model))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=args.batch, epochs=args.epochs, verbose=0,
              validation_data=(x_test, y_test), callbacks=[Report()])


if __name__ == "__main__":
    main()
