"""The crack classifier: a small CNN trained from scratch, and how it is saved.

    python model.py            # prints the summary for the default input size
    python model.py --size 128

The model takes raw RGB pixels (uint8 values 0-255) and does its own scaling, so a saved
.keras file needs no preprocessing code beside it: resize an image and call it. The .keras file
also carries what its output means (class names, input size, threshold) as crack_classifier.json
inside the archive, so predict.py never has to guess.
"""

import argparse
import json
import os
import zipfile

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
INFO_NAME = "crack_classifier.json"  # what a saved model's output means, inside its .keras archive


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
    return compile_model(model, learning_rate)


def compile_model(model, learning_rate):
    """Adam on binary cross-entropy, with the metrics train.py reports; for new and loaded models.

    learning_rate: a number, or a keras.optimizers.schedules schedule (train.py uses a cosine decay).
    """
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


def save_model(model, path, info):
    """Save a .keras file with `info` (what the output means) inside it, complete or not at all."""
    tmp = path.with_name(f".partial-{path.name}")
    model.save(tmp)
    with zipfile.ZipFile(tmp, "a") as archive:  # Keras reads only its own members of the archive
        archive.writestr(INFO_NAME, json.dumps(info, indent=1))
    os.replace(tmp, path)


def read_model_info(path):
    """The info a model was saved with (see save_model); raises ValueError if it has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(INFO_NAME))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"it does not say what its output means ({INFO_NAME} inside it: {error}); "
                         "save it with train.py") from None


def main():
    parser = argparse.ArgumentParser(description="Print the crack classifier's layers.")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"input side in pixels (default: {DEFAULT_SIZE})")
    build_model(parser.parse_args().size).summary()


if __name__ == "__main__":
    main()
