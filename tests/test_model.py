"""model.py: what any network here must do, whatever its layers (change them freely)."""

import numpy as np
import pytest
from conftest import run

from model import THRESHOLD, build_model, keras


@pytest.mark.parametrize("classes, width", [(2, 1), (3, 3), (5, 5)])
def test_one_sigmoid_for_two_classes_a_softmax_for_more(classes, width):
    model = build_model(32, classes)
    probs = model.predict(np.zeros((2, 32, 32, 3), np.uint8), verbose=0)
    assert probs.shape == (2, width) and probs.dtype == np.float32
    if width > 1:
        assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_takes_raw_uint8_pixels_and_returns_probabilities():
    model = build_model(48)
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    prob = model.predict(images, verbose=0)
    assert prob.shape == (5, 1) and np.all((prob >= 0) & (prob <= 1))
    assert 0 < THRESHOLD < 1


@pytest.mark.parametrize("classes", [2, 3])
def test_training_steps_lower_the_loss(classes):
    keras.utils.set_random_seed(0)
    model = build_model(32, classes)
    y = np.arange(32) % classes
    # each class its own brightness: a network that learns at all tells them apart within a few steps
    x = (np.random.default_rng(0).integers(0, 40, (32, 32, 32, 3)) + 90 * y[:, None, None, None]).astype(np.uint8)
    before = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["loss"] < before


@pytest.mark.slow
def test_script_prints_the_summary():
    result = run("model.py", "--size", "32")
    assert result.returncode == 0, result.stderr
    assert "Total params" in result.stdout and "conv2d" in result.stdout
    assert result.stderr.strip() == ""  # TensorFlow's start-up chatter is silenced
