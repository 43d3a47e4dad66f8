"""train.py: from a cache to a saved model and the reports a user reads."""

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import PRETRAINED, REPO, assert_clean_failure, run

import train
from model import INPUT_SIZE, MIN_INPUT_SIZE
from support.errors import InputError
from support.model_files import read_model_info
from support.tf_import import keras
from support.verdicts import verdict_rule

REPORT_FILES = ["model.keras", "model.tflite", "history.csv", "metrics.json", "training_curves.png", "confusion_matrix.png",
                "roc_curve.png", "test_predictions.png", "misclassified.png", "augmentation.png"]


@pytest.mark.slow
def test_training_writes_model_and_reports(trained_dir):
    for name in REPORT_FILES:
        assert (trained_dir / name).stat().st_size > 0, name
    assert not list(trained_dir.glob("*partial*"))
    metrics = json.loads((trained_dir / "metrics.json").read_text())
    assert metrics["images"] == 24 and metrics["epochs_run"] == 2 and metrics["threshold"] == 0.5
    for key in ("accuracy", "roc_auc", "training_seconds", "seconds_per_epoch"):
        assert isinstance(metrics[key], float)
    assert set(metrics["per_class"]) == {"Negative", "Positive"}
    assert all(set(v) == {"precision", "recall", "f1", "support"} for v in metrics["per_class"].values())
    assert np.sum(metrics["confusion_matrix"]["counts"]) == 24
    with open(trained_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {"epoch", "loss", "val_loss", "accuracy", "val_accuracy"} <= set(rows[0])
    # the learning rate falls along a cosine to zero at the last epoch
    assert float(rows[0]["learning_rate"]) == pytest.approx(0.5e-3, rel=0.05) and float(rows[1]["learning_rate"]) < 1e-9
    assert metrics["seconds_to_val_accuracy_0.995"] in [None] + [float(r["seconds"]) for r in rows]
    info = read_model_info(trained_dir / "model.keras")  # the model says what its output means
    assert read_model_info(trained_dir / "model.tflite") == info  # and so does its LiteRT version
    assert info["class_names"] == ["Negative", "Positive"] and info["image_size"] == INPUT_SIZE and info["threshold"] == 0.5
    assert "features" not in info  # a crack model keeps its texture floor alone (support/unfamiliar.py)
    # and what predict needs to judge its evidence, measured on the cache: see train.calibrate
    assert 0.5 <= info["sure_threshold"] <= 0.99 and 0 < info["smooth_below"] < 10


@pytest.mark.slow
def test_saved_model_takes_raw_pixels(trained_dir, sample_cache):
    model = keras.models.load_model(trained_dir / "model.keras")
    x = np.load(sample_cache / "test_x.npy")
    prob = model.predict(x, verbose=0).ravel()
    assert prob.shape == (len(x),) and np.all((prob >= 0) & (prob <= 1))


def test_missing_cache_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no complete cache in .*data_prep.py"):
        train.main(["--cache", str(tmp_path / "nothing"), "--out", str(tmp_path / "m")])
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_distributed_training_saves_a_model_predict_loads(sample_cache, tmp_path):
    out = tmp_path / "models"
    result = run("train.py", "--cache", sample_cache, "--out", out, "--epochs", "1", "--distribute")
    assert result.returncode == 0, result.stderr
    assert "with 2 replicas" in result.stdout  # no GPU here: two logical CPU devices
    assert json.loads((out / "metrics.json").read_text())["replicas"] == 2
    predicted = run("predict.py", REPO / "sample_data" / "Positive", "--model", out / "model.keras",
                    "--csv", tmp_path / "out.csv")
    assert predicted.returncode == 0, predicted.stderr
    assert "200 images classified" in predicted.stdout


@pytest.mark.slow
def test_mixed_precision_keeps_a_float32_output(sample_cache, tmp_path):
    out = tmp_path / "models"
    result = run("train.py", "--cache", sample_cache, "--out", out, "--epochs", "1", "--mixed-precision",
                 "--no-augment")
    assert result.returncode == 0, result.stderr
    model = keras.models.load_model(out / "model.keras", compile=False)
    assert model.layers[-1].compute_dtype == "float32" and model.layers[1].compute_dtype == "float16"
    assert not (out / "augmentation.png").exists()
    # fine-tuning a float32 model (the bundled one) in mixed precision computes in float16 too
    tuned = tmp_path / "tuned"
    result = run("train.py", "--cache", sample_cache, "--out", tuned, "--epochs", "1", "--mixed-precision",
                 "--no-augment", "--init-from", PRETRAINED)
    assert result.returncode == 0, result.stderr
    model = keras.models.load_model(tuned / "model.keras", compile=False)
    assert model.layers[-1].compute_dtype == "float32" and model.layers[1].compute_dtype == "float16"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


@pytest.mark.slow
def test_two_workers_on_loopback_train_one_model_that_predict_loads(sample_cache, tmp_path):
    ports = [free_port(), free_port()]
    workers = [subprocess.Popen([sys.executable, str(REPO / "train.py"), "--cache", str(sample_cache),
                                 "--out", str(tmp_path / f"worker{i}"), "--epochs", "1", "--distribute"],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "TF_CONFIG": tf_config(ports, i)}) for i in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, out + err
        assert "all 2 workers are up" in out and "Traceback" not in err
    assert "as worker 0 of a multi-worker cluster" in outputs[0][0]
    assert "worker 0 wrote the model" in outputs[1][0]
    assert (tmp_path / "worker0" / "model.keras").is_file() and not (tmp_path / "worker1").exists()
    assert json.loads((tmp_path / "worker0" / "metrics.json").read_text())["replicas"] == 2
    predicted = run("predict.py", REPO / "sample_data" / "Negative", "--model", tmp_path / "worker0" / "model.keras")
    assert predicted.returncode == 0, predicted.stderr
    assert "200 images classified" in predicted.stdout


@pytest.mark.slow
def test_a_missing_worker_is_a_clear_error_after_the_wait(sample_cache, tmp_path):
    env = {"TF_CONFIG": tf_config([free_port(), free_port()], 0)}
    result = run("train.py", "--cache", sample_cache, "--out", tmp_path / "m", "--distribute",
                 "--wait-for-workers", "2", env=env)
    assert_clean_failure(result, "no worker listening at 127.0.0.1:", "--wait-for-workers")
    assert "worker 0: waiting for 127.0.0.1:" in result.stdout
    assert not (tmp_path / "m").exists()
    assert_clean_failure(run("train.py", "--cache", sample_cache, "--distribute", env={"TF_CONFIG": "{"}),
                         "TF_CONFIG must look like")


def start_train(args, tmp_path, env=None):
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *map(str, args)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def read_until(process, text):
    """Lines of the process's stdout up to the first one holding `text` (a state it has reached)."""
    lines = []
    while not lines or text not in lines[-1]:
        line = process.stdout.readline()
        assert line, f"ended before printing {text!r}: {''.join(lines)}{process.stderr.read()}"
        lines.append(line)
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["waiting for workers", "training"])
def test_ctrl_c_gives_one_line_and_no_model(sample_cache, trained_dir, tmp_path, moment):
    shutil.copytree(trained_dir, tmp_path / "m")  # a previous run's set: it stays whole, all of one run
    before = {p.relative_to(tmp_path / "m"): p.read_bytes() for p in (tmp_path / "m").rglob("*") if p.is_file()}
    if moment == "training":
        process = start_train(["--cache", sample_cache, "--out", tmp_path / "m", "--epochs", "500",
                               "--patience", "500", "--verbose"], tmp_path)  # --verbose: a line per epoch
        read_until(process, "Epoch 2/")
    else:
        process = start_train(["--cache", sample_cache, "--out", tmp_path / "m", "--distribute"], tmp_path,
                              env={"TF_CONFIG": tf_config([free_port(), free_port()], 1)})
        read_until(process, "waiting for")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.rstrip().endswith("\ninterrupted: no model was written; --out is as it was") and "Traceback" not in err, err
    after = {p.relative_to(tmp_path / "m"): p.read_bytes() for p in (tmp_path / "m").rglob("*") if p.is_file()}
    assert after == before
    assert not list(tmp_path.rglob("*partial*")) and not list(tmp_path.glob(".*.lock"))


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["not json", "no counts"])
def test_a_damaged_cache_is_named_not_a_traceback(sample_cache, tmp_path, damage):
    cache = tmp_path / "cache"
    shutil.copytree(sample_cache, cache)
    meta = json.loads((cache / "meta.json").read_text())
    del meta["counts"]
    (cache / "meta.json").write_text("{ half a file" if damage == "not json" else json.dumps(meta))
    assert_clean_failure(run("train.py", "--cache", cache, "--out", tmp_path / "m"),
                         f"{cache / 'meta.json'} is damaged", "run data_prep.py again")


