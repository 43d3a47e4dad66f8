"""The crack classifier: a small CNN trained from scratch.

    python model.py            # prints the summary for the default input size
    python model.py --size 128

The model takes raw RGB pixels (uint8 values 0-255) and does its own scaling, so a saved
.keras file needs no preprocessing code beside it: resize an image and call it.
"""

import argparse
import os

from data_prep import DEFAULT_SIZE, quiet_stderr

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own info and warning lines


def import_tensorflow_quietly():
    """Import TensorFlow without its C++ start-up chatter (oneDNN notes, CUDA probing).

    Those lines are written to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL is read, so
    stderr is pointed at /dev/null for the import and the first device query only; a Python
    exception still reaches the user, raised after stderr is back.
    """
    with quiet_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf


tf = import_tensorflow_quietly()  # before keras, which imports TensorFlow itself

import keras  # noqa: E402
from keras import layers  # noqa: E402

LEARNING_RATE = 1e-3
DROPOUT = 0.2
THRESHOLD = 0.5  # crack probability from which an image is called a crack


def build_model(image_size, learning_rate=LEARNING_RATE):
    """Three conv blocks (16/32/32 filters), Dense(64), sigmoid crack probability; compiled."""
    model = keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3)),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Dropout(DROPOUT),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Dropout(DROPOUT),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Dropout(DROPOUT),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            # float32 output even under a mixed_float16 policy: a float16 sigmoid saturates early.
            layers.Dense(1, activation="sigmoid", dtype="float32"),
        ],
        name="crack_cnn",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
            keras.metrics.AUC(name="auc"),
        ],
    )
    return model


def main():
    parser = argparse.ArgumentParser(description="Print the crack classifier's layers.")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"input side in pixels (default: {DEFAULT_SIZE})")
    build_model(parser.parse_args().size).summary()


if __name__ == "__main__":
    main()
