"""Labels from crack masks (python -m support.masks): a segmented set becomes a site to fine-tune on."""

import csv
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO, run, write_rgb


def labels_from_masks(*args, cwd):
    return subprocess.run([sys.executable, "-m", "support.masks", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.slow
def test_masks_become_labels_of_predicts_tile_size(tmp_path):
    """A 256x192 photo in 64 px tiles, every 16 px: a long crack, a short stub, and a grey joint."""
    (tmp_path / "site" / "images").mkdir(parents=True)
    (tmp_path / "site" / "masks").mkdir()
    photo = np.random.default_rng(0).integers(90, 160, (192, 256, 3), np.uint8)
    write_rgb(tmp_path / "site" / "images" / "wall.jpg", photo)
    mask = np.zeros((192, 256), np.uint8)
    mask[10:54, 20] = 255  # a crack 44 px long: more than a quarter of a tile in every tile that holds it
    mask[150, 200:205] = 255  # a stub of 5 px: the tiles around it are neither clear crack nor clean
    mask[:, 128] = 204  # a drawn joint, grey: not crack
    assert cv2.imwrite(str(tmp_path / "site" / "masks" / "wall.png"), mask)
    write_rgb(tmp_path / "site" / "images" / "no_mask.jpg", photo)

    result = labels_from_masks("site/images", "site/masks", "--tile", 64, "--out", "labels/site.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no_mask.jpg: no mask in site/masks" in result.stderr
    with open(tmp_path / "labels" / "site.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["path"] for row in rows} == {"../site/images/wall.jpg"}  # relative to the labels file
    boxes = {(int(row["x"]), int(row["y"])): row["label"] for row in rows}
    assert all(int(row["width"]) == int(row["height"]) == 64 for row in rows)
    assert {x for x, _ in boxes} == set(range(0, 256 - 64 + 1, 16))  # every quarter tile
    assert boxes[(0, 0)] == "crack" and boxes[(0, 32)] == "crack"  # the crack's tiles
    assert boxes[(96, 96)] == "no crack" and boxes[(128, 0)] == "no crack"  # the joint is not crack
    assert (160, 128) not in boxes and (192, 128) not in boxes  # around the stub: left out
    assert f"wrote labels/site.csv: {list(boxes.values()).count('crack')} crack and" in result.stdout
    written = (tmp_path / "labels" / "site.csv").read_bytes()
    again = labels_from_masks("site/images", "site/masks", "--tile", 32, "--out", "labels/site.csv", cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.strip() == "error: --out labels/site.csv exists; give a new file name"
    assert (tmp_path / "labels" / "site.csv").read_bytes() == written  # labels may be an inspector's: kept

    prep = run("data_prep.py", "--src", tmp_path / "labels" / "site.csv", "--out", tmp_path / "cache")
    assert prep.returncode == 0, prep.stderr
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["class_names"] == ["Negative", "Positive"]
    assert sum(meta["counts"][split]["Positive"] for split in meta["counts"]) == list(boxes.values()).count("crack")


def test_a_mask_of_another_size_is_skipped_with_the_reason(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    write_rgb(tmp_path / "images" / "a.jpg", np.full((128, 128, 3), 120, np.uint8))
    assert cv2.imwrite(str(tmp_path / "masks" / "a.png"), np.zeros((64, 64), np.uint8))
    result = labels_from_masks("images", "masks", "--tile", 64, "--out", "labels.csv", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "a.jpg: is 64x64 px, its photo 128x128" in result.stderr
    assert "error: no tile of any photo in images could be labelled" in result.stderr
    assert not (tmp_path / "labels.csv").exists()


def test_a_tile_that_would_blow_a_photo_up_is_refused(tmp_path):
    result = labels_from_masks("images", "masks", "--tile", 8, "--out", "labels.csv", cwd=tmp_path)
    assert result.returncode == 2 and "--tile must be at least 32" in result.stderr, result.stderr