@pytest.mark.slow
def test_training_says_where_its_cache_came_from(trained_dir, sample_cache):
    result = run("train.py", "--cache", sample_cache, "--out", trained_dir.parent / "again", "--epochs", "1",
                 "--no-augment", "--verbose")
    assert result.returncode == 0, result.stderr
    assert f"cache {sample_cache}/ from {REPO / 'sample_data'}, made " in result.stdout
    assert "minutes ago" in result.stdout
    # --verbose: the network's layers, a line per epoch and the test split's table, as Keras prints them
    assert "Total params" in result.stdout and " - val_loss: " in result.stdout and "f1-score" in result.stdout


@pytest.mark.slow
def test_by_default_training_says_in_a_few_lines_what_it_did(trained_dir):
    """trained_dir's run (no --verbose): a summary in words, no layer table, no line per epoch."""
    said = (trained_dir.parent / "train_stdout.txt").read_text()
    assert "Total params" not in said and " - val_loss: " not in said and "f1-score" not in said
    test = json.loads((trained_dir / "metrics.json").read_text())
    assert (f"final check on {test['images']} test images it never learnt from: "
            f"{round(test['accuracy'] * test['images'])} of {test['images']} right") in said
    assert f"{test['images']} images vouch for little" in said  # 24 test images: one is 4 points
    assert len(said.strip().splitlines()) <= 10


