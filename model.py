"""The classifier: a small convolutional network trained from scratch, for two classes or more.

    python model.py                        # its layers for 64x64 px images and two classes
    python model.py --size 128 --classes 3

Three conv blocks (16/32/32 filters, each with max-pooling and dropout), Dense(64), then, as in
keras.io's "Image classification from scratch": one sigmoid unit for two classes (the
probability of the second, e.g. Positive = crack), a softmax over the classes for more.

The model takes raw RGB pixels (uint8, 0-255) and scales them itself (the Rescaling layer), so a
saved model needs no preprocessing code beside it: resize an image and call the model.

The network owns its input sizes: INPUT_SIZE is data_prep.py's default --size and
MIN_INPUT_SIZE the smallest side its blocks accept; data_prep.py, train.py and the tests read
both from here. Change the blocks and MIN_INPUT_SIZE follows (tests/test_model.py checks it).
"""

import argparse
import sys

# The knobs a student turns, in one place: the network's, and how train.py teaches it (its flags'
# defaults; fine-tuning and a site's share of each batch are train.py's own rules).
INPUT_SIZE = 64  # the default side (data_prep.py --size); 96 or 128 px cost 2-5x for no gain (EXPERIMENTS.md)
CONV_FILTERS = (16, 32, 32)  # one conv block each: 3x3 convolution, 2x2 max-pooling, dropout
DROPOUT = 0.1  # after each conv block; 0.2 held this small network back (docs/EXPERIMENTS.md)
EPOCHS = 30  # train.py --epochs: the learning rate falls along a cosine to zero at the last
BATCH_SIZE = 64  # train.py --batch-size, over all replicas
LEARNING_RATE = 1e-3  # Adam's at the start (train.py --learning-rate)
SEED = 42  # data_prep.py's split, and train.py's weights, shuffling and augmentation (--seed of each)
THRESHOLD = 0.5  # for two classes: the probability of the second from which an image is called it


def smallest_input_size(blocks=len(CONV_FILTERS)):
    """The smallest side the conv blocks accept: working back from the last block, which must leave
    1 px, each block's 3x3 convolution takes 2 px and its pooling halves."""
    size = 1
    for _ in range(blocks):
        size = 2 * size + 2
    return size


MIN_INPUT_SIZE = smallest_input_size()  # 22 px for three blocks


def build_model(image_size, num_classes=2, learning_rate=LEARNING_RATE):
    """The network for image_size x image_size RGB images, compiled."""
    from support.tf_import import keras  # here, not above: data_prep.py reads the sizes without TensorFlow

    layers = keras.layers
    binary = num_classes == 2
    model = keras.Sequential([keras.Input(shape=(image_size, image_size, 3)), layers.Rescaling(1.0 / 255)], name="cnn")
    for filters in CONV_FILTERS:
        model.add(layers.Conv2D(filters, 3, activation="relu"))
        model.add(layers.MaxPooling2D())
        model.add(layers.Dropout(DROPOUT))
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    # float32 output even under a mixed_float16 policy: a float16 sigmoid saturates early.
    model.add(layers.Dense(1 if binary else num_classes, activation="sigmoid" if binary else "softmax",
                           dtype="float32"))
    return compile_model(model, learning_rate)


def compile_model(model, learning_rate):
    """Adam, with the loss and metrics that fit the output; for new and loaded models alike.

    learning_rate: a number, or a keras.optimizers.schedules schedule (train.py uses a cosine decay).
    """
    from support.tf_import import keras

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
    parser.add_argument("--size", type=int, default=INPUT_SIZE, help=f"input side in pixels (default: {INPUT_SIZE})")
    parser.add_argument("--classes", type=int, default=2, help="number of classes (default: 2)")
    args = parser.parse_args()
    if args.size < MIN_INPUT_SIZE or args.classes < 2:
        parser.error(f"--size must be at least {MIN_INPUT_SIZE} (the smallest side the conv blocks accept) "
                     "and --classes at least 2")
    try:
        model = build_model(args.size, args.classes)
    except ValueError:  # blocks changed in a way smallest_input_size() does not follow
        sys.exit(f"error: the network's blocks leave nothing of {args.size} px images: make smallest_input_size() "
                 "in model.py follow them (tests/test_model.py checks it)")
    model.summary()


if __name__ == "__main__":
    main()
