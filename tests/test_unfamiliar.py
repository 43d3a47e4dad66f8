"""Inputs of none of a model's classes: unlike its training images, so uncertain however sure it is."""

import numpy as np
import pytest

from model import MIN_INPUT_SIZE, build_model
from support import model_files, unfamiliar, verdicts
from support.tf_import import keras


def clusters(rng, n, centres):
    """n feature rows around each of the centres (classes 0, 1, ...), with their labels."""
    rows = np.concatenate([centre + rng.normal(size=(n, len(centre))) for centre in centres])
    return rows, np.repeat(np.arange(len(centres)), n)


@pytest.fixture(scope="module")
def statistics():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(3, 20))
    train, labels = clusters(rng, 300, centres)
    val, _ = clusters(rng, 400, centres)
    return unfamiliar.feature_statistics(train, labels, val), val, centres


def test_the_cut_off_sets_aside_the_share_of_validation_images_it_names(statistics):
    stats, val, centres = statistics
    info = {"features": stats}
    far = unfamiliar.far_from_training(val, info, len(val))
    assert stats["percentile"] == 99.5 and far.mean() == pytest.approx(0.005, abs=1 / len(val))
    # an input of none of the classes lies far from all of them; one of a class lies near its centre
    odd = np.vstack([np.zeros(20), 10 * centres[0], np.full(20, 30.0)])
    assert unfamiliar.far_from_training(odd, info, 3).all()
    assert not unfamiliar.far_from_training(centres, info, 3).any()
    assert not unfamiliar.far_from_training(None, {}, 2).any()  # a model saved before: nothing is unfamiliar


@pytest.mark.parametrize("change", [{"means": [[1.0, 2.0]]}, {"whitening": "not base64!"}, {"width": 7},
                                    {"unfamiliar_beyond": "far"}, {"unfamiliar_beyond": float("nan")}])
def test_damaged_statistics_are_named_when_the_model_is_read(statistics, change):
    info = {"class_names": ["a", "b", "c"], "image_size": 64, "features": statistics[0] | change}
    assert "features must hold" in model_files.info_problem(info)
    assert model_files.info_problem(info | {"features": statistics[0]}) is None


def test_an_input_unlike_the_training_images_is_uncertain_however_sure():
    rule = verdicts.verdict_rule({"class_names": ["blotch", "clean", "line"], "sure_threshold": 0.9})
    sure_line = np.array([[0.0, 0.0, 1.0]])
    assert verdicts.image_result(sure_line, np.array([False]), rule, far=np.array([False])).verdict == "line"
    result = verdicts.image_result(sure_line, np.array([False]), rule, far=np.array([True]))
    assert result.verdict == "uncertain" and result.reason.startswith("unlike the training images: far from")
    result = verdicts.image_result(sure_line, np.array([True]), rule, far=np.array([False]))
    assert result.reason == "unlike the training images: smoother than 99.5% of them"
    # a photo in tiles: mostly unlike them, it is uncertain; a few such tiles are left out of the count
    tiles = np.repeat(sure_line, 4, axis=0)
    result = verdicts.image_result(tiles, np.zeros(4, bool), rule, (2, 2), [(0, 0, 1)] * 4, far=np.r_[1, 1, 0, 1] > 0)
    assert result.verdict == "uncertain" and "75% of the tiles are far from them" in result.reason
    clean_tiles = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    far = np.r_[1, 0, 0, 0] > 0  # the one line tile is unfamiliar: the sure tiles say clean 2, line 1
    assert verdicts.image_result(clean_tiles, np.zeros(4, bool), rule, (2, 2), [(0, 0, 1)] * 4,
                                 far=far).verdict == "clean"


def test_the_features_are_found_in_any_network():
    """Each Conv2D layer's mean maps and the last layer's input, whatever layers a student adds."""
    network = build_model(MIN_INPUT_SIZE, 3)
    layers = keras.layers
    added = keras.Sequential([keras.Input((MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3)), layers.Conv2D(8, 3),
                              layers.BatchNormalization(), layers.Conv2D(4, 3, padding="same"),
                              layers.GlobalAveragePooling2D(), layers.Dense(5), layers.Dense(2, activation="softmax")])
    for model in (network, added):
        width = sum(layer.filters for layer in model.layers if isinstance(layer, layers.Conv2D))
        width += model.layers[-2].output.shape[-1]
        probs, features = model_files.with_features(model)(np.zeros((2, MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3), np.uint8))
        assert features.shape == (2, width) and np.allclose(probs, model(np.zeros((2, MIN_INPUT_SIZE,
                                                                                   MIN_INPUT_SIZE, 3), np.uint8)))
