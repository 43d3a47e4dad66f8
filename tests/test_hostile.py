"""Hostile input (issue 27): nothing a user made is lost, nothing hangs, no traceback, no silent wrong
result. Each test is one reproduction of the issue; none trains a model."""

import csv
import json
import os
import re
import shutil
import zipfile

import cv2
import numpy as np
import pytest
from conftest import PRETRAINED, SAMPLE_DATA, assert_clean_failure, run, sample_files

from model import MIN_INPUT_SIZE
from support import (atomic_files, cache, html_report, images, model_files, output_folders, photos, results, runner,
                     safe_text, verdicts)
from support.errors import InputError

PATCH = sample_files("Positive")[0]


def write_labels(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("path", "x", "y", "width", "height", "label"), *rows])
    return path


def small_dataset(folder, names=("Negative", "Positive"), count=3):
    for name in names:
        (folder / name).mkdir(parents=True)
        for path in sample_files(name if name in ("Negative", "Positive") else "Negative")[:count]:
            shutil.copy(path, folder / name / path.name)
    return folder


def copied_model(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".keras", ".tflite"):
        shutil.copy(PRETRAINED.with_suffix(suffix), folder / f"model{suffix}")
    return folder / "model.keras"


# ----------------------------------------------------------------------------------------------
# 1-3: an output never replaces what the project did not write


def test_data_prep_keeps_a_users_file_beside_a_meta_json(tmp_path):
    out = tmp_path / "P"
    (out / "chapter").mkdir(parents=True)
    (out / "meta.json").write_text("{}")
    (out / "thesis.txt").write_text("years of work")
    assert_clean_failure(run("data_prep.py", "--src", SAMPLE_DATA, "--out", out, timeout=60),
                         "not a data_prep cache", "thesis.txt")
    assert (out / "thesis.txt").read_text() == "years of work" and (out / "chapter").is_dir()


def test_a_folder_a_run_wrote_is_replaced_but_not_once_a_user_added_to_it(tmp_path):
    out = tmp_path / "cache"
    tmp = output_folders.new_folder_beside(out, "data_prep cache")
    (tmp / "extra_from_a_newer_version.npy").write_text("")
    output_folders.replace_folder(tmp, out)
    runner.release()
    output_folders.check_ours("--out", out, "data_prep cache")  # all of it written by the run: fine
    with pytest.raises(InputError, match="not a train.py output"):  # e.g. train.py --out CACHE
        output_folders.check_ours("--out", out, "train.py output")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="notes.txt"):
        output_folders.check_ours("--out", out, "data_prep cache")
    mine = tmp_path / "results"  # only names a run writes, but no run wrote them
    mine.mkdir()
    (mine / "metrics.json").write_text("{}")
    with pytest.raises(InputError, match="metrics.json"):
        output_folders.check_ours("--out", mine, "train.py output")
    output_folders.check_ours("--out", tmp_path / "empty", "train.py output")  # missing or empty: fine
    (tmp_path / "empty").mkdir()
    output_folders.check_ours("--out", tmp_path / "empty", "train.py output")


@pytest.mark.slow
def test_train_keeps_a_users_file_in_its_out_folder(tmp_path, sample_cache):
    out = tmp_path / "models"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    assert_clean_failure(run("train.py", "--cache", sample_cache, "--out", out), "not a train.py output")
    assert (out / "thesis.txt").read_text() == "years of work"
    cache_copy = tmp_path / "cache"
    shutil.copytree(sample_cache, cache_copy)
    assert_clean_failure(run("train.py", "--cache", cache_copy, "--out", cache_copy, "--epochs", "1"),
                         "not a train.py output")  # a cache is the project's, but no model folder
    assert (cache_copy / "meta.json").is_file()


