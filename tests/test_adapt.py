"""Teaching the model a new surface: predict --save-tiles, sort, data_prep --src A --src B, train --init-from."""

import csv
import json
import shutil

import cv2
import pytest
from conftest import PRETRAINED, SAMPLE_DATA, assert_clean_failure, mosaic, run, write_rgb

from support.model_files import read_model_info


@pytest.mark.slow
def test_saved_tiles_sorted_and_merged_fine_tune_a_model_that_predict_uses(tmp_path, negative_patches,
                                                                           positive_patches):
    photo = tmp_path / "site" / "wall.png"
    photo.parent.mkdir()
    planted = {(1, 1), (4, 2)}
    write_rgb(photo, mosaic(negative_patches[10], positive_patches[10], 6, 4, planted))

    # 1. predict saves every tile it classified, at the photo's resolution, by verdict
    result = run("predict.py", photo.parent, "--save-tiles", tmp_path / "tiles", "--tiles-csv", tmp_path / "t.csv")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    saved = sorted((tmp_path / "tiles").rglob("*.jpg"))
    assert len(saved) == len(rows) == 96
    for row in rows:
        verdict = "Positive" if float(row["probability"]) >= 0.5 else "Negative"
        name = f"wall_x{int(row['x']):05d}_y{int(row['y']):05d}.jpg"  # its place in the photo; --tiles-csv has p
        tile = cv2.imread(str(tmp_path / "tiles" / verdict / name))
        assert tile.shape[:2] == (int(row["height"]), int(row["width"]))
    assert {p.parent.name for p in saved} == {"Positive", "Negative"}  # the classes' folders, as data_prep reads them

    # 2. a person moves the wrong ones to the other folder (here the verdicts are right as they are)
    site = tmp_path / "tiles"

    # 3. merged with the original data, each source split alike
    cache = tmp_path / "cache"
    result = run("data_prep.py", "--src", SAMPLE_DATA, "--src", site, "--out", cache)
    assert result.returncode == 0, result.stderr
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["sources"] == [str(SAMPLE_DATA), str(site)]
    assert sum(meta["counts"][s]["total"] for s in ("train", "val", "test")) == 400 + 96

    # 4. fine-tuned from the bundled model
    result = run("train.py", "--cache", cache, "--out", tmp_path / "tuned", "--init-from", PRETRAINED, "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "every source weighs the same" in result.stdout
    assert read_model_info(tmp_path / "tuned" / "model.keras")["trained_on"] == meta["sources"]
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.9
    assert list(metrics["per_source"]) == meta["sources"]  # test accuracy on each source, your site included
    assert [m["images"] for m in metrics["per_source"].values()] == [24, meta["file_sources"]["test"].count(1)]

    # 5. and used by predict, which still finds the planted cracks and nothing else
    result = run("predict.py", photo, "--model", tmp_path / "tuned" / "model.keras", "--tiles-csv",
                 tmp_path / "t2.csv")
    assert result.returncode == 0, result.stderr
    assert "(--model, run by" in result.stdout and f"{photo}: crack" in result.stdout


def test_tiles_are_never_saved_where_they_would_be_read_back(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(SAMPLE_DATA / "Positive" / "08545.jpg", folder)
    assert_clean_failure(run("predict.py", folder, "--save-tiles", folder / "tiles"), "is inside the input folder")
