"""model.py: what any network here must do, whatever its layers (change them freely)."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, run

from model import INPUT_SIZE, MIN_INPUT_SIZE, build_model
from support.tf_import import keras


def test_the_smallest_size_is_the_smallest_the_blocks_accept():
    """data_prep.py and train.py refuse sizes below MIN_INPUT_SIZE: it must follow the blocks."""
    build_model(MIN_INPUT_SIZE)
    build_model(INPUT_SIZE)
    with pytest.raises(ValueError):  # Keras: a layer would have nothing left
        build_model(MIN_INPUT_SIZE - 1)


@pytest.mark.parametrize("classes, width", [(2, 1), (3, 3), (5, 5)])
def test_one_sigmoid_for_two_classes_a_softmax_for_more(classes, width):
    model = build_model(MIN_INPUT_SIZE, classes)
    probs = model.predict(np.zeros((2, MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3), np.uint8), verbose=0)
    assert probs.shape == (2, width) and probs.dtype == np.float32
    if width > 1:
        assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_takes_raw_uint8_pixels_and_returns_probabilities():
    size = MIN_INPUT_SIZE + 7  # any size from the smallest up, odd ones too
    model = build_model(size)
    images = np.random.default_rng(0).integers(0, 256, (5, size, size, 3), dtype=np.uint8)
    prob = model.predict(images, verbose=0)
    assert prob.shape == (5, 1) and np.all((prob >= 0) & (prob <= 1))


@pytest.mark.parametrize("classes", [2, 3])
def test_training_steps_lower_the_loss(classes):
    keras.utils.set_random_seed(0)
    size = MIN_INPUT_SIZE
    model = build_model(size, classes)
    y = np.arange(32) % classes
    # each class its own brightness: a network that learns at all tells them apart within a few steps
    x = (np.random.default_rng(0).integers(0, 40, (32, size, size, 3)) + 90 * y[:, None, None, None]).astype(np.uint8)
    before = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["loss"] < before


def test_data_prep_reads_the_sizes_without_tensorflow():
    """data_prep.py imports model.py for its sizes: TensorFlow's seconds of start-up stay out of it."""
    code = "import sys, data_prep; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


@pytest.mark.slow
def test_script_prints_the_summary_and_refuses_a_size_too_small():
    result = run("model.py", "--size", MIN_INPUT_SIZE)
    assert result.returncode == 0, result.stderr
    assert "Total params" in result.stdout and "conv2d" in result.stdout
    assert result.stderr.strip() == ""  # TensorFlow's start-up chatter is silenced
    result = run("model.py", "--size", MIN_INPUT_SIZE - 1)
    assert result.returncode == 2 and f"--size must be at least {MIN_INPUT_SIZE}" in result.stderr, result.stderr