def coarse_grey(image):
    return cv2.resize(image.mean(axis=2).astype(np.float32), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA).ravel()


@pytest.mark.slow
def test_augmentation_figure_shows_the_training_images_turned_and_recoloured(sample_cache, tmp_path):
    from support.batches import save_augmentation_examples

    x = np.load(sample_cache / "train_x.npy")
    originals, augmented = save_augmentation_examples(x, np.load(sample_cache / "train_y.npy"), 7,
                                                      tmp_path / "augmentation.png")
    assert augmented.dtype == np.uint8 and len(augmented) == 6
    for original, image in zip(originals, augmented):
        # The same picture, turned: one of the 8 symmetries matches it far better than the others
        # (compared at 1/4 scale, where the added sensor noise averages out)...
        symmetries = [np.rot90(flipped, k) for flipped in (original, original[:, ::-1]) for k in range(4)]
        matches = sorted(np.corrcoef(coarse_grey(image), coarse_grey(s))[0, 1] for s in symmetries)
        assert matches[-1] > 0.7 and matches[-1] - matches[-2] > 0.1, matches
        # ...taken in other light: its pixels are not the original's.
        assert not any(np.array_equal(image, s) for s in symmetries)
    figure = cv2.imread(str(tmp_path / "augmentation.png"))
    not_white = figure.min(axis=2) < 200
    assert not_white.mean() > 0.4  # the panels show images, not blank white


