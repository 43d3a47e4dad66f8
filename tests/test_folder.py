"""An inspector's folder through predict.py: outputs traceable and never overwritten, phone formats,
every file accounted for, a report, and progress on a terminal."""

import csv
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, SAMPLE_DATA, mosaic, run, sample_files, write_rgb

from support.figures import source_of


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def site(tmp_path_factory, negative_patches, positive_patches):
    """Two days of a site survey: the same camera names (IMG_0001.jpg) on both days, one photo each a
    crack mosaic, a clean patch, a HEIC photo, and files that are not images."""
    site = tmp_path_factory.mktemp("survey") / "site"
    for day, crack in (("day1", True), ("day2", False)):
        (site / day).mkdir(parents=True)
        write_rgb(site / day / "IMG_0001.jpg",
                  mosaic(negative_patches[5], positive_patches[5], 4, 3, {(1, 1)} if crack else set()))
    (site / "day2" / "patch.jpg").write_bytes(sample_files("Negative")[11].read_bytes())
    (site / "notes.txt").write_text("north wall, second floor")
    (site / "clip.mov").write_bytes(b"\x00\x00\x00\x14ftypqt  ")
    return site


@pytest.fixture(scope="module")
def survey(site, tmp_path_factory):
    out = tmp_path_factory.mktemp("survey_out")
    result = run("predict.py", site, "--figures", "--out", out / "figures", "--save-tiles", out / "tiles",
                 "--csv", out / "site.csv", "--report", out / "report", cwd=out)
    return result, out


@pytest.mark.slow
def test_same_names_from_two_days_get_their_own_figures_tiles_and_rows(site, survey):
    result, out = survey
    assert result.returncode == 1  # two files could not be read (they are not images), the rest were classified
    rows = {row["path"]: row for row in read_csv(out / "site.csv")}
    day1, day2 = (rows[str(site / day / "IMG_0001.jpg")] for day in ("day1", "day2"))
    assert (day1["verdict"], day2["verdict"]) == ("crack", "no crack")
    # with --report the figures go beside the report, sub-folders mirrored
    assert day1["figure"] == str(out / "report" / "figures" / "day1" / "IMG_0001_prediction.jpg")
    assert day2["figure"] == str(out / "report" / "figures" / "day2" / "IMG_0001_prediction.jpg")
    for row in (day1, day2):  # each output says which input it shows: a report's, by the path it shows
        assert source_of(row["figure"]) == Path(row["path"]).relative_to(site).as_posix()
    tiles = {day: sorted((out / "tiles").rglob(f"{day}/IMG_0001_x*.jpg")) for day in ("day1", "day2")}
    assert len(tiles["day1"]) == len(tiles["day2"]) == int(day1["tiles"]) > 1
    assert {source_of(p) for p in tiles["day2"]} == {day2["path"]}


@pytest.mark.slow
def test_files_that_are_not_images_are_listed_not_dropped(site, survey):
    result, out = survey
    rows = {row["path"]: row for row in read_csv(out / "site.csv")}
    assert len(rows) == 5
    for name, kind in (("notes.txt", ".txt"), ("clip.mov", ".mov")):
        assert rows[str(site / name)]["verdict"] == "error"
        assert rows[str(site / name)]["error"] == f"not an image file of a kind read here ({kind})"
        assert f"error: {site / name}: not an image file" in result.stderr
    assert "Traceback" not in result.stderr
    page = (out / "report" / "index.html").read_text()
    assert "notes.txt" in page and "not an image file" in page
    assert "3 images classified" in result.stdout and "2 failed" in result.stdout


@pytest.mark.slow
def test_a_second_run_never_replaces_another_inputs_figure(site, tmp_path):
    other = tmp_path / "other" / "day1"
    other.mkdir(parents=True)
    (other / "IMG_0001.jpg").write_bytes(sample_files("Positive")[12].read_bytes())
    out = tmp_path / "figures"
    for folder in (site / "day1", other.parent / "day1", site / "day1"):  # the first again: replaced in place
        assert run("predict.py", folder, "--figures", "--out", out, "--csv", tmp_path / "p.csv").returncode == 0
        figure = read_csv(tmp_path / "p.csv")[0]["figure"]
        assert source_of(figure) == str((folder / "IMG_0001.jpg").resolve())
    assert sorted(p.name for p in out.iterdir()) == ["IMG_0001_2_prediction.png", "IMG_0001_prediction.png"]


