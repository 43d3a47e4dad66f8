"""TensorFlow and Keras, imported without TensorFlow's C++ start-up chatter.

    from support.tf_import import keras, tf

Those lines (oneDNN notes, CUDA probing) are written to file descriptor 2 before
TF_CPP_MIN_LOG_LEVEL is read, so stderr is pointed at /dev/null for the import and the first
device query only; a Python exception still reaches the user, raised after stderr is back.
Modules that can work without TensorFlow (predict.py with LiteRT) import this only when needed.
"""

import os

from support.runner import quiet_stderr

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own info and warning lines

with quiet_stderr():
    import tensorflow as tf

    tf.config.list_physical_devices("GPU")

import keras  # noqa: E402  (after TensorFlow, whose import above had to be silenced first)

__all__ = ["keras", "tf"]