@pytest.mark.slow
def test_train_writes_no_figures_where_images_are_read(tmp_path, sample_cache):
    src = small_dataset(tmp_path / "data", count=10)
    assert_clean_failure(run("train.py", "--cache", sample_cache, "--out", src / "Positive"), "not a train.py output")
    assert_clean_failure(run("train.py", "--cache", sample_cache, "--out", src / "Positive" / "models"),
                         "a folder of images")
    images.check_not_among_images("--out", src / "Positive" / "runs" / "models")  # a stray photo further up: fine
    shutil.copy(PATCH, tmp_path / "my_wall.jpg")  # a photo of the user's own beside the scripts: not a folder of images
    images.check_not_among_images("--out", tmp_path / "models")
    # a train.py output beside the class folders (it holds a marker) is not taken for a class
    (src / "models").mkdir()
    (src / "models" / output_folders.MARKER).write_text('{"kind": "train.py output", "written": ["training_curves.png"]}')
    shutil.copy(PATCH, src / "models" / "training_curves.png")
    result = run("data_prep.py", "--src", src, "--out", tmp_path / "cache", "--workers", "1", timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "cache" / "meta.json").read_text())["class_names"] == ["Negative", "Positive"]


@pytest.mark.slow
@pytest.mark.parametrize("csv_option", ["--csv", "--tiles-csv"])
def test_a_csv_never_replaces_an_input_the_model_or_the_other_csv(tmp_path, csv_option):
    photo = tmp_path / "in" / "photo.jpg"
    photo.parent.mkdir()
    shutil.copy(PATCH, photo)
    model = copied_model(tmp_path / "m")
    (tmp_path / "notes.txt").write_text("mine")
    write_labels(tmp_path / "labels.csv", [("photo.jpg", 0, 0, 64, 64, "crack")])  # the report's marks
    (tmp_path / "notes.csv").write_text("path,model_verdict,inspector_verdict,note,marked_tiles\n")
    for target, fragment in ((photo, "is an input"), (model, "is the model"), (model.with_suffix(".tflite"),
                             "is the model"), (tmp_path / "notes.txt", "not a CSV that predict wrote"),
                             (tmp_path / "labels.csv", "not a CSV that predict wrote"),
                             (tmp_path / "notes.csv", "not a CSV that predict wrote")):
        before = target.read_bytes()
        assert_clean_failure(run("predict.py", photo, "--model", model, csv_option, target, timeout=60), fragment)
        assert target.read_bytes() == before
    assert_clean_failure(run("predict.py", photo, "--csv", tmp_path / "x.csv", "--tiles-csv", tmp_path / "x.csv",
                             timeout=60), "is the --csv file")


@pytest.mark.slow
def test_a_report_folder_that_holds_a_report_is_refused_and_kept(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(PATCH, site / "a.jpg")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "index.html").write_text("their page")
    assert_clean_failure(run("predict.py", site, "--report", tmp_path / "theirs", timeout=60), "already holds a report")
    assert (tmp_path / "theirs" / "index.html").read_text() == "their page"
    assert run("predict.py", site, "--report", tmp_path / "r", timeout=60).returncode == 0
    first = (tmp_path / "r" / "index.html").read_bytes()
    assert_clean_failure(run("predict.py", site, "--report", tmp_path / "r", timeout=60), "already holds a report")
    assert (tmp_path / "r" / "index.html").read_bytes() == first
    assert not list(tmp_path.glob(".*.lock"))  # released at the end


def test_a_folder_written_by_another_run_at_once_is_locked(tmp_path):
    (tmp_path / ".r.lock").write_text(str(os.getpid()))  # this process is alive: a run in progress
    assert_clean_failure(run("predict.py", PATCH, "--report", tmp_path / "r", timeout=60),
                         "is being written by another run", f"process {os.getpid()}")
    assert not (tmp_path / "r").exists()
    (tmp_path / ".r.lock").write_text("999999999")  # a killed run's lock: taken over
    assert run("predict.py", PATCH, "--report", tmp_path / "r", timeout=60).returncode == 0
    assert not (tmp_path / ".r.lock").exists()


# ----------------------------------------------------------------------------------------------
# 4-6: nothing hangs, one image never ends the run, memory is bounded


@pytest.mark.slow
def test_a_fifo_is_skipped_unopened_by_predict_and_data_prep(tmp_path):
    src = small_dataset(tmp_path / "data")
    os.mkfifo(src / "Positive" / "x.jpg")
    result = run("predict.py", src / "Positive", "--csv", tmp_path / "p.csv", timeout=60)
    assert result.returncode == 0 and "not a regular file" in result.stderr, result.stderr
    result = run("data_prep.py", "--src", src, "--out", tmp_path / "cache", "--workers", "1", timeout=60)
    assert result.returncode == 0 and "not a regular file" in result.stderr, result.stderr
    result = run("predict.py", src / "Positive" / "x.jpg", timeout=60)
    assert result.returncode == 1 and "x.jpg: not a regular file" in result.stderr, result.stderr