@pytest.mark.slow
def test_a_heic_photo_is_classified(tmp_path, positive_patches):
    pillow_heif = pytest.importorskip("pillow_heif", reason="no pillow-heif wheel for this platform")
    crack = np.ascontiguousarray(positive_patches[4])
    pillow_heif.from_bytes(mode="RGB", size=(crack.shape[1], crack.shape[0]), data=crack.tobytes()).save(
        tmp_path / "IMG_0007.HEIC", quality=95)
    result = run("predict.py", tmp_path, "--csv", tmp_path / "out.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = read_csv(tmp_path / "out.csv")[0]
    assert row["path"].endswith("IMG_0007.HEIC") and row["verdict"] == "crack"


def test_without_pillow_heif_a_heic_photo_is_one_line_and_the_rest_is_classified(tmp_path):
    from test_predict import run_without

    (tmp_path / "IMG_0008.heic").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    (tmp_path / "wall.jpg").write_bytes(sample_files("Positive")[6].read_bytes())
    result = run_without("pillow_heif", tmp_path, "--csv", tmp_path / "out.csv", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    rows = {row["path"].rsplit("/", 1)[1]: row for row in read_csv(tmp_path / "out.csv")}
    assert rows["IMG_0008.heic"]["error"] == "a HEIC/HEIF photo needs pillow-heif: pip install pillow-heif"
    assert rows["wall.jpg"]["verdict"] == "crack"


def test_an_empty_folder_names_the_formats_read(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    result = run("predict.py", tmp_path, cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert ".heic" in result.stderr and ".jpg" in result.stderr and "no images to classify" in result.stderr


def test_repeated_inputs_are_counted_and_printed_in_the_order_given(tmp_path):
    patch, photo = SAMPLE_DATA / "Positive" / "08545.jpg", tmp_path / "wall.png"
    write_rgb(photo, cv2.resize(cv2.imread(str(patch))[..., ::-1], (700, 700)))
    result = run("predict.py", *[patch] * 5, photo, patch, "--no-figures", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    verdicts = [line.split(":")[0] for line in result.stdout.splitlines()[1:-1]]
    assert verdicts == [str(patch)] * 5 + [str(photo), str(patch)]  # a photo between patches keeps its place
    assert result.stdout.splitlines()[-1].startswith("7 images classified in ")


def test_a_probability_just_below_the_threshold_is_not_printed_as_reaching_it(tmp_path):
    from support.wording import cut

    assert (cut(0.98968), cut(0.99), cut(1.0), cut(0.0)) == ("0.989", "0.990", "1.000", "0.000")
    clean = sample_files("Negative")[1]
    assert run("predict.py", clean, "--csv", tmp_path / "p.csv", cwd=tmp_path).returncode == 0
    probability = float(read_csv(tmp_path / "p.csv")[0]["crack_probability"])
    threshold = np.ceil(probability * 1000 + 1e-6) / 1000  # just above it, at 3 decimals
    result = run("predict.py", clean, "--threshold", threshold, "--no-figures", cwd=tmp_path)
    line = result.stdout.splitlines()[1]
    assert "no crack" in line and float(line.rsplit(" ", 1)[1].rstrip(")")) < threshold, (line, probability)


@pytest.mark.slow
def test_a_folder_says_how_to_get_figures(tmp_path):
    result = run("predict.py", SAMPLE_DATA / "Negative", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == ("no figures for the 200 images found in folders: --figures draws "
                                              "them, --report makes a page of them all")
    assert not (tmp_path / "predictions").exists()


@pytest.mark.slow
def test_progress_shows_on_a_terminal_and_not_in_a_redirected_run(tmp_path):
    redirected = run("predict.py", SAMPLE_DATA / "Negative", cwd=tmp_path)
    assert "image/s" not in redirected.stderr and "\r" not in redirected.stderr  # a log stays line by line
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    process = subprocess.Popen([sys.executable, str(REPO / "predict.py"), str(SAMPLE_DATA)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    shown = b""
    while chunk := read_terminal(controller):
        shown += chunk
    assert process.wait() == 0
    text = shown.decode(errors="replace")
    assert "/400" in text and "image/s" in text and "<" in text  # count, rate and time left


def read_terminal(fd):
    try:
        return os.read(fd, 4096)
    except OSError:  # the other end closed: the run is over
        return b""


def test_a_tile_saved_again_under_another_class_moves_rather_than_doubles(tmp_path):
    patch = sample_files("Positive")[0]
    for threshold in ("0.5", "0.999999"):  # crack, then no crack for the same tile
        assert run("predict.py", patch, "--save-tiles", tmp_path / "tiles", "--threshold", threshold,
                   "--no-figures", cwd=tmp_path).returncode == 0
    saved = sorted(p.relative_to(tmp_path / "tiles").as_posix() for p in (tmp_path / "tiles").rglob("*.jpg"))
    assert saved == [f"Negative/{patch.stem}_x00000_y00000.jpg"]


def test_a_thin_photo_is_covered_by_its_smaller_tiles():
    from support.photos import tile_grid

    grid = tile_grid(np.zeros((100, 600, 3), np.uint8), 227, 113)
    covered = np.zeros(600, bool)
    for x, _, side in grid:
        covered[x:x + side] = True
    assert covered.all() and {side for _, _, side in grid} == {100}