@pytest.mark.slow
def test_fine_tuning_starts_from_the_given_model(trained_dir, sample_cache, tmp_path):
    from support.batches import THIN_CRACKS

    result = run("train.py", "--cache", sample_cache, "--out", tmp_path / "tuned", "--init-from",
                 trained_dir / "model.keras", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert f"fine-tuning {trained_dir / 'model.keras'}" in result.stdout
    info = read_model_info(tmp_path / "tuned" / "model.keras")
    assert info["init_from"] == str(trained_dir / "model.keras") and info["image_size"] == INPUT_SIZE
    # adapting to a site learns its camera and light and its own cracks: no random capture conditions and
    # no drawn hairlines, unlike training from scratch
    tuned, scratch = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "tuned", trained_dir))
    assert (tuned["capture"], tuned["thin_cracks"]) == (False, 0.0)
    assert (scratch["capture"], scratch["thin_cracks"]) == (True, THIN_CRACKS)
    # every default resolved once, printed, and kept in the model: it says how it was trained
    assert info["recipe"] == {key: tuned[key] for key in info["recipe"]}
    assert info["recipe"]["epochs"] == 1 and info["recipe"]["learning_rate"] == 3e-4
    assert info["threshold"] == tuned["threshold"] == 0.5  # one source, no site: the threshold is not moved
    assert "recipe: epochs 1, learning rate 0.0003, batch size 64" in result.stdout
    small = tmp_path / "small_cache"
    assert run("data_prep.py", "--src", REPO / "sample_data", "--out", small, "--size", MIN_INPUT_SIZE).returncode == 0
    assert_clean_failure(run("train.py", "--cache", small, "--init-from", trained_dir / "model.keras"),
                         f"takes {INPUT_SIZE} px images but the cache holds {MIN_INPUT_SIZE} px", f"--size {INPUT_SIZE}")


def test_sources_of_different_sizes_weigh_the_same():
    from support.batches import make_dataset

    sources = np.r_[np.zeros(900, int), np.ones(100, int)]  # a dataset and a small site folder
    x = np.where(sources == 1, 255, 0).astype(np.uint8).reshape(1000, 1, 1, 1).repeat(3, axis=3)
    y = np.zeros(1000, np.uint8)
    drawn = np.concatenate([batch[0].numpy()[:, 0, 0, 0] for batch in
                            make_dataset(x, y, 50, shuffle=True, seed=1, sources=sources)])
    assert len(drawn) == 1000  # an epoch is as long as ever
    assert 0.4 < np.mean(drawn == 255) < 0.6  # but half of its rows come from the site
    drawn = np.concatenate([batch[0].numpy()[:, 0, 0, 0] for batch in
                            make_dataset(x, y, 50, shuffle=True, seed=1, sources=sources, site_share=0.2)])
    assert 0.15 < np.mean(drawn == 255) < 0.25  # or the share train.py gives a site (--site-share)
    _, _, weights = next(iter(make_dataset(x, y, 1000, sources=sources)))
    weights = weights.numpy()
    assert np.isclose(weights[:900].sum(), weights[900:].sum()) and np.isclose(weights.mean(), 1)


