"""The crack classifier: a small CNN trained from scratch, and how it is saved.

    python model.py            # prints the summary for the default input size
    python model.py --size 128

The model takes raw RGB pixels (uint8 values 0-255) and does its own scaling, so a saved model
needs no preprocessing code beside it: resize an image and call it. train.py saves it twice: as
a .keras file, and as a LiteRT flat buffer (.tflite) that runs without TensorFlow, on a laptop, a
phone or a Raspberry Pi. Both carry what the output means (class names, input size, thresholds)
as crack_classifier.json inside them, so predict.py never has to guess.

TensorFlow is imported on first use of `model.tf` or `model.keras`: reading a model's info, or
predicting with LiteRT, never waits for it.
"""

import argparse
import functools
import json
import os
import struct
import zipfile

from data_prep import DEFAULT_SIZE, quiet_stderr

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own info and warning lines

LEARNING_RATE = 1e-3
DROPOUT = 0.1  # after each conv block; 0.2 held this small network back (README: "Dropout 0.1, not 0.2")
THRESHOLD = 0.5  # crack probability from which an image is called a crack
INFO_NAME = "crack_classifier.json"  # what a saved model's output means, inside its .keras or .tflite file


@functools.cache
def import_tensorflow_quietly():
    """(tf, keras), imported without TensorFlow's C++ start-up chatter (oneDNN notes, CUDA probing).

    Those lines are written to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL is read, so
    stderr is pointed at /dev/null for the import and the first device query only; a Python
    exception still reaches the user, raised after stderr is back.
    """
    with quiet_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    import keras  # after TensorFlow, which it imports itself

    return tf, keras


def __getattr__(name):
    """`from model import tf, keras` imports them (PEP 562: called for names the module lacks)."""
    if name in ("tf", "keras"):
        return import_tensorflow_quietly()[name == "keras"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(image_size, learning_rate=LEARNING_RATE):
    """Three conv blocks (16/32/32 filters), Dense(64), sigmoid crack probability; compiled."""
    _, keras = import_tensorflow_quietly()
    layers = keras.layers
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
    _, keras = import_tensorflow_quietly()
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


def export_litert(model, path, info, int8_examples=None):
    """Save the model as a LiteRT flat buffer (.tflite) with `info` in its metadata.

    It takes the same raw uint8 RGB batches as the .keras model (any batch size) and gives the
    same probabilities. The info is kept where TFLite keeps metadata (a named buffer, like the
    converter's own min_runtime_version), so the one file is all a device needs.

    int8_examples (uint8 images, a few hundred training images): quantise weights and activations
    to int8, with these images setting the activations' ranges. A quarter of the size and about
    three times faster; probabilities then differ from the .keras model's by up to a few hundredths.
    """
    tf, _ = import_tensorflow_quietly()
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    size = model.input_shape[1]
    quantise = {}
    if int8_examples is not None:
        quantise = {"optimizations": [tf.lite.Optimize.DEFAULT],
                    "representative_dataset": lambda: ([image[None]] for image in int8_examples)}
    tmp = path.with_name(f".partial-{path.name}")
    with quiet_stderr():  # the converter's C++ progress lines
        model.export(str(tmp), format="litert", verbose=False,
                     input_signature=[tf.TensorSpec((None, size, size, 3), tf.uint8)], **quantise)
    flat = flatbuffer_utils.read_model(str(tmp))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(info).encode())
    flat.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name, metadata.buffer = INFO_NAME, len(flat.buffers) - 1
    flat.metadata.append(metadata)
    flatbuffer_utils.write_model(flat, str(tmp))
    os.replace(tmp, path)


def read_model_info(path):
    """The info a .keras or .tflite model was saved with; raises ValueError if it has none.

    Reads the file only: no TensorFlow is imported.
    """
    try:
        if str(path).endswith(".tflite"):
            return json.loads(read_tflite_metadata(path)[INFO_NAME])
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(INFO_NAME))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"it does not say what its output means ({INFO_NAME} inside it: {error}); "
                         "save it with train.py") from None


def read_tflite_metadata(path):
    """{name: bytes} of a .tflite file's metadata, read with the flat buffer schema that comes with
    the LiteRT runtime (or TensorFlow's copy of it); raises ValueError if it is not a flat buffer."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    with open(path, "rb") as f:
        data = f.read()
    try:
        flat = schema.Model.GetRootAs(data)
        entries = [flat.Metadata(i) for i in range(flat.MetadataLength())]
        return {m.Name().decode(): flat.Buffers(m.Buffer()).DataAsNumpy().tobytes() for m in entries}
    except (struct.error, IndexError, AttributeError, UnicodeDecodeError):  # offsets pointing nowhere
        raise ValueError("it is not a LiteRT flat buffer (damaged, or another format)") from None


def main():
    parser = argparse.ArgumentParser(description="Print the crack classifier's layers.")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"input side in pixels (default: {DEFAULT_SIZE})")
    build_model(parser.parse_args().size).summary()


if __name__ == "__main__":
    main()
