"""data_prep.py: the cache a user gets from a folder of images, and the errors they see."""

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import REPO, SAMPLE_DATA, assert_clean_failure, run, sample_files, write_rgb

import data_prep
from model import INPUT_SIZE, MIN_INPUT_SIZE
from support import images


def load_split(cache, split):
    return np.load(cache / f"{split}_x.npy"), np.load(cache / f"{split}_y.npy")


def test_cache_holds_every_sample_image_split_stratified(sample_cache):
    meta = json.loads((sample_cache / "meta.json").read_text())
    assert meta["image_size"] == INPUT_SIZE
    assert meta["class_names"] == ["Negative", "Positive"]
    seen = []
    for split, fraction in zip(data_prep.SPLITS, (0.70, 0.24, 0.06)):
        x, y = load_split(sample_cache, split)
        assert x.dtype == np.uint8 and x.shape[1:] == (INPUT_SIZE, INPUT_SIZE, 3)
        assert len(x) == len(y) == meta["counts"][split]["total"] == len(meta["files"][split])
        for label, name in enumerate(meta["class_names"]):
            # 200 images a class: the split keeps each class's share of every split
            assert meta["counts"][split][name] == int(np.sum(y == label)) == round(200 * fraction)
            # every row's label is the class folder its file came from
            files = [f for f, lab in zip(meta["files"][split], y) if lab == label]
            assert all(f"/{name}/" in f for f in files)
        seen += meta["files"][split]
    assert sorted(seen) == sorted(str(p) for c in ("Positive", "Negative") for p in sample_files(c))
    assert (sample_cache / "examples.png").stat().st_size > 10_000
    assert meta["skipped"] == []


def test_cache_rows_are_the_loaded_images(sample_cache):
    x, _ = load_split(sample_cache, "test")
    meta = json.loads((sample_cache / "meta.json").read_text())
    for row, path in enumerate(meta["files"]["test"][:5]):
        np.testing.assert_array_equal(x[row], images.load_image(path, INPUT_SIZE))


def test_same_seed_gives_same_split_and_other_seed_does_not(tmp_path):
    files = [[f"n{i}" for i in range(50)], [f"p{i}" for i in range(50)]]
    a = data_prep.split_files(files, (0.7, 0.24, 0.06), seed=1)
    assert a == data_prep.split_files(files, (0.7, 0.24, 0.06), seed=1)
    assert a != data_prep.split_files(files, (0.7, 0.24, 0.06), seed=2)


def test_class_folders_match_in_any_letter_case(tmp_path):
    src = tmp_path / "dataset"
    (src / "positive").mkdir(parents=True)
    (src / "NEGATIVE").mkdir()
    for name, folder in (("Positive", "positive"), ("Negative", "NEGATIVE")):
        for path in sample_files(name)[:20]:
            (src / folder / path.name).write_bytes(path.read_bytes())
    result = run("data_prep.py", "--src", src, "--out", tmp_path / "cache", "--size", MIN_INPUT_SIZE)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "cache" / "train_x.npy").shape[1:] == (MIN_INPUT_SIZE, MIN_INPUT_SIZE, 3)


def test_missing_or_empty_class_folder_is_named(tmp_path):
    (tmp_path / "Positive").mkdir()
    assert_clean_failure(run("data_prep.py", "--src", tmp_path, "--out", tmp_path / "c"), "Negative")
    (tmp_path / "Negative").mkdir()
    (tmp_path / "Positive" / "a.jpg").write_bytes(sample_files("Positive")[0].read_bytes())
    assert_clean_failure(run("data_prep.py", "--src", tmp_path, "--out", tmp_path / "c"),
                         "Negative", "no image files")
    assert_clean_failure(run("data_prep.py", "--src", tmp_path / "nowhere"), "source folder", "does not exist")
    assert_clean_failure(run("data_prep.py", "--src", SAMPLE_DATA, "--src", tmp_path / "labels.csv"),
                         "labels file", "labels.csv does not exist")  # e.g. the browser saved "labels (1).csv"