@pytest.mark.slow
def test_an_image_whose_figure_cannot_be_drawn_takes_no_other_down(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(PATCH, site / "a.jpg")
    cv2.imwrite(str(site / "thin.png"), np.full((20, 50000, 3), 100, np.uint8))
    result = run("predict.py", site, "--csv", tmp_path / "r.csv", "--report", tmp_path / "r", timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    # drawn as a line a pixel high (it once crashed OpenCV); a figure OpenCV cannot draw would be a line
    # "no figure: ..." on stderr, and the run would go on the same way
    assert not result.stderr and len(list((tmp_path / "r" / "figures").glob("*_prediction.jpg"))) == 2
    with open(tmp_path / "r.csv") as f:
        assert [row["verdict"] for row in csv.DictReader(f)] == ["crack", "no crack"]
    assert "thin.png" in (tmp_path / "r" / "index.html").read_text()


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path):
    data = bytearray(cv2.imencode(".jpg", np.zeros((100, 100, 3), np.uint8))[1].tobytes())
    frame = data.index(b"\xff\xc0")
    data[frame + 5:frame + 9] = (30000).to_bytes(2, "big") * 2  # the header of a 30000 x 30000 photo
    (tmp_path / "huge.jpg").write_bytes(bytes(data))
    with pytest.raises(images.ImageError, match=r"too large: 30000x30000 px, over the limit of 100 megapixels \(400"):
        images.decode_image(tmp_path / "huge.jpg")
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((30, 40, 3), np.uint8))
    assert images.header_size(tmp_path / "small.png") == (40, 30, "PNG")


# ----------------------------------------------------------------------------------------------
# 7-8: escaping


def test_a_file_name_cannot_break_the_reports_script(tmp_path):
    name = "<!--<script>&</script>.jpg"
    row = {"path": name, "verdict": "crack", "reason": "", "figure": None, "thumbnail": None,
           "mark": {"source": f"/site/{name}", "w": 1, "h": 1}}
    page = html_report.write_report(tmp_path, "t", [], [row]).read_text()
    data = re.search(r'<script type="application/json" id="marking">(.*?)</script>', page, re.S).group(1)
    assert not set("<>&") & set(data)
    assert json.loads(data)["0"]["path"] == name and json.loads(data)["0"]["source"] == f"/site/{name}"


def test_the_saved_labels_quote_a_path_with_a_carriage_return():
    pattern = re.search(r"const quoted = text => /(.*?)/\.test", html_report.page_file("report.js")).group(1)
    assert re.search(pattern, "site/a\rb.jpg")


def test_csv_cells_cannot_be_formulas_and_names_cannot_forge_lines(tmp_path):
    for name in ("=HYPERLINK(1).jpg", "+1.jpg", "-1.jpg", "@SUM.jpg", "a\nb.jpg: no crack\x1b[0m.jpg"):
        shutil.copy(PATCH, tmp_path / name)
    names = sorted(p.name for p in tmp_path.glob("*.jpg"))
    result = run("predict.py", "--csv", "r.csv", "--no-figures", "--", *names, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "r.csv", newline="") as f:
        cells = [row["path"] for row in csv.DictReader(f)]
    assert cells == [name if name[0] not in "=+-@" else f"'{name}" for name in names]
    assert "a\\nb.jpg: no crack\\x1b[0m.jpg: crack" in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("b.jpg")]
    assert safe_text.neutral_cell("\tx") == "'\tx" and safe_text.neutral_cell(0.5) == 0.5


# ----------------------------------------------------------------------------------------------
# 9-10: one clear line instead of a traceback or a silent wrong result


@pytest.mark.parametrize("cell, fragment", [("1e400", "must be numbers"), ("inf", "must be numbers"),
                                            ("x" * 200_000, "cannot read labels"), (None, "the label is blank")])
def test_a_bad_labels_file_is_one_line(tmp_path, cell, fragment):
    row = ["p.jpg", 0, 0, 64, 64, "crack"]
    if cell is None:
        row[5] = "  "
    else:
        row[1] = cell
    labels = write_labels(tmp_path / "labels.csv", [row, ["p.jpg", 64, 0, 64, 64, "no crack"]])
    assert_clean_failure(run("data_prep.py", "--src", labels, "--out", tmp_path / "c", timeout=60), fragment)