def test_hairlines_are_drawn_on_clean_images_only_and_the_classes_keep_their_weight(tmp_path):
    from support.batches import THIN_CRACKS, add_thin_cracks, make_dataset, save_augmentation_examples, thin_crack_shapes
    from support.tf_import import tf

    shapes = thin_crack_shapes(200, 64, seed=0)
    for shape in shapes:  # a thin line across much of the patch, not a blob or a speck
        rows, cols = np.nonzero(shape > 0.1)
        assert max(np.ptp(rows), np.ptp(cols)) >= 32 and (shape > 0.1).mean() < 0.15 and shape.max() > 0.3
    labels = np.r_[np.zeros(2000), np.ones(2000)].astype(np.float32)
    images, new_labels, weights = (t.numpy() for t in add_thin_cracks(
        tf.fill([4000, 64, 64, 3], 200.0), labels, tf.ones(4000), tf.constant(shapes), tf.constant([1, 2], tf.int64)))
    drawn = (images < 200).any(axis=(1, 2, 3))
    assert not drawn[labels == 1].any()  # a cracked image is not given a second crack
    assert THIN_CRACKS - 0.03 < drawn[labels == 0].mean() < THIN_CRACKS + 0.03
    assert (new_labels[drawn] == 1).all() and (new_labels[~drawn] == labels[~drawn]).all()
    # the drawn ones are now cracked, yet cracks weigh no more than before in the loss
    assert weights[new_labels == 1].sum() == pytest.approx(weights[new_labels == 0].sum(), rel=0.02)
    # what train.py --thin-cracks feeds the model: the same, through the training pipeline
    x, y = np.full((640, 64, 64, 3), 200, np.uint8), np.zeros(640, np.uint8)
    batches = list(make_dataset(x, y, 64, shuffle=True, augment=True, seed=3, crack_shapes=tf.constant(shapes)))
    images, labels = (np.concatenate([batch[i].numpy() for batch in batches]) for i in (0, 1))
    assert ((images < 199).any(axis=(1, 2, 3)) == (labels == 1)).all() and 0.1 < labels.mean() < 0.2
    # and the augmentation figure shows some: the drawn copies are darker along a line, not overall
    originals, augmented = save_augmentation_examples(x, y, 3, tmp_path / "augmentation.png", capture=False,
                                                      crack_shapes=tf.constant(shapes))
    darker = (augmented < 199).any(axis=(1, 2, 3))
    assert 0 < darker.sum() < len(darker) and all((image < 199).mean() < 0.15 for image in augmented[darker])


@pytest.mark.slow
def test_int8_litert_model_is_smaller_and_agrees_with_keras(sample_cache, trained_dir, tmp_path):
    from support import model_files

    result = run("train.py", "--cache", sample_cache, "--out", tmp_path, "--epochs", "2", "--int8-litert")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model.tflite").stat().st_size < 0.4 * (trained_dir / "model.tflite").stat().st_size
    assert read_model_info(tmp_path / "model.tflite")["litert_int8"] is True
    if not model_files.litert_installed():
        pytest.skip("no ai-edge-litert wheel for this platform")
    x = np.load(sample_cache / "test_x.npy")
    by_keras, _ = model_files.load_classifier(tmp_path / "model.keras", "tensorflow")
    by_litert, _ = model_files.load_classifier(tmp_path / "model.tflite", "litert")
    np.testing.assert_allclose(by_litert(x)[0], by_keras(x)[0], atol=0.05)


def test_help_prints_the_hairline_share(capsys):  # argparse formats help with %: a stray one breaks --help
    with pytest.raises(SystemExit) as done:
        train.parse_args(["--help"])
    printed = capsys.readouterr().out
    assert done.value.code == 0 and "--thin-cracks" in printed and "15% of the" in printed


@pytest.mark.parametrize("site_images, epochs, learning_rate", [(0, 10, 3e-4), (74, 10, 3e-4), (1000, 40, 1e-3)])
def test_a_site_labelled_whole_fine_tunes_longer_at_the_full_rate(site_images, epochs, learning_rate, capsys):
    # a few dozen marks must not be learnt by heart; a whole labelled site has cracks of its own to learn
    meta = {"class_names": ["Negative", "Positive"], "counts": {"train": {"total": 13000 + site_images}},
            "file_sources": {"train": [0] * 13000 + [1] * site_images}}
    recipe = train.choose_recipe(train.parse_args(["--init-from", str(PRETRAINED)]), meta, verdict_rule(meta))
    assert (recipe.epochs, recipe.learning_rate) == (epochs, learning_rate)
    share = 0.2 if site_images >= 1000 else 30 * site_images / (epochs * (13000 + site_images))  # seen ~30 times
    assert recipe.site_share == share
    assert f"recipe: epochs {epochs}, learning rate {learning_rate}" in capsys.readouterr().out
    given = train.parse_args(["--init-from", str(PRETRAINED), "--epochs", "3", "--learning-rate", "1e-4"])
    chosen = train.choose_recipe(given, meta, verdict_rule(meta))  # what the user says wins
    assert (chosen.epochs, chosen.learning_rate) == (3, 1e-4)