def test_bad_files_are_skipped_with_a_warning_each(tmp_path):
    src = tmp_path / "dataset"
    for name in ("Positive", "Negative"):
        (src / name).mkdir(parents=True)
        for path in sample_files(name)[:10]:
            (src / name / path.name).write_bytes(path.read_bytes())
    good = sample_files("Positive")[0].read_bytes()
    (src / "Positive" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "Positive" / "notes.jpg").write_text("not an image")
    (src / "Negative" / "empty.png").write_bytes(b"")
    result = run("data_prep.py", "--src", src, "--out", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 3 and "Traceback" not in result.stderr
    assert "skipped 3" in result.stdout
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert sorted(s["file"].rsplit("/", 1)[1] for s in meta["skipped"]) == ["empty.png", "notes.jpg", "truncated.jpg"]
    assert sum(meta["counts"][s]["total"] for s in data_prep.SPLITS) == 20
    for split in data_prep.SPLITS:
        x, y = load_split(tmp_path / "cache", split)
        assert len(x) == len(y) == len(meta["files"][split])
        assert x.reshape(len(x), -1).max(axis=1).min(initial=255) > 0  # no blank rows left behind


def test_a_class_with_no_readable_image_fails(tmp_path):
    src = tmp_path / "dataset"
    for name in ("Positive", "Negative"):
        (src / name).mkdir(parents=True)
    (src / "Positive" / "a.jpg").write_bytes(sample_files("Positive")[0].read_bytes())
    (src / "Negative" / "b.jpg").write_text("junk")
    result = run("data_prep.py", "--src", src, "--out", tmp_path / "cache")
    assert_clean_failure(result, "no usable image", "Negative")
    assert not (tmp_path / "cache").exists()
    # a cache written into the source folder would be read back as a class of its own next time
    assert_clean_failure(run("data_prep.py", "--src", src, "--out", src / "cache"), "is inside the image folder")


def test_refuses_to_replace_a_folder_that_is_not_a_cache(tmp_path):
    out = tmp_path / "important"
    out.mkdir()
    (out / "thesis.txt").write_text("keep me")
    assert_clean_failure(run("data_prep.py", "--src", SAMPLE_DATA, "--out", out), "not a data_prep cache")
    assert (out / "thesis.txt").read_text() == "keep me"


class LongRun:
    """data_prep.py on 6,000 images (links to the samples), its stderr collected as it comes."""

    def __init__(self, tmp_path, **popen_args):
        src = tmp_path / "dataset"
        for name in ("Positive", "Negative"):
            (src / name).mkdir(parents=True)
            for copy in range(15):
                for path in sample_files(name):
                    (src / name / f"{copy}_{path.name}").symlink_to(path)
        self.stderr, self.ended = "", False
        self.changed = threading.Condition()
        self.process = subprocess.Popen([sys.executable, str(REPO / "data_prep.py"), "--src", str(src),
                                         "--out", str(tmp_path / "cache"), "--size", "128", "--workers", "1"],
                                        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True, **popen_args)
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self):
        while chunk := self.process.stderr.read(1):
            with self.changed:
                self.stderr += chunk
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def wait_until(self, text, what):
        """Block until the run has printed `text` on stderr (a state it has reached); fails if it ends first."""
        with self.changed:
            while text not in self.stderr:
                assert not self.ended, f"data_prep ended before {what}: {self.stderr}"
                self.changed.wait()

    def finish(self):
        self.process.wait(timeout=120)
        self.reader.join()
        return self.process.returncode


MOMENTS = {  # what data_prep prints when it gets there
    "starting workers": "decoding 6000 images with 1 process",
    "decoding": "/6000 images (",  # the first progress line: rows are being decoded
}


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
def test_ctrl_c_at_any_moment_gives_one_line_and_keeps_the_previous_cache(tmp_path, moment):
    previous = run("data_prep.py", "--src", SAMPLE_DATA, "--out", tmp_path / "cache")
    assert previous.returncode == 0, previous.stderr
    meta_before = (tmp_path / "cache" / "meta.json").read_bytes()
    long_run = LongRun(tmp_path)
    long_run.wait_until(MOMENTS[moment], moment)
    long_run.process.send_signal(signal.SIGINT)
    assert long_run.finish() == 130
    assert "Traceback" not in long_run.stderr and "Fatal" not in long_run.stderr, long_run.stderr
    assert long_run.stderr.rstrip().endswith("\ninterrupted: no cache was written")
    assert (tmp_path / "cache" / "meta.json").read_bytes() == meta_before  # the previous cache is intact
    assert not list(tmp_path.glob(".cache.*"))  # cleaned up after itself


