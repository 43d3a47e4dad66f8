"""model.py: the network is the design's, and it takes raw pixels."""

import numpy as np
from conftest import run

from model import THRESHOLD, build_model, keras


def test_layers_match_the_design():
    model = build_model(64)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Rescaling",
                     "Conv2D", "MaxPooling2D", "Dropout",
                     "Conv2D", "MaxPooling2D", "Dropout",
                     "Conv2D", "MaxPooling2D", "Dropout",
                     "Flatten", "Dense", "Dense"]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [16, 32, 32]
    assert all(c.kernel_size == (3, 3) and c.activation.__name__ == "relu" for c in convs)
    hidden, output = model.layers[-2:]
    assert hidden.units == 64 and hidden.activation.__name__ == "relu"
    assert output.units == 1 and output.activation.__name__ == "sigmoid" and output.dtype == "float32"
    assert model.layers[0].scale == 1 / 255
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "binary_crossentropy"
    metrics = model.get_compile_config()["metrics"]
    assert [m["config"]["name"] for m in metrics] == ["accuracy", "precision", "recall", "auc"]


def test_takes_raw_uint8_pixels_and_returns_probabilities():
    model = build_model(48)
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    prob = model.predict(images, verbose=0)
    assert prob.shape == (5, 1) and np.all((prob >= 0) & (prob <= 1))
    assert 0 < THRESHOLD < 1


def test_script_prints_the_summary():
    result = run("model.py", "--size", "32")
    assert result.returncode == 0, result.stderr
    assert "Total params" in result.stdout and "conv2d" in result.stdout
    assert result.stderr.strip() == ""  # TensorFlow's start-up chatter is silenced
