"""Your own classes, with no code edited: the class folders name them, from data_prep to predict."""

import csv
import json

import cv2
import numpy as np
import pytest
from conftest import PRETRAINED, assert_clean_failure, run, visible_text, write_rgb

from three_surfaces import make_image  # examples/, on the path through conftest

from model import INPUT_SIZE
from support import model_files

pytestmark = pytest.mark.slow  # every test here trains or runs a script end to end

CLASSES = ["blotch", "clean", "line"]  # sorted, as data_prep labels them


def make_classes(folder, names, per_class=150):
    """Generated patches (examples/three_surfaces.py): clean, line and blotch, named as given."""
    result = run("examples/three_surfaces.py", folder, "--classes", ",".join(names), "--count", per_class)
    assert result.returncode == 0, result.stderr
    return folder


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_every_sub_folder_is_a_class_and_the_model_says_so(own_classes):
    assert "in 3 classes (blotch, clean, line)" in own_classes.prep.stdout
    assert json.loads((own_classes.cache / "meta.json").read_text())["class_names"] == CLASSES
    info = model_files.read_model_info(own_classes.model / "model.keras")
    assert info["class_names"] == CLASSES and info["crack_model"] is False
    assert info["patch_size"] == 0  # trained on whole images: predict reads them whole too
    assert model_files.read_model_info(own_classes.model / "model.tflite") == info
    metrics = json.loads((own_classes.model / "metrics.json").read_text())
    assert list(metrics["per_class"]) == CLASSES and len(metrics["confusion_matrix"]["counts"]) == 3
    assert metrics["thin_cracks"] == 0.0 and "roc_auc" not in metrics  # no drawn cracks; ROC is for two classes
    assert metrics["accuracy"] > 0.8  # far above chance (1/3)
    assert all(name in own_classes.trained.stdout for name in CLASSES)  # the report names them
    for figure in ("confusion_matrix.png", "misclassified.png", "test_predictions.png", "training_curves.png"):
        assert (own_classes.model / figure).stat().st_size > 5000
    assert not (own_classes.model / "roc_curve.png").exists()


