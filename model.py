"""The classifier: a small convolutional network trained from scratch, for two classes or more.

    python model.py                        # its layers for 64x64 px images and two classes
    python model.py --size 128 --classes 3

Three conv blocks (16/32/32 filters, each with max-pooling and dropout), Dense(64), then, as in
keras.io's "Image classification from scratch": one sigmoid unit for two classes (the
probability of the second, e.g. Positive = crack), a softmax over the classes for more.

The model takes raw RGB pixels (uint8, 0-255) and scales them itself (the Rescaling layer), so a
saved model needs no preprocessing code beside it: resize an image and call the model.
"""

import argparse

from support.cache import MIN_IMAGE_SIZE
from support.model_files import DEFAULT_SIZE
from support.tf_import import keras

LEARNING_RATE = 1e-3
DROPOUT = 0.1  # after each conv block; 0.2 held this small network back (docs/EXPERIMENTS.md)
THRESHOLD = 0.5  # for two classes: the probability of the second from which an image is called it


def build_model(image_size, num_classes=2, learning_rate=LEARNING_RATE):
    """The network for image_size x image_size RGB images, compiled."""
    layers = keras.layers
    binary = num_classes == 2
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
            layers.Dense(1 if binary else num_classes, activation="sigmoid" if binary else "softmax",
                         dtype="float32"),
        ],
        name="cnn",
    )
    return compile_model(model, learning_rate)


def compile_model(model, learning_rate):
    """Adam, with the loss and metrics that fit the output; for new and loaded models alike.

    learning_rate: a number, or a keras.optimizers.schedules schedule (train.py uses a cosine decay).
    """
    if model.output_shape[-1] == 1:  # two classes: labels 0 and 1, one probability
        loss = "binary_crossentropy"
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.Precision(name="precision"),
                   keras.metrics.Recall(name="recall"), keras.metrics.AUC(name="auc")]
    else:  # labels 0 .. N-1, one probability per class
        loss = "sparse_categorical_crossentropy"
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    return model


def main():
    parser = argparse.ArgumentParser(description="Print the classifier's layers.")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="input side in pixels (default: 64)")
    parser.add_argument("--classes", type=int, default=2, help="number of classes (default: 2)")
    args = parser.parse_args()
    if args.size < MIN_IMAGE_SIZE or args.classes < 2:
        parser.error(f"--size must be at least {MIN_IMAGE_SIZE} and --classes at least 2")
    build_model(args.size, args.classes).summary()


if __name__ == "__main__":
    main()
