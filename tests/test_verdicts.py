"""The inspector's verdicts per photo teach the model: the report's notes.csv is a data_prep source
(a photo called no crack gives all its tiles as no crack, a photo called crack a bag of tiles), train.py
learns from each crack photo's most crack-like tiles and says which crack photos it could not keep."""

import csv
import json
import re

import numpy as np
import pytest
from conftest import PRETRAINED, SAMPLE_DATA, assert_clean_failure, mosaic, run, write_rgb
from test_labels import with_cable, write_labels

from support import bags, batches, photos, training_summary
from support.images import decode_image
from support.model_files import read_model_info

CELL = 227


def write_notes(path, rows, tile=227):
    """A notes.csv as the report's Save notes.csv writes it: (photo, inspector's verdict) rows."""
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("path", "model_verdict", "inspector_verdict", "note", "marked_tiles", "tile"),
                                 *[(photo, "crack", verdict, "", 0, tile) for photo, verdict in rows]])
    return path


@pytest.mark.slow
def test_reviewed_photos_become_tiles_and_crack_photos_bags(tmp_path, negative_patches, positive_patches):
    site = tmp_path / "site"
    site.mkdir()
    for i in range(4):
        write_rgb(site / f"clean{i}.png", mosaic(negative_patches[i], positive_patches[i], 4, 3, set()))
        write_rgb(site / f"cracked{i}.png", mosaic(negative_patches[i], positive_patches[i], 4, 3, {(2, 1)}))
    write_rgb(site / "unreviewed.png", mosaic(negative_patches[5], positive_patches[5], 4, 3, set()))
    notes = write_notes(tmp_path / "notes.csv", [*[(f"site/clean{i}.png", "no crack") for i in range(4)],
                                                 *[(f"site/cracked{i}.png", "crack") for i in range(4)],
                                                 ("site/unreviewed.png", "")])
    result = run("data_prep.py", "--src", SAMPLE_DATA, "--src", notes, "--out", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    tiles = len(photos.tile_grid(decode_image(site / "clean0.png"), CELL, CELL // 2))  # predict's grid: 7 x 5
    assert f"{4 * tiles} tiles of photos called no crack, {4 * tiles} of photos called crack" in result.stdout
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    assert meta["bag_photos"] == [str(site / f"{name}{i}.png") for name in ("clean", "cracked") for i in range(4)]
    rows = {split: (meta["files"][split], np.array(meta["bags"][split]),
                    np.load(tmp_path / "cache" / f"{split}_y.npy")) for split in ("train", "val")}
    # photos are split whole: one of the four of each verdict set aside for validation, each tile of a
    # photo in its bag with the photo's verdict; the dataset's rows in no bag, its split as before
    split_of = {}
    for split, (files, in_bag, y) in rows.items():
        for f, bag, label in zip(files, in_bag, y):
            assert bag == -1 if str(SAMPLE_DATA) in f else meta["bag_photos"][bag] == f.split("#")[0]
            if bag >= 0:
                assert split_of.setdefault(bag, split) == split and label == ("cracked" in f)
    assert sorted(split_of) == list(range(8)) and sum(s == "val" for s in split_of.values()) == 2
    assert {split_of[i] for i in range(4)} == {split_of[i] for i in range(4, 8)} == {"train", "val"}
    assert sum(int(np.sum(in_bag >= 0)) for _, in_bag, _ in rows.values()) == 8 * tiles
    assert not any("#" in f for f in meta["files"]["test"])
    assert not any("unreviewed" in f for split in ("train", "val", "test") for f in meta["files"][split])


@pytest.mark.slow
def test_bad_notes_are_one_line_and_nothing_is_written(tmp_path):
    photo = tmp_path / "wall.jpg"
    photo.write_bytes((SAMPLE_DATA / "Positive" / "08545.jpg").read_bytes())
    cases = {"inspector_verdict must be crack, no crack or blank": [("wall.jpg", "maybe")],
             "missing.jpg": [("missing.jpg", "crack")],
             "gives no photo a verdict": [("wall.jpg", "")]}
    for message, rows in cases.items():
        notes = write_notes(tmp_path / "notes.csv", rows)
        assert_clean_failure(run("data_prep.py", "--src", SAMPLE_DATA, "--src", notes, "--out", tmp_path / "c"), message)
        assert not (tmp_path / "c").exists() and not list(tmp_path.glob(".c.*"))
    notes = write_notes(tmp_path / "notes.csv", [("wall.jpg", "crack")], tile=8)
    assert_clean_failure(run("data_prep.py", "--src", SAMPLE_DATA, "--src", notes, "--out", tmp_path / "c"),
                         "tile must be 0 (images whole) or at least 32 px")
    notes = write_notes(tmp_path / "notes.csv", [("wall.jpg", "crack")])
    assert_clean_failure(run("data_prep.py", "--src", tmp_path / "notes.csv", "--classes", "clean,stain",
                             "--out", tmp_path / "c"), "gives crack / no crack verdicts")


def test_a_crack_photo_is_learnt_from_its_most_crack_like_tiles(negative_patches, positive_patches):
    """Two photos called crack, each a bag of clean tiles and one cracked: the cracked tile and the next
    most crack-like are chosen, the rest left out; rows of no bag stay as they are. A crack photo set
    aside for validation leaves the validation split and is read as a photo, never learnt from."""
    from support.images import fit_to_model
    from support.tf_import import keras

    tiles = np.stack([fit_to_model(p, 64) for p in (*negative_patches[:3], positive_patches[0],
                                                      positive_patches[1], *negative_patches[3:6])])
    # photo a: 3 clean tiles and a crack; photo b: a crack and 3 clean; photo c, called no crack: the
    # crack tile again (a false alarm, for this test) and 7 clean, all learnt; two rows of no photo.
    # Set aside: photo d, called crack (a clean tile and a crack), photo e called no crack, a row of none
    x = np.concatenate([tiles, tiles[3:7], tiles[4:], tiles[:2]])
    val_x = np.stack([tiles[0], tiles[3], tiles[1], tiles[2]])
    meta = {"class_names": ["Negative", "Positive"], "bag_photos": ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"],
            "bags": {"train": [0] * 4 + [1] * 4 + [2] * 8 + [-1, -1], "val": [3, 3, 4, -1]},
            "counts": {"train": {"total": 18}, "val": {"total": 4}},
            "files": {"train": [f"f{i}" for i in range(18)], "val": ["v0", "v1", "v2", "v3"]},
            "file_sources": {"train": [1] * 16 + [0] * 2, "val": [1, 1, 1, 0]}}
    y, val_y = np.array([1] * 8 + [0] * 10, np.uint8), np.array([1, 1, 0, 0], np.uint8)
    model = keras.models.load_model(PRETRAINED, compile=False)  # as train.py loads the model it fine-tunes
    data, chosen_meta, crack_photos = bags.choose_tiles({"train": (x, y), "val": (val_x, val_y)}, meta, model, PRETRAINED)
    kept = chosen_meta["files"]["train"]
    assert {"f3", "f4"} <= set(kept) and {f"f{i}" for i in range(8, 18)} <= set(kept)  # the cracks, c's, no photo's
    # the 4 tiles learnt from crack photos are each shown twice, as many as c's 8 clean tiles
    assert kept.count("f3") == kept.count("f4") == 2 and kept.count("f8") == 1
    assert len(kept) == 2 * 2 * bags.PER_PHOTO + 8 + 2 == len(data["train"][0])
    assert chosen_meta["counts"]["train"] == {"total": 18, "Negative": 10, "Positive": 8}
    assert chosen_meta["bags"]["train"] == [meta["bags"]["train"][int(f[1:])] for f in kept]
    assert chosen_meta["files"]["val"] == ["v2", "v3"] and chosen_meta["bags"]["val"] == [4, -1]
    assert chosen_meta["counts"]["val"] == {"total": 2, "Negative": 2, "Positive": 0} and len(data["val"][0]) == 2
    assert crack_photos.names == ["a.jpg", "b.jpg", "d.jpg"] and list(crack_photos.held) == [False, False, True]
    assert list(crack_photos.crack_before) == [True, True, True] and len(crack_photos.tiles) == 10
    # as the model learns, each photo's rows take the tiles it now finds most crack-like: a.jpg's first two
    crack_photos.relearn(np.array([0.9, 0.8, 0.1, 0.2, 0.1, 0.2, 0.3, 0.9, 0.99, 0.99]))
    slots = data["train"][0][crack_photos.slots]
    assert [any((slot == tile).all() for slot in slots) for tile in x[:8]] == [1, 1, 0, 0, 0, 0, 1, 1]

    clean_bag = bags.CrackPhotos(["clean.jpg"], tiles[:3], np.zeros(3, int), np.array([False]), np.array([True]))
    kept = bags.check_kept(clean_bag, clean_bag.read(model), 0.5, 0.5)  # a photo called crack that shows none: named
    assert kept["kept"] == 0 and kept["lost"][0].startswith("clean.jpg (0.") and kept["set_aside"] == 1
    # the photos read once, by their most crack-like tile, as predict reads a photo...
    highest = crack_photos.read(model)
    assert list(highest) == list(crack_photos.highest(batches.predict_probabilities(model, crack_photos.tiles)[:, 1]))
    # ...the sure threshold comes down to the least sure photo called crack that reaches the threshold...
    calibration = bags.sure_for_crack_photos(highest, {"threshold": 0.5, "sure_threshold": 1.0})
    assert calibration["sure_threshold"] == np.floor(highest.min() * 100) / 100 < 1.0
    assert bags.sure_for_crack_photos(clean_bag.read(model), {"threshold": 0.5, "sure_threshold": 0.9}) == \
        {"threshold": 0.5, "sure_threshold": 0.9}
    # ...and at the threshold so chosen the same reading keeps every one of them, the one set aside too
    kept = bags.check_kept(crack_photos, highest, **calibration)
    assert (kept["kept"], kept["lost"], kept["set_aside"], kept["set_aside_kept"]) == (3, [], 1, 1)


@pytest.mark.slow
def test_verdicts_alone_clear_a_false_alarm_and_keep_cracks(tmp_path, negative_patches, positive_patches):
    """A site where the bundled model calls a hanging cable a crack: the inspector only gives verdicts
    (two photos of cables "no crack", two with a crack beside the cable "crack"); other photos of the
    site, never reviewed, are read right after fine-tuning."""
    site = tmp_path / "site"
    site.mkdir()
    rows = []
    for i in range(4):
        planted = {(1 + i, 1 + i % 2)} if i % 2 else set()
        write_rgb(site / f"photo_{i}.png", with_cable(mosaic(negative_patches[20 + i], positive_patches[20 + i], 6, 4,
                                                              planted), seed=i))
        rows.append((f"site/photo_{i}.png", "crack" if planted else "no crack"))
    notes = write_notes(tmp_path / "notes.csv", rows)
    assert run("data_prep.py", "--src", SAMPLE_DATA, "--src", notes, "--out", tmp_path / "cache").returncode == 0
    tuned = run("train.py", "--cache", tmp_path / "cache", "--init-from", PRETRAINED, "--out", tmp_path / "tuned",
                "--epochs", "40", "--site-repeats", "60")
    assert tuned.returncode == 0, tuned.stderr
    assert re.search(r"^your verdicts: of the 2 photos you called crack, 2 read as crack \(before fine-tuning 2\)$",
                     tuned.stdout, re.M)
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert metrics["crack_photos"]["kept"] == 2 and metrics["crack_photos"]["lost"] == []
    with open(tmp_path / "tuned" / "history.csv") as f:
        assert "crack_photos_kept" in next(csv.reader(f))

    unseen = tmp_path / "unseen.png"
    write_rgb(unseen, with_cable(mosaic(negative_patches[30], positive_patches[30], 6, 4, {(2, 2)}), seed=7))
    cable_only = tmp_path / "cable_only.png"
    write_rgb(cable_only, with_cable(mosaic(negative_patches[31], positive_patches[31], 6, 4, set()), seed=8))
    result = run("predict.py", unseen, cable_only, "--model", tmp_path / "tuned" / "model.keras", "--compare-with",
                 PRETRAINED, "--csv", tmp_path / "after.csv", "--no-figures")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "after.csv") as f:
        verdicts = {row["path"].rsplit("/", 1)[1]: (row["verdict_before"], row["verdict"]) for row in csv.DictReader(f)}
    assert verdicts == {"unseen.png": ("crack", "crack"), "cable_only.png": ("crack", "no crack")}


@pytest.fixture(scope="module")
def site_cache(tmp_path_factory, negative_patches, positive_patches):
    """data_prep.py on sample_data/, a notes.csv of four small photos called crack and four called no crack
    (one of each set aside for validation) and a labels.csv of marks on another photo."""
    folder = tmp_path_factory.mktemp("site_cache")
    (folder / "site").mkdir()
    rows = []
    for i in range(4):
        for name, planted in (("cracked", {(1, 1)}), ("clean", set())):
            write_rgb(folder / "site" / f"{name}{i}.png", mosaic(negative_patches[40 + i], positive_patches[40 + i],
                                                                3, 2, planted))
            rows.append((f"site/{name}{i}.png", "crack" if planted else "no crack"))
    notes = write_notes(folder / "notes.csv", rows)
    write_rgb(folder / "site" / "marked.png", mosaic(negative_patches[44], positive_patches[44], 3, 2, {(2, 0)}))
    labels = write_labels(folder / "labels.csv", [("site/marked.png", 454, 0, CELL, CELL, "crack"),
                                                  *[("site/marked.png", x, y, CELL, CELL, "no crack")
                                                    for x, y in ((0, 0), (0, 227), (227, 227))]])
    result = run("data_prep.py", "--src", SAMPLE_DATA, "--src", notes, "--src", labels, "--out", folder / "cache")
    assert result.returncode == 0, result.stderr
    return folder / "cache"


@pytest.mark.slow
def test_a_crack_photo_set_aside_checks_the_fine_tuning(site_cache, tmp_path):
    """Of four photos called crack, one is set aside (data_prep): never learnt from, it is read after
    fine-tuning, and the summary says how many of those set aside still read as crack."""
    meta = json.loads((site_cache / "meta.json").read_text())
    crack_photos = {i for i, name in enumerate(meta["bag_photos"]) if "cracked" in name}
    set_aside = crack_photos & set(meta["bags"]["val"])
    assert len(set_aside) == 1 and not set_aside & set(meta["bags"]["train"])  # its tiles are none of training's

    tuned = run("train.py", "--cache", site_cache, "--init-from", PRETRAINED, "--out", tmp_path / "tuned", "--epochs", "2")
    assert tuned.returncode == 0, tuned.stderr
    assert re.search(r"^your verdicts: 4 photos called crack, 1 of them set aside to check the fine-tuning on; the others "
                     r"learnt from their 6 most crack-like tiles", tuned.stdout, re.M), tuned.stdout
    read = re.search(r"^your verdicts: of the 4 photos you called crack, (\d) read as crack \(before fine-tuning 4\); "
                     r"of the 1 set aside to check it \(not learnt from\), (\d)", tuned.stdout, re.M)
    assert read, tuned.stdout
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    checked = metrics["crack_photos"]
    assert (checked["photos"], checked["set_aside"]) == (4, 1)
    assert (checked["kept"], checked["set_aside_kept"]) == (int(read[1]), int(read[2])) and len(checked["lost"]) == 4 - checked["kept"]
    # read at the thresholds the saved model carries: what predict will call crack
    info = read_model_info(tmp_path / "tuned" / "model.keras")
    assert (checked["threshold"], checked["sure_threshold"]) == (info["threshold"], info["sure_threshold"])
    # one of the four photos called no crack is set aside too: read before and after, as what to expect
    # of the false alarms no one reviewed
    clean = re.search(r"^your verdicts: photos you called no crack, set aside to check it \(not learnt from\): "
                      r"(\d) of 1 read as no crack \(before fine-tuning (\d)\)", tuned.stdout, re.M)
    assert clean, tuned.stdout
    assert metrics["clean_photos"] == {"set_aside": 1, "no_crack": int(clean[1]), "no_crack_before": int(clean[2]),
                                       "threshold": info["threshold"]}
    # the marks are the labels.csv's alone: the notes.csv gave verdicts
    assert re.search(r"^your marks \(labels.csv\): 4 images, ", tuned.stdout, re.M), tuned.stdout


@pytest.mark.slow
def test_verdicts_fine_tune_on_two_replicas(site_cache, tmp_path):
    """--distribute: the strategy is chosen before the starting model reads the crack photos (two CPU
    replicas here; TensorFlow refused them, with a traceback, once it had run a model)."""
    tuned = run("train.py", "--cache", site_cache, "--init-from", PRETRAINED, "--out", tmp_path / "tuned", "--epochs", "1",
                "--distribute")
    assert tuned.returncode == 0, tuned.stderr
    assert "with 2 replicas" in tuned.stdout and "Traceback" not in tuned.stderr
    assert re.search(r"^your verdicts: of the 4 photos you called crack, \d read as crack", tuned.stdout, re.M)
    assert json.loads((tmp_path / "tuned" / "metrics.json").read_text())["replicas"] == 2


def test_your_marks_are_named_by_the_sources_that_gave_them():
    """A cache of the dataset, a notes.csv (verdicts) and a labels.csv (marks): the summary counts and
    names the labels.csv's rows alone as your marks; support/bags.py tells of the photos given a verdict."""
    meta = {"sources": ["/data/dataset", "/site/notes.csv", "/site/labels.csv"], "class_names": ["Negative", "Positive"],
            "file_sources": {"train": [0, 1, 1, 2, 2], "val": [0, 1, 2], "test": [0, 2]},
            "bags": {"train": [-1, 0, 1, -1, -1], "val": [-1, 2, -1]}}
    data = {"train": (None, np.array([0, 1, 0, 0, 1])), "val": (None, np.array([1, 0, 0])),
            "test": (None, np.array([0, 1]))}
    [line] = training_summary.marks_lines(data, meta)
    assert line.startswith("your marks (labels.csv): 4 images, 2 learnt from (Negative 1 of 2, Positive 1 of 2); "
                           "2 held back, never learnt, to check the model on marks it has not seen: 1 to choose")
    # marks from a folder and a labels file, the notes between them: both named, in the order given
    meta["sources"] = ["/data/dataset", "/site/folder", "/site/notes.csv", "/site/labels.csv"]
    meta["file_sources"] = {"train": [0, 2, 2, 3, 1], "val": [0, 2, 3], "test": [0, 3]}
    assert training_summary.marks_lines(data, meta)[0].startswith("your marks (folder, labels.csv): 4 images, ")
    # verdicts alone are no marks: no line
    meta["file_sources"] = {"train": [0, 2, 2, 0, 0], "val": [0, 2, 0], "test": [0, 0]}
    assert training_summary.marks_lines(data, meta) == []
