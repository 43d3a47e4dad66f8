"""What train.py reports about a model: test-split figures for any number of classes (printed, and
kept in metrics.json), how it does on each source (your site), how your site's images read before and
after fine-tuning, and how the run went (run_summary). How sure it can be is calibration.py's; the
plots are plots.py's.

Probabilities are always (n, classes) here (model_files.class_probabilities). With two classes
an image is called the second class (e.g. Positive = crack) from `threshold` up; with more, the
most probable class.
"""

import dataclasses

import numpy as np

from support.model_files import predicted_classes, read_model_info

TARGET_VAL_ACCURACY = 0.995  # metrics.json says how many seconds training took to first reach it


def test_report(y_true, probs, class_names, threshold=0.5):
    """Accuracy, per-class precision/recall/F1, confusion counts, and ROC AUC for two classes, as a dict."""
    y_true = np.asarray(y_true, int)
    y_pred = predicted_classes(probs, threshold)
    n = len(class_names)
    matrix = [[int(np.sum((y_true == t) & (y_pred == p))) for p in range(n)] for t in range(n)]
    per_class = {}
    for label, name in enumerate(class_names):
        tp = matrix[label][label]
        predicted = sum(matrix[t][label] for t in range(n))
        actual = sum(matrix[label])
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    report = {"accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else 0.0, "per_class": per_class,
              "confusion_matrix": {"rows_true_cols_predicted": class_names, "counts": matrix}}
    if n == 2:
        fpr, tpr = roc_curve(y_true, probs[:, 1])
        report.update(threshold=threshold, roc_auc=float(np.trapezoid(tpr, fpr)))
    return report


def per_source_report(y_true, probs, sources, names, threshold=0.5):
    """Test accuracy (and recall of the last class, e.g. Positive) on each --src of the cache, printed too."""
    right = predicted_classes(probs, threshold) == y_true
    last = probs.shape[1] - 1
    report = {}
    for i, name in enumerate(names):
        rows = sources == i
        positives = rows & (y_true == last)
        report[name] = {"images": int(rows.sum()), "accuracy": float(right[rows].mean()) if rows.any() else None,
                        "crack_recall": float(right[positives].mean()) if positives.any() else None}
        print(f"test accuracy {report[name]['accuracy'] or 0:.4f} on {rows.sum()} images from {name}")
    return report


def roc_curve(y_true, prob):
    """False- and true-positive rates over all thresholds (ties kept together)."""
    order = np.argsort(-prob, kind="stable")
    prob, y_true = prob[order], y_true[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(prob)), len(prob) - 1]
    tps = np.cumsum(y_true)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return np.r_[0, fps / max(fps[-1], 1)], np.r_[0, tps / max(tps[-1], 1)]


def print_report(report):
    width = max(10, *(len(name) + 1 for name in report["per_class"]))
    print(f"\n{'':>{width}}{'precision':>11}{'recall':>9}{'f1-score':>10}{'support':>9}")
    for name, row in report["per_class"].items():
        print(f"{name:>{width}}{row['precision']:>11.4f}{row['recall']:>9.4f}{row['f1']:>10.4f}{row['support']:>9}")
    total = sum(row["support"] for row in report["per_class"].values())
    print(f"{'accuracy':>{width}}{'':>20}{report['accuracy']:>10.4f}{total:>9}")
    if "roc_auc" in report:
        print(f"ROC AUC {report['roc_auc']:.4f}, threshold {report['threshold']}")
    counts = " ".join("[" + " ".join(map(str, row)) + "]" for row in report["confusion_matrix"]["counts"])
    print(f"confusion matrix (rows true, columns predicted): [{counts}]\n")


def site_training_images(data, meta):
    """(images, labels) of the training split from the sources after the first (your marks), or None."""
    if len(meta.get("sources", [])) < 2:
        return None
    rows = np.flatnonzero(np.array(meta["file_sources"]["train"]) > 0)
    x, y = data["train"]
    return np.asarray(x[rows]), y[rows]


def how_marks_read(y, before, after, meta, threshold=0.5, init_from=None):
    """Print and return how many of the site's training images (labels y) a model reads as labelled,
    per class, before and after fine-tuning (their probabilities from the two models), each model at
    its own threshold: `threshold` the new one's, the init_from model's from its info."""
    counts, class_names = {}, meta["class_names"]
    start = read_model_info(init_from).get("threshold", 0.5) if init_from else 0.5
    for label, probs, at in (("before", before, start), ("after", after, threshold)):
        right = predicted_classes(probs, at) == y
        counts[label] = {name: [int(right[y == i].sum()), int((y == i).sum())] for i, name in enumerate(class_names)}
    print(f"your site's {len(y)} training images read as labelled: " + ", ".join(
        f"{name} {counts['before'][name][0]} -> {counts['after'][name][0]} of {counts['after'][name][1]}"
        for name in class_names) + " (before -> after fine-tuning)")
    return counts


def run_summary(history, seconds, recipe, meta, replicas, mixed_precision):
    """What train.py's metrics.json records beside the test figures: how training went, with what
    settings (train.Recipe: every default resolved)."""
    best = int(np.argmin(history.get("guarded_val_loss", history["val_loss"])))  # the epoch kept (train.fit)
    reached = [t for t, a in zip(history["seconds"], history["val_accuracy"]) if a >= TARGET_VAL_ACCURACY]
    return {"image_size": meta["image_size"], "epochs_run": len(history["loss"]), "best_epoch": best + 1,
            "best_val_loss": float(history["val_loss"][best]),
            "best_val_accuracy": float(history["val_accuracy"][best]), "training_seconds": round(seconds, 1),
            f"seconds_to_val_accuracy_{TARGET_VAL_ACCURACY}": reached[0] if reached else None,
            "seconds_per_epoch": round(seconds / len(history["loss"]), 1), **dataclasses.asdict(recipe),
            "replicas": replicas, "mixed_precision": mixed_precision}
