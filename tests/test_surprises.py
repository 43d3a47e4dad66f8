"""What a student meets first with folders of their own: each surprise a warning or one clear line."""

import numpy as np
import pytest
from conftest import write_rgb

import data_prep
import train
from model import MIN_INPUT_SIZE
from predict import BUNDLED_MODEL
from support.errors import InputError
from support.model_files import check_starting_model


def folders(root, counts):
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            write_rgb(root / name / f"{i}.png", rng.integers(0, 256, (MIN_INPUT_SIZE,) * 2 + (3,), dtype=np.uint8))
    return root


def test_one_class_in_classes_says_two_are_needed_and_lists_the_folders(tmp_path):
    src = folders(tmp_path / "src", {"concrete": 1, "brick": 1, "tile": 1})
    with pytest.raises(InputError, match=r"^--classes concrete names one class, a model needs at least two "
                                         r"\(sub-folders of .*src: brick, concrete, tile\)$"):
        data_prep.find_class_folders(src, ["concrete"])


def test_classes_take_the_folders_spelling(tmp_path):
    src = folders(tmp_path / "src", {"Concrete": 1, "brick": 1})
    assert list(data_prep.find_class_folders(src, ["concrete", "BRICK"])) == ["Concrete", "brick"]
    assert list(data_prep.find_class_folders(src)) == ["brick", "Concrete"]


def test_a_class_of_a_few_images_is_warned_about_with_its_empty_test_split(tmp_path, capsys):
    src = folders(tmp_path / "src", {"many": 60, "few": 5})
    data_prep.main(["--src", str(src), "--out", str(tmp_path / "cache"), "--size", str(MIN_INPUT_SIZE),
                    "--workers", "1"])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: few has only 5 images, none in the test split: the figures there say nothing "
                        "about it; aim for 50 or more per class"]


@pytest.mark.parametrize("value", ["0", "-3"])
def test_patience_below_one_is_refused(value, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--patience", value])
    assert "error: --patience must be 1 or more" in capsys.readouterr().err
    assert train.parse_args(["--patience", "1"]).patience == 1


def test_a_model_of_the_same_classes_in_another_order_says_which_order():
    meta = {"class_names": ["Positive", "Negative"], "image_size": 64}
    with pytest.raises(InputError, match=r"holds Positive, Negative: make the cache with data_prep.py "
                                         r"--classes Negative,Positive$"):
        check_starting_model(BUNDLED_MODEL, meta)
    with pytest.raises(InputError, match="make the cache with those class folders$"):
        check_starting_model(BUNDLED_MODEL, meta | {"class_names": ["brick", "Negative"]})


def test_a_cache_of_images_smaller_than_the_network_takes_is_one_line(tmp_path, monkeypatch):
    """After a block is added to model.py, a cache made for the smaller network is refused before training."""
    src = folders(tmp_path / "src", {"a": 10, "b": 10})
    data_prep.main(["--src", str(src), "--out", str(tmp_path / "cache"), "--size", str(MIN_INPUT_SIZE),
                    "--workers", "1"])
    monkeypatch.setattr(train, "MIN_INPUT_SIZE", MIN_INPUT_SIZE + 1)  # as if the network had grown
    with pytest.raises(InputError, match=rf"holds {MIN_INPUT_SIZE} px images but the network takes "
                                         rf"{MIN_INPUT_SIZE + 1} px or more \(model.py\); run data_prep.py"):
        train.main(["--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "model")])
    assert not (tmp_path / "model").exists()
