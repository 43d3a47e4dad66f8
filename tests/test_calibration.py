"""support/calibration.sure_cutoff: the "sure" cut-off of other classes is one the validation sample supports."""

import json
import zipfile

import numpy as np
import pytest

from support.calibration import describe_sure_calls, error_upper_bound, sure_cutoff
from support.crack_rules import calibrate, site_threshold
from support.evaluation import how_marks_read
from support.model_files import INFO_NAME


def calls(right_tops, wrong_tops):
    top = np.r_[right_tops, wrong_tops]
    return top, np.r_[np.ones(len(right_tops), bool), np.zeros(len(wrong_tops), bool)]


def test_one_error_in_a_few_hundred_sure_calls_is_allowed():
    # ~290 validation images cannot show 99.9%: the old rule left 0.99; 1 error in 250 sure calls is 0.4%
    top, right = calls(np.linspace(0.9, 1.0, 280), [0.95, 0.6, 0.7])
    calibration = sure_cutoff(top, right)
    assert calibration["sure_threshold"] == 0.71  # the error at 0.95 is 1 of 250 sure calls
    sure = calibration["sure_calls"]
    assert sure["validation_images"] == 283 and sure["uncertain_share"] == pytest.approx(2 / 283, abs=1e-4)
    assert sure["accuracy"] == pytest.approx(280 / 281, abs=1e-4) and sure["accuracy_lower_95"] < sure["accuracy"]


def test_a_tiny_validation_split_allows_no_error():
    top, right = calls([0.99, 0.98, 0.97, 0.8, 0.6], [0.9])
    assert sure_cutoff(top, right)["sure_threshold"] == 0.91


def test_sure_errors_high_up_need_many_right_calls():
    # two errors at 0.98-0.99 are under 0.5% of the sure calls only with every one of 400 right calls
    assert sure_cutoff(*calls(np.linspace(0.5, 0.9, 400), [0.99, 0.98]))["sure_threshold"] == 0.5
    assert sure_cutoff(*calls(np.linspace(0.5, 0.9, 300), [0.99, 0.98]))["sure_threshold"] == 0.99


def test_no_validation_call_reaches_the_strictest_cut_off():
    calibration = sure_cutoff(*calls([0.6, 0.7], [0.8]))
    assert calibration["sure_threshold"] == 0.99 and calibration["sure_calls"]["accuracy"] is None


def test_clopper_pearson_bound():
    assert error_upper_bound(0, 242) == pytest.approx(1 - 0.05 ** (1 / 242), rel=1e-6)  # about 3/n
    assert error_upper_bound(1, 230) == pytest.approx(0.0205, abs=2e-4)
    assert error_upper_bound(3, 3) == 1.0


def test_crack_models_keep_their_rule():
    probs = np.array([[0.05, 0.95]] * 50 + [[0.95, 0.05]] * 50)
    y = np.r_[np.ones(50, int), np.zeros(50, int)]
    calibration = calibrate(probs, y)
    assert calibration["sure_threshold"] == 0.5 and "sure_calls" not in calibration


def test_train_says_the_cut_off_and_what_it_leaves_uncertain():
    line = describe_sure_calls(sure_cutoff(*calls(np.linspace(0.9, 1.0, 280), [0.95, 0.6, 0.7])))
    assert line.startswith("sure from top probability 0.71: 0.7% of the 283 validation images left uncertain, "
                           "the sure ones 99.6% right (at least 98.")
    assert "strictest" in describe_sure_calls(sure_cutoff(*calls(np.linspace(0.5, 0.9, 300), [0.99, 0.98])))


def site_validation(site_cracks):
    """Validation probabilities: the dataset's images read right and sure, a site's no crack tiles
    low and its crack tiles at `site_cracks`."""
    probs = np.r_[np.full(100, 0.02), np.full(100, 0.98), np.full(40, 0.05), site_cracks]
    labels = np.r_[np.zeros(100, int), np.ones(100, int), np.zeros(40, int), np.ones(len(site_cracks), int)]
    sources = np.r_[np.zeros(200, int), np.ones(40 + len(site_cracks), int)]
    return probs, labels, sources


def test_a_site_whose_cracks_read_low_gets_a_lower_threshold():
    # A fine-tuned model ranks the site's cracks above its clean tiles, but under 0.5: its threshold
    # follows them, and the dataset's images still read right at it.
    probs, labels, sources = site_validation(np.linspace(0.2, 0.6, 30))
    assert site_threshold(probs, labels, sources) == 0.2
    assert site_threshold(*site_validation(np.full(30, 0.9))) == 0.5  # already right: kept


def test_a_site_with_few_validation_images_keeps_the_threshold():
    # A handful of marks cannot tell a threshold apart from chance: the model's own is kept.
    assert site_threshold(*site_validation(np.linspace(0.2, 0.4, 10))) == 0.5
    probs, labels, sources = site_validation(np.linspace(0.2, 0.6, 30))
    calibration = calibrate(np.c_[1 - probs, probs], labels, 0.5, sources)
    assert calibration["threshold"] == 0.2 and calibration["sure_threshold"] >= 0.2


def test_marks_read_before_and_after_each_at_its_models_threshold(tmp_path, capsys):
    # fine-tuning a site model again: its marks read before at the threshold it was saved with, not 0.5
    start = tmp_path / "site.keras"
    with zipfile.ZipFile(start, "w") as archive:
        archive.writestr(INFO_NAME, json.dumps({"class_names": ["Negative", "Positive"], "image_size": 64,
                                                "threshold": 0.3}))
    y = np.array([1, 1, 0])
    before, after = np.c_[[0.6, 0.6, 0.8], [0.4, 0.4, 0.2]], np.c_[[0.8, 0.4, 0.9], [0.2, 0.6, 0.1]]
    counts = how_marks_read(y, before, after, {"class_names": ["Negative", "Positive"]}, 0.5, start)
    assert counts["before"]["Positive"] == [2, 2] and counts["after"]["Positive"] == [1, 2]
    assert "Positive 2 -> 1 of 2" in capsys.readouterr().out
