"""train.py: from a cache to a saved model and the reports a user reads."""

import csv
import json

import numpy as np
from conftest import REPO, assert_clean_failure, run

from model import keras

REPORT_FILES = ["crack_cnn.keras", "history.csv", "metrics.json", "training_curves.png", "confusion_matrix.png",
                "roc_curve.png", "test_predictions.png", "misclassified.png", "augmentation.png"]


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
    assert len(rows) == 2 and {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(rows[0])


def test_saved_model_takes_raw_pixels(trained_dir, sample_cache):
    model = keras.models.load_model(trained_dir / "crack_cnn.keras")
    x = np.load(sample_cache / "test_x.npy")
    prob = model.predict(x, verbose=0).ravel()
    assert prob.shape == (len(x),) and np.all((prob >= 0) & (prob <= 1))


def test_missing_cache_is_a_clear_error(tmp_path):
    assert_clean_failure(run("train.py", "--cache", tmp_path / "nothing", "--out", tmp_path / "m"),
                         "no complete cache", "data_prep.py")


def test_distributed_training_saves_a_model_predict_loads(sample_cache, tmp_path):
    out = tmp_path / "models"
    result = run("train.py", "--cache", sample_cache, "--out", out, "--epochs", "1", "--distribute")
    assert result.returncode == 0, result.stderr
    assert "with 2 replicas" in result.stdout  # no GPU here: two logical CPU devices
    assert json.loads((out / "metrics.json").read_text())["replicas"] == 2
    predicted = run("predict.py", REPO / "sample_data" / "Positive", "--model", out / "crack_cnn.keras",
                    "--csv", tmp_path / "out.csv")
    assert predicted.returncode == 0, predicted.stderr
    assert "200 images classified" in predicted.stdout


def test_mixed_precision_keeps_a_float32_output(sample_cache, tmp_path):
    out = tmp_path / "models"
    result = run("train.py", "--cache", sample_cache, "--out", out, "--epochs", "1", "--mixed-precision",
                 "--no-augment")
    assert result.returncode == 0, result.stderr
    model = keras.models.load_model(out / "crack_cnn.keras", compile=False)
    assert model.layers[-1].compute_dtype == "float32" and model.layers[1].compute_dtype == "float16"
    assert not (out / "augmentation.png").exists()