@pytest.mark.parametrize("backend", ["tensorflow", "litert"])
def test_predict_names_the_classes_for_images_and_folders(own_classes, tmp_path, backend):
    if backend == "litert" and not model_files.litert_installed():
        pytest.skip("no ai-edge-litert wheel for this platform")
    image = own_classes.surfaces / "line" / "line_000.png"
    result = run("predict.py", image, "--model", own_classes.model / "model.keras", "--backend", backend,
                 "--out", tmp_path / "figures", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(s for s in result.stdout.splitlines() if s.startswith(str(image)))
    assert all(f"{name} 0." in line or f"{name} 1." in line for name in CLASSES), line
    assert "crack" not in line
    assert (tmp_path / "figures" / "line_000_prediction.png").is_file()

    result = run("predict.py", own_classes.surfaces, "--model", own_classes.model / "model.keras", "--backend", backend,
                 "--csv", tmp_path / "all.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "all.csv")
    assert len(rows) == 450 and "crack_probability" not in rows[0]
    assert [c for c in rows[0] if c.startswith("probability_")] == [f"probability_{n}" for n in CLASSES]
    for row in rows:
        probabilities = [float(row[f"probability_{n}"]) for n in CLASSES]
        assert abs(sum(probabilities) - 1) < 1e-3 and row["verdict"] in CLASSES + ["uncertain"]
    called = [row["verdict"] for row in rows if row["verdict"] != "uncertain"]
    right = [row["verdict"] == row["path"].split("/")[-2] for row in rows if row["verdict"] != "uncertain"]
    assert len(called) > 150 and np.mean(right) > 0.8
    summary = next(line for line in result.stdout.splitlines() if line.startswith("450 images classified"))
    assert all(f" {name}" in summary for name in CLASSES + ["uncertain"])  # counted by class


def test_inputs_of_no_class_are_uncertain_as_unlike_the_training_images(own_classes, tmp_path):
    """Noise, a flat grey and a checkerboard were each called `line 1.000`: now each is uncertain, and
    says why; the classes' own images keep their verdicts (test_predict_names_the_classes...)."""
    assert "unlike the training images beyond a feature distance of" in own_classes.trained.stdout
    odd = tmp_path / "odd"
    odd.mkdir()
    squares = (np.indices((256, 256)) // 32).sum(axis=0) % 2 * 255
    for name, image in {"noise": np.random.default_rng(0).integers(0, 256, (256, 256, 3)),
                        "grey": np.full((256, 256, 3), 128), "checkerboard": np.dstack([squares] * 3)}.items():
        write_rgb(odd / f"{name}.png", image.astype(np.uint8))
    for backend in ["tensorflow"] + ["litert"] * model_files.litert_installed():
        result = run("predict.py", odd, "--model", own_classes.model / "model.keras", "--backend", backend,
                     "--csv", tmp_path / f"{backend}.csv", "--no-figures")
        assert result.returncode == 0, result.stderr
        rows = {row["path"].split("/")[-1]: row for row in read_csv(tmp_path / f"{backend}.csv")}
        assert sorted(rows) == ["checkerboard.png", "grey.png", "noise.png"]
        for row in rows.values():
            assert row["verdict"] == "uncertain" and row["reason"].startswith("unlike the training images: "), row


def test_both_backends_give_the_same_class_probabilities(own_classes):
    if not model_files.litert_installed():
        pytest.skip("no ai-edge-litert wheel for this platform")
    x = np.load(own_classes.cache / "test_x.npy")
    by_keras, _ = model_files.load_classifier(own_classes.model / "model.keras", "tensorflow")
    by_litert, _ = model_files.load_classifier(own_classes.model / "model.tflite", "litert")
    (keras_probs, keras_far), (litert_probs, litert_far) = by_keras(x), by_litert(x)
    assert keras_probs.shape == (len(x), 3)
    np.testing.assert_allclose(litert_probs, keras_probs, atol=1e-4)
    assert list(litert_far) == list(keras_far) and keras_far.mean() < 0.1  # its own test images are familiar


def test_a_photo_is_tiled_and_mapped_for_any_model(own_classes, tmp_path):
    rng = np.random.default_rng(5)
    photo = np.vstack([np.hstack([make_image("line" if (r, c) == (1, 2) else "clean", rng) for c in range(5)])
                       for r in range(4)])
    (tmp_path / "photos").mkdir()  # tiles saved beside a named photo would be read back as photos
    write_rgb(tmp_path / "photos" / "wall.png", photo)
    result = run("predict.py", tmp_path / "photos" / "wall.png", "--model", own_classes.model / "model.keras",
                 "--tile", "96",
                 "--map-class", "line", "--tiles-csv", tmp_path / "tiles.csv", "--out", tmp_path / "figures",
                 "--save-tiles", tmp_path / "saved")
    assert result.returncode == 0, result.stderr
    assert "tiles by class:" in result.stdout
    tiles = read_csv(tmp_path / "tiles.csv")
    assert len(tiles) == 7 * 9 and {f"probability_{n}" for n in CLASSES} <= set(tiles[0])
    saved = list((tmp_path / "saved").rglob("*.jpg"))  # by predicted class, ready to sort into class folders
    assert len(saved) == len(tiles) and {p.parent.name for p in saved} <= set(CLASSES)
    figure = cv2.imread(str(tmp_path / "figures" / "wall_prediction.png"))
    assert figure.shape[1] > photo.shape[1]  # the photo, enlarged, beside the colour bar of p(line)


def test_two_classes_with_other_names(tmp_path):
    src = make_classes(tmp_path / "parts", ["ok", "defect"], per_class=40)
    assert run("data_prep.py", "--src", src, "--out", tmp_path / "cache").returncode == 0
    assert_clean_failure(run("train.py", "--cache", tmp_path / "cache", "--thin-cracks"),
                         "--thin-cracks draws cracks, but the classes are defect, ok")
    result = run("train.py", "--cache", tmp_path / "cache", "--out", tmp_path / "model", "--epochs", "3")
    assert result.returncode == 0, result.stderr
    info = model_files.read_model_info(tmp_path / "model" / "model.keras")
    assert info["class_names"] == ["defect", "ok"] and info["crack_model"] is False
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["thin_cracks"] == 0.0 and "roc_auc" in metrics  # two classes: one sigmoid, an ROC curve
    image = src / "ok" / "ok_000.png"
    result = run("predict.py", image, "--model", tmp_path / "model" / "model.keras", "--csv", tmp_path / "p.csv",
                 "--out", tmp_path / "figures")
    assert result.returncode == 0, result.stderr
    line = next(s for s in result.stdout.splitlines() if s.startswith(str(image)))
    assert ("ok 0." in line or "ok 1." in line) and "defect" in line and "crack" not in line
    assert read_csv(tmp_path / "p.csv")[0]["verdict"] in ("ok", "defect", "uncertain")
    # a folder, by TensorFlow and by LiteRT alike: one sigmoid read as two classes by both
    tables = []
    for backend in ("tensorflow", "litert") if model_files.litert_installed() else ("tensorflow",):
        result = run("predict.py", src, "--model", tmp_path / "model" / "model.keras", "--backend", backend,
                     "--csv", tmp_path / f"{backend}.csv")
        assert result.returncode == 0, result.stderr
        tables.append(read_csv(tmp_path / f"{backend}.csv"))
        assert len(tables[-1]) == 80 and "probability_defect" in tables[-1][0] and "probability_ok" in tables[-1][0]
    assert [row["verdict"] for row in tables[0]] == [row["verdict"] for row in tables[-1]]
    # and the crack model is refused as a starting point: it was made for other classes
    assert_clean_failure(run("train.py", "--cache", tmp_path / "cache", "--init-from", PRETRAINED),
                         "tells Negative, Positive apart, but the cache holds defect, ok")


def test_mismatches_are_refused_before_any_work(own_classes, tmp_path, sample_cache):
    model = own_classes.model / "model.keras"
    assert_clean_failure(run("train.py", "--cache", sample_cache, "--init-from", model, "--out", tmp_path / "m"),
                         "tells blotch, clean, line apart, but the cache holds Negative, Positive")
    assert not (tmp_path / "m").exists()
    # a model whose output width disagrees with what its info says
    import zipfile

    lying = tmp_path / "lying.keras"
    with zipfile.ZipFile(model) as old, zipfile.ZipFile(lying, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == model_files.INFO_NAME:
                info = json.loads(data)
                info["class_names"] = ["a", "b"]
                data = json.dumps(info).encode()
            new.writestr(item, data)
    assert_clean_failure(run("predict.py", own_classes.surfaces / "line" / "line_001.png", "--model", lying,
                             "--backend", "tensorflow"), "gives 3 outputs per image but its info names 2 classes")
    assert_clean_failure(run("predict.py", own_classes.surfaces / "line" / "line_001.png", "--model", model,
                             "--map-class", "crack"), "--map-class crack: the model's classes are blotch, clean, line")
    assert_clean_failure(run("data_prep.py", "--src", own_classes.surfaces, "--classes", "clean,stain"),
                         "has no stain folder")


def test_a_large_image_is_classified_whole_as_data_prep_read_it_unless_tile_is_given(own_classes, tmp_path):
    """data_prep squashes a whole image to the model's size; predict must do the same for such a model,
    not cut a 500 px image into tiles at another scale than training."""
    from support.images import load_image

    image = tmp_path / "photos" / "large.png"
    image.parent.mkdir()
    write_rgb(image, make_image("line", np.random.default_rng(7), side=500))
    model = own_classes.model / "model.keras"
    result = run("predict.py", image, "--model", model, "--backend", "tensorflow", "--csv", tmp_path / "whole.csv",
                 "--out", tmp_path / "figures")
    assert result.returncode == 0, result.stderr
    assert "; images whole)" in result.stdout and "tiles by class" not in result.stdout
    row, = read_csv(tmp_path / "whole.csv")
    assert list(row) == ["path", "verdict", "reason", "probability", *(f"probability_{n}" for n in CLASSES),
                         "tiles", "share", "figure", "error"]
    assert row["tiles"] == "1"
    classify, _ = model_files.load_classifier(model, "tensorflow")
    expected = classify(load_image(image, INPUT_SIZE)[None])[0][0]  # the pixels data_prep would have cached
    assert [float(row[f"probability_{n}"]) for n in CLASSES] == pytest.approx(expected, abs=2e-5)

    result = run("predict.py", image, "--model", model, "--tile", "96", "--csv", tmp_path / "tiled.csv",
                 "--out", tmp_path / "figures")
    assert result.returncode == 0, result.stderr
    assert "; tiles of 96 px)" in result.stdout and "tiles by class:" in result.stdout
    assert int(read_csv(tmp_path / "tiled.csv")[0]["tiles"]) > 1


def test_the_report_of_other_classes_speaks_of_its_classes_only(own_classes, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for name in CLASSES:
        (site / f"{name}.png").write_bytes((own_classes.surfaces / name / f"{name}_000.png").read_bytes())
    write_rgb(site / "large.png", make_image("clean", np.random.default_rng(3), side=500))
    result = run("predict.py", site, "--model", own_classes.model / "model.keras", "--report", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    text = visible_text(page)
    assert "Report (blotch, clean, line)" in text and "images classified whole" in text
    assert "crack" not in text.lower()
    assert "Flagged tiles" not in text and "Tiles of its class" not in text  # nothing was cut into tiles
    assert "Least sure, to look at first" in text


def test_large_images_classified_whole_are_batched_by_their_pixels(own_classes, tmp_path, monkeypatch):
    """A folder of phone photos classified whole must not hold a batch of 128 of them in memory."""
    import predict

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(5):
        write_rgb(folder / f"large_{i}.png", make_image("blotch", rng, side=500))
    batches, load = [], predict.load_classifier

    def counting(*args):
        classify, info = load(*args)
        return (lambda batch: batches.append(len(batch)) or classify(batch)), info

    monkeypatch.setattr(predict, "load_classifier", counting)
    monkeypatch.setattr(predict, "READ_AHEAD_PIXELS", 2 * 500 * 500)
    assert predict.main([str(folder), "--model", str(own_classes.model / "model.keras"), "--backend", "tensorflow",
                         "--csv", str(tmp_path / "r.csv")]) == 0
    assert batches == [2, 2, 1]
    assert [row["path"] for row in read_csv(tmp_path / "r.csv")] == [str(folder / f"large_{i}.png") for i in range(5)]