@pytest.mark.slow
def test_ctrl_c_while_the_cache_is_completed_either_stops_cleanly_or_finishes(tmp_path):
    long_run = LongRun(tmp_path)
    long_run.wait_until("decoding 6000/6000 images", "the end of decoding")
    long_run.process.send_signal(signal.SIGINT)  # while the labels or examples.png are written, or just after
    status = long_run.finish()
    assert "Traceback" not in long_run.stderr and "Fatal" not in long_run.stderr, long_run.stderr
    if status == 130:
        assert not (tmp_path / "cache").exists()
    else:
        assert status == 0 and (tmp_path / "cache" / "meta.json").is_file()
    assert not list(tmp_path.glob(".cache.*"))


@pytest.mark.slow
def test_interrupted_run_leaves_no_cache_that_train_accepts(tmp_path):
    long_run = LongRun(tmp_path)
    long_run.wait_until(MOMENTS["decoding"], "decoding")
    long_run.process.send_signal(signal.SIGTERM)
    assert long_run.finish() == 130
    assert not (tmp_path / "cache").exists()
    assert_clean_failure(run("train.py", "--cache", tmp_path / "cache", "--out", tmp_path / "models"),
                         "no complete cache")


@pytest.mark.slow
def test_killed_run_leaves_no_cache_and_the_next_run_cleans_up(tmp_path):
    long_run = LongRun(tmp_path, start_new_session=True)
    long_run.wait_until(MOMENTS["decoding"], "decoding")
    os.killpg(long_run.process.pid, signal.SIGKILL)  # no chance to clean up
    long_run.finish()
    assert not (tmp_path / "cache").exists() and list(tmp_path.glob(".cache.partial-*"))
    result = run("data_prep.py", "--src", SAMPLE_DATA, "--out", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cache" / "meta.json").is_file() and not list(tmp_path.glob(".cache.partial-*"))


@pytest.mark.parametrize("kind", ["gray_png", "rgba_png", "png16", "large_jpg", "tiny_png", "bmp"])
def test_any_colour_mode_or_size_loads_as_rgb_uint8(tmp_path, kind, positive_patches):
    patch = positive_patches[0]
    path = write_variant(tmp_path, kind, patch)
    image = images.load_image(path, 64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    if kind in ("rgba_png", "bmp"):
        np.testing.assert_array_equal(image, images.fit_to_model(images.decode_image(path), 64))


def write_variant(folder, kind, patch):
    import cv2

    if kind == "gray_png":
        path = folder / "gray.png"
        cv2.imwrite(str(path), cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY))
    elif kind == "rgba_png":
        path = folder / "rgba.png"
        cv2.imwrite(str(path), np.dstack([patch[..., ::-1], np.full(patch.shape[:2], 255, np.uint8)]))
    elif kind == "png16":
        path = folder / "deep.png"
        cv2.imwrite(str(path), patch[..., ::-1].astype(np.uint16) * 257)
    elif kind == "large_jpg":
        path = folder / "large.jpg"
        write_rgb(path, cv2.resize(patch, (900, 700)))
    elif kind == "tiny_png":
        path = folder / "tiny.png"
        write_rgb(path, cv2.resize(patch, (20, 30)))
    else:
        path = folder / "patch.bmp"
        write_rgb(path, patch)
    return path


def make_source(folder, count, extra=None):
    """A Positive/Negative folder with `count` sample images a class (copies)."""
    for name in ("Positive", "Negative"):
        (folder / name).mkdir(parents=True)
        for path in sample_files(name)[:count]:
            (folder / name / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.mark.parametrize("side", [227, 256, 900])
def test_a_hairline_crack_stays_dark_when_shrunk_to_model_input(tmp_path, side):
    # A crack one pixel wide on a patch (or a photo) several times the model input: area averaging
    # alone would fade it to 1/k of its contrast (a quarter or less here) and the model could not see it.
    surface = np.full((side, side, 3), 180, np.uint8)
    surface[:, side // 2] = 60
    path = tmp_path / "hairline.png"
    write_rgb(path, surface)
    image = images.load_image(path, 64)
    darkest_column = image.min(axis=(0, 2))
    assert darkest_column.min() <= 120  # at least half of its contrast kept
    assert np.count_nonzero(darkest_column < 170) <= 2  # still a line: one or two columns wide
    assert image[:, :20].min() == 180  # the surface away from it is untouched


@pytest.mark.slow
def test_several_sources_are_each_split_alike_and_recorded(tmp_path):
    big, small = make_source(tmp_path / "dataset", 50), make_source(tmp_path / "my_site", 10)
    result = run("data_prep.py", "--src", big, "--src", small, "--out", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["sources"] == [str(big), str(small)]
    for split in data_prep.SPLITS:
        for f, source in zip(meta["files"][split], meta["file_sources"][split]):
            assert f.startswith(meta["sources"][source] + "/")
    # each source keeps its own 70:24:6 share: the small site is in every split, not only in train
    for index, per_class in ((0, 50), (1, 10)):
        counts = [meta["file_sources"][split].count(index) for split in data_prep.SPLITS]
        assert counts == [2 * (per_class - round(per_class * .24) - round(per_class * .06)),
                          2 * round(per_class * .24), 2 * round(per_class * .06)]
    # adding a source leaves the split of the first one as it was
    alone = run("data_prep.py", "--src", big, "--out", tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    alone_meta = json.loads((tmp_path / "alone" / "meta.json").read_text())
    for split in data_prep.SPLITS:
        assert sorted(alone_meta["files"][split]) == sorted(
            f for f, s in zip(meta["files"][split], meta["file_sources"][split]) if s == 0)


@pytest.mark.slow
def test_hostile_images_are_skipped_with_one_line_each(tmp_path):
    import cv2

    src = make_source(tmp_path / "dataset", 8)
    cv2.imwrite(str(src / "Positive" / "pixel.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(src / "Negative" / "strip.png"), np.full((3, 4000, 3), 128, np.uint8))
    cv2.imwrite(str(src / "Negative" / "strip.jpg"), np.full((4000, 5, 3), 128, np.uint8))
    (src / "Positive" / "00032_prediction.png").write_bytes(b"a figure of predict.py's")  # never an input
    result = run("data_prep.py", "--src", src, "--out", tmp_path / "cache")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipping")]
    assert sorted(w.rsplit("/", 1)[1] for w in warnings) == [
        "pixel.png: too small (1x1 px; at least 16 px a side)",
        "strip.jpg: too small (5x4000 px; at least 16 px a side)",
        "strip.png: too small (4000x3 px; at least 16 px a side)"]
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert sum(meta["counts"][s]["total"] for s in data_prep.SPLITS) == 16


@pytest.mark.slow
def test_folder_mistakes_get_a_message_that_says_what_to_do(tmp_path):
    unpacked = make_source(tmp_path / "Concrete Crack Images for Classification", 3)
    (unpacked / "Positive" / "deeper").mkdir()
    (unpacked / "Positive" / "deeper" / "more.jpg").write_bytes(sample_files("Positive")[9].read_bytes())
    (unpacked / "Rejected").mkdir()
    (unpacked / "Rejected" / "x.jpg").write_bytes(sample_files("Positive")[8].read_bytes())
    assert_clean_failure(run("data_prep.py", "--src", tmp_path), f"did you mean --src '{unpacked}'?")
    assert_clean_failure(run("data_prep.py", "--src", unpacked / "Positive" / "deeper" / "more.jpg"),
                         "is a file; give the folder that holds one sub-folder per class")
    assert_clean_failure(run("data_prep.py", "--src", unpacked, "--out", unpacked / "Positive" / "cache"),
                         "is inside the image folder")
    result = run("data_prep.py", "--src", unpacked, "--out", tmp_path / "cache", "--classes", "Negative,Positive")
    assert result.returncode == 0, result.stderr
    assert "ignoring folder(s) Rejected" in result.stdout
    assert "Positive: 4 files" in result.stdout and "(sub-folders included)" in result.stdout