@pytest.mark.parametrize("rows, fragment", [
    ([(0, "crack"), (0, "no crack")], "labelled both Positive and Negative"),
    ([(0, "stain"), (64, "stain")], "one class only"), ([(0, "crack"), (64, "Positive")], "no Negative image")])
def test_contradicting_or_one_class_labels_are_refused(tmp_path, rows, fragment):
    shutil.copy(PATCH, tmp_path / "p.jpg")
    labels = write_labels(tmp_path / "labels.csv", [["p.jpg", x, 0, 64, 64, label] for x, label in rows])
    assert_clean_failure(run("data_prep.py", "--src", labels, "--out", tmp_path / "c", timeout=60), fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--size", str(MIN_INPUT_SIZE - 1)], f"--size must be at least {MIN_INPUT_SIZE}"),
    (["--split", "nan:1:1"], "expected three numbers"),
    (["--split", "1:0:0"], "validation above 0"), (["--seed", "-1"], "--seed must be 0 or more"),
    (["--classes", "Positive,positive"], "names a folder twice")])
def test_data_prep_options_that_would_fail_later_are_refused_at_once(tmp_path, args, fragment):
    result = run("data_prep.py", "--src", SAMPLE_DATA, "--out", tmp_path / "c", *args, timeout=60)
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "c").exists()


def test_folders_differing_only_in_letter_case_are_refused(tmp_path):
    src = small_dataset(tmp_path / "data", ("cat", "Cat", "dog"))
    if len(list(src.iterdir())) < 3:
        pytest.skip("a file system that ignores letter case")
    assert_clean_failure(run("data_prep.py", "--src", src, "--out", tmp_path / "c", timeout=60),
                         "differ only in letter case", "Cat, cat")


@pytest.mark.parametrize("change, fragment", [
    ({"class_names": None}, "class_names must be a list"), ({"class_names": [1, 2]}, "class_names must be a list"),
    ({"class_names": "NP"}, "class_names must be a list"), ({"class_names": ["A", "a"]}, "each once"),
    ({"image_size": 32.9}, "image_size must be a whole number"), ({"image_size": 0}, "must be a whole number"),
    ({"counts": None}, "is damaged"), ({"sources": ["a", "b"], "file_sources": None}, "is damaged")])
def test_a_damaged_meta_json_is_one_line(tmp_path, sample_cache, change, fragment):
    folder = tmp_path / "cache"
    shutil.copytree(sample_cache, folder)
    meta = json.loads((folder / "meta.json").read_text()) | change
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=re.escape(fragment)):
        cache.load_cache(folder)


def test_a_cache_label_out_of_range_is_refused(tmp_path, sample_cache):
    folder = tmp_path / "cache"
    shutil.copytree(sample_cache, folder)
    y = np.load(folder / "val_y.npy").astype(np.int64)
    y[0] = -1
    np.save(folder / "val_y.npy", y)
    with pytest.raises(InputError, match="inconsistent"):
        cache.load_cache(folder)


def test_train_refuses_a_negative_seed(capsys):
    import train

    with pytest.raises(SystemExit) as refused:
        train.parse_args(["--seed", "-1"])
    assert refused.value.code == 2 and "--seed 0 or more" in capsys.readouterr().err


@pytest.mark.parametrize("change, fragment", [({"class_names": [1, 2]}, "class_names must be a list"),
                                              ({"threshold": "high"}, "threshold must be a probability"),
                                              ({"threshold": float("nan")}, "threshold must be a probability"),
                                              ({"class_names": "NP"}, "class_names must be a list")])
def test_a_model_with_damaged_info_is_one_line(tmp_path, change, fragment):
    model = tmp_path / "model.keras"
    with zipfile.ZipFile(PRETRAINED) as old, zipfile.ZipFile(model, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename == model_files.INFO_NAME:
                data = json.dumps(json.loads(data) | change)
            new.writestr(item, data)
    with pytest.raises(InputError, match=fragment):
        model_files.read_model_info(model)
    assert_clean_failure(run("predict.py", PATCH, "--model", model, "--backend", "tensorflow", timeout=120),
                         "cannot load model", fragment)


@pytest.mark.parametrize("threshold", ["nan", "5", "-0.1"])
def test_a_threshold_that_is_no_probability_is_refused(threshold):
    result = run("predict.py", PATCH, "--threshold", threshold, "--no-figures", timeout=60)
    assert result.returncode == 2 and "--threshold must be a probability" in result.stderr, result.stderr


def test_a_tile_that_would_blow_a_photo_up_is_refused():
    """--tile 8 would enlarge a 12 MP photo 8x (2.3 GB) for 750,000 tiles (support.masks: tests/test_masks.py)."""
    result = run("predict.py", PATCH, "--tile", "8", timeout=60)
    assert result.returncode == 2 and "--tile must be 0 (images whole) or at least 32" in result.stderr, result.stderr


def test_a_stride_that_would_cut_a_photo_into_millions_of_tiles_is_refused(tmp_path):
    """--stride 1 would cut a 12 MP photo into 10 million tiles of 227 px, hours (photos.MIN_STEP)."""
    (tmp_path / "site").mkdir()
    shutil.copy(PATCH, tmp_path / "site" / "a.jpg")
    out = tmp_path / "out"
    outputs = ["--csv", out / "r.csv", "--tiles-csv", out / "t.csv", "--report", out / "report", "--save-tiles",
               out / "tiles"]
    for stride, tile, fragment in (("1", [], "--stride 1 is under an eighth of the 227 px tile: give 28 or more"),
                                   ("7", ["--tile", "64"], "--stride 7 is under an eighth of the 64 px tile: give 8")):
        result = run("predict.py", tmp_path / "site" / "a.jpg", "--stride", stride, *tile, *outputs, timeout=60)
        assert_clean_failure(result, fragment)
        assert len(result.stderr.splitlines()) == 1 and not result.stdout, result.stdout + result.stderr
        assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == [tmp_path / "site" / "a.jpg"]
    result = run("predict.py", tmp_path / "site" / "a.jpg", "--stride", "8", "--tile", "64", "--tiles-csv",
                 tmp_path / "t.csv", "--no-figures", timeout=60)  # every eighth: (227 - 64) / 8 + 2 tiles a side
    assert result.returncode == 0 and len((tmp_path / "t.csv").read_text().splitlines()) == 1 + 22 * 22, result.stderr


def test_a_half_jpeg_with_its_end_marker_put_back_is_refused(tmp_path):
    photo = cv2.resize(cv2.imread(str(PATCH)), (800, 800))
    data = cv2.imencode(".jpg", photo)[1].tobytes()
    (tmp_path / "whole.jpg").write_bytes(data)
    (tmp_path / "half.jpg").write_bytes(data[:len(data) // 2] + b"\xff\xd9")
    assert images.decode_image(tmp_path / "whole.jpg").shape == (800, 800, 3)
    with pytest.raises(images.ImageError, match="truncated JPEG"):
        images.decode_image(tmp_path / "half.jpg")
    grey = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()  # a flat image is whole
    (tmp_path / "grey.jpg").write_bytes(grey)
    assert images.decode_image(tmp_path / "grey.jpg").shape == (64, 64, 3)


def test_a_jpeg_with_stray_bytes_is_read_with_no_line_but_the_projects(tmp_path):
    """libjpeg decodes a JPEG with stray bytes before its end marker, and printed its own line for it beside
    ours ("Corrupt JPEG data: 2 extraneous bytes before marker 0xd9"): in predict, and in data_prep's labels."""
    data = PATCH.read_bytes()
    end = data.rindex(b"\xff\xd9")
    (tmp_path / "stray.jpg").write_bytes(data[:end] + b"\x01\x02\x03" + data[end:])
    result = run("predict.py", tmp_path / "stray.jpg", tmp_path / "missing.jpg", "--no-figures", timeout=60)
    assert result.returncode == 1 and "stray.jpg: crack" in result.stdout, result.stderr
    assert result.stderr.splitlines() == [f"error: {tmp_path / 'missing.jpg'}: no such file or folder"]
    labels = write_labels(tmp_path / "labels.csv", [("stray.jpg", 0, 0, 227, 227, "crack"),
                                                    ("stray.jpg", 0, 0, 113, 113, "no crack")])
    result = run("data_prep.py", "--src", labels, "--out", tmp_path / "cache", "--split", "100:1:0", timeout=120)
    assert result.returncode == 0 and "Corrupt JPEG" not in result.stderr, result.stderr


def test_model_may_name_train_outputs_folder(tmp_path):
    copied_model(tmp_path / "models")
    result = run("predict.py", PATCH, "--model", tmp_path / "models", "--no-figures", timeout=60)
    assert result.returncode == 0 and ": crack" in result.stdout, result.stderr
    (tmp_path / "empty").mkdir()
    assert_clean_failure(run("predict.py", PATCH, "--model", tmp_path / "empty", timeout=60),
                         "a folder without model.keras")


def test_no_report_or_tiles_inside_a_named_photos_folder(tmp_path):
    (tmp_path / "few").mkdir()
    shutil.copy(PATCH, tmp_path / "few" / "a.jpg")
    for option in ("--report", "--save-tiles"):
        assert_clean_failure(run("predict.py", tmp_path / "few" / "a.jpg", option, tmp_path / "few" / "r",
                                 timeout=60), "is inside the input folder")
    assert sorted(p.name for p in (tmp_path / "few").iterdir()) == ["a.jpg"]


def test_a_jpeg_over_the_limit_is_decoded_at_half_size_and_its_tiles_halved(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100_000)  # as a 20000 x 20000 photo is to the real limit
    photo = cv2.resize(cv2.imread(str(PATCH)), (600, 600))
    cv2.imwrite(str(tmp_path / "big.jpg"), photo)
    cv2.imwrite(str(tmp_path / "big.png"), photo)
    image = images.decode_image(tmp_path / "big.jpg")
    assert image.shape == (300, 300, 3) and image.reduction == 2 and image[:10].reduction == 2
    assert photos.tiling(image, 227, 113) == (114, 56) and photos.tiling(photo, 227, 113) == (227, 113)
    with pytest.raises(images.ImageError, match="too large: 600x600 px"):  # only a JPEG can be read smaller
        images.decode_image(tmp_path / "big.png")


@pytest.mark.parametrize("info", [{"class_names": ["Negative", "Positive"], "crack_model": True},
                                  {"class_names": ["brick", "moss", "tile"], "crack_model": False}])
def test_predict_may_replace_each_csv_it_writes_and_nothing_else(tmp_path, info):
    rule = verdicts.verdict_rule(info)
    for header in (rule.csv_columns(), rule.csv_columns(compared=True), rule.tile_columns()):
        ours = tmp_path / "ours.csv"
        atomic_files.write_csv(ours, header, [])
        assert results.replaceable(ours, verdicts.is_predict_header), header
    (tmp_path / "empty.csv").write_text("")
    assert results.replaceable(tmp_path / "empty.csv", verdicts.is_predict_header)
    for header in ("path,x,y,width,height,label", "path,model_verdict,inspector_verdict,note,marked_tiles", "path,",
                   "", "image,x,y,width,height,label", "image,x,y,width,height", "path,figure,error"):
        for newline in ("\n", "\r\n"):  # issue 37: a blank first line was taken for predict's header
            (tmp_path / "theirs.csv").write_text(header + newline + "My field notes" + newline, newline="")
            assert not results.replaceable(tmp_path / "theirs.csv", verdicts.is_predict_header), header


def test_a_photo_opencv_cannot_scale_takes_no_other_down(tmp_path, monkeypatch, capsys):
    """cv2 refusing to resize a photo (a size it cannot handle) is that photo's error line, not a traceback."""
    import predict

    shutil.copy(PATCH, tmp_path / "patch.jpg")
    cv2.imwrite(str(tmp_path / "wall.jpg"), cv2.resize(cv2.imread(str(PATCH)), (600, 600)))
    resize = photos.resize

    def refusing_photos(image, width, height):
        if max(image.shape) == 600:
            raise images.ImageError("OpenCV cannot resize it (-215)")
        return resize(image, width, height)

    monkeypatch.setattr(photos, "resize", refusing_photos)
    assert predict.main([str(tmp_path / "patch.jpg"), str(tmp_path / "wall.jpg"), "--no-figures",
                         "--csv", str(tmp_path / "r.csv")]) == 1
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["verdict"] for row in rows] == ["crack", "error"]
    assert rows[1]["error"] == "OpenCV cannot resize it (-215)"
    assert "wall.jpg" in capsys.readouterr().err
