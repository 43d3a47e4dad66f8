"""What train.py reports about a model: test-split figures and plots for any number of classes,
and how sure the model can be (calibrate), which predict.py uses to say "uncertain".

Probabilities are always (n, classes) here (model_files.class_probabilities). With two classes
an image is called the second class (e.g. Positive = crack) from `threshold` up; with more, the
most probable class.
"""

import dataclasses
import math

import numpy as np

from support.images import surface_texture
from support.model_files import predicted_classes, read_model_info

TARGET_VAL_ACCURACY = 0.995  # metrics.json says how many seconds training took to first reach it
SURE_CANDIDATES = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]  # crack probabilities tried as "sure" (see calibrate)
GENERIC_CANDIDATES = [round(0.5 + 0.01 * i, 2) for i in range(50)]  # top probabilities tried, other models
SURE_ERROR = 0.005  # the share of sure calls that may be wrong on validation, other models (see sure_cutoff)
SITE_THRESHOLDS = [round(0.05 * i, 2) for i in range(2, 19)]  # crack thresholds tried on a site (site_threshold)
MIN_SITE_CHECKS = 20  # validation images of each class a site needs before its threshold is chosen on them


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


def calibrate(train_x, val_probs, val_y, crack_model, threshold=0.5, val_sources=None):
    """What predict.py needs to judge its own evidence, measured on this model's data.

    threshold (crack models fine-tuned with a site, val_sources given): see site_threshold.
    sure_threshold: for a crack model, the lowest crack probability from which the validation
      split's crack calls are at least 99.9% right (thousands of validation images can show that);
      for other models, the one sure_cutoff chooses, with what it leaves uncertain in `sure_calls`.
      Below it, predict says "uncertain".
    smooth_below: the texture (images.surface_texture) that 99.5% of training images exceed; a photo
      mostly smoother than that is unlike anything the model learned from (for any model: a black or
      flat grey input lies near the class means of the features, docs/EXPERIMENTS.md "Inputs of no class").
    """
    floor = texture_floor(train_x)
    if not crack_model:  # what "uncertain" will cost is said (printed) before the test figures
        calibration = sure_cutoff(val_probs.max(axis=1), predicted_classes(val_probs, threshold) == val_y)
        print(describe_sure_calls(calibration))
        return {"threshold": threshold, **calibration, "smooth_below": floor}
    calls, right = val_probs[:, 1], val_y == 1
    if val_sources is not None:
        threshold = site_threshold(calls, val_y, np.asarray(val_sources), threshold)
        # "sure" as the bundled model's is: on the dataset. A site's own false alarms left in its validation
        # tiles made it 0.99, and every crack photo of the site uncertain (docs/EXPERIMENTS.md, "Verdicts").
        calls, right = calls[np.asarray(val_sources) == 0], right[np.asarray(val_sources) == 0]
    sure = next((t for t in SURE_CANDIDATES if np.sum((calls >= t) & right) >= 0.999 * np.sum(calls >= t)),
                SURE_CANDIDATES[-1])
    return {"threshold": threshold, "sure_threshold": max(sure, threshold), "smooth_below": floor}


def texture_floor(train_x):
    """The texture 99.5% of the training images exceed (images.surface_texture), read 4,096 at a time."""
    texture = np.concatenate([surface_texture(np.asarray(train_x[i:i + 4096])) for i in range(0, len(train_x), 4096)])
    return round(float(np.percentile(texture, 0.5)), 3)


def site_threshold(crack_probs, labels, sources, threshold=0.5):
    """The crack threshold at which the validation images are best told apart, each source and
    each class weighing the same (the mean of their recalls), or `threshold` when a site (a source
    after the first) has fewer than MIN_SITE_CHECKS validation images of a class.

    Fine-tuning on a site ranks its tiles well long before its thin cracks reach 0.5: on the road
    and drone sites most missed cracks sat between 0.1 and 0.5 (docs/EXPERIMENTS.md, "Correcting it
    on a site"). The dataset's own images read the same from 0.1 to 0.9, so the site decides.
    """
    site = sources > 0
    if any(np.sum(site & (labels == label)) < MIN_SITE_CHECKS for label in (0, 1)):
        return threshold

    def balanced_accuracy(t):
        recalls = [np.mean((crack_probs[(sources == s) & (labels == label)] >= t) == label)
                   for s in np.unique(sources) for label in (0, 1) if np.any((sources == s) & (labels == label))]
        return np.mean(recalls)

    scores = {t: balanced_accuracy(t) for t in [threshold, *SITE_THRESHOLDS]}
    best = max(scores.values())
    chosen = min((t for t, score in scores.items() if score == best), key=lambda t: abs(t - threshold))
    print(f"threshold {chosen:.2f}, chosen on the validation images of every source: crack and no crack recall "
          f"{best:.1%} on average ({scores[threshold]:.1%} at {threshold})")
    return chosen


def sure_cutoff(top, right, target=SURE_ERROR):
    """The lowest top probability from which at most `target` of the validation calls are wrong;
    the highest candidate if none is.

    A few hundred validation images cannot show 99.9%: asking for it made 0.99 the cut-off of most
    models of other classes, and left right answers uncertain (docs/EXPERIMENTS.md, "The 'sure'
    cut-off of other classes"). At 0.5% a sample under 200 sure calls must have no error at all,
    so a tiny validation split falls back to the strict rule by itself. What the sample can vouch
    for is said beside it: the sure calls' accuracy and its one-sided 95% lower bound.
    """
    top, right = np.asarray(top), np.asarray(right, bool)
    cut = next((t for t in GENERIC_CANDIDATES
                if 0 < np.sum(top >= t) and np.sum(~right & (top >= t)) <= target * np.sum(top >= t)),
               GENERIC_CANDIDATES[-1])
    sure = top >= cut
    n, k = int(sure.sum()), int(np.sum(sure & ~right))
    return {"sure_threshold": float(cut), "sure_calls": {
        "target_error": target, "validation_images": len(top), "uncertain_share": round(1 - n / max(len(top), 1), 4),
        "accuracy": round(1 - k / n, 4) if n else None, "accuracy_lower_95": round(1 - error_upper_bound(k, n), 4)}}


def error_upper_bound(errors, n, confidence=0.95):
    """One-sided Clopper-Pearson upper bound on an error rate after `errors` in `n` trials."""
    if errors >= n:
        return 1.0
    low, high = errors / n, 1.0
    for _ in range(50):  # bisection: the chance of seeing so few errors falls as the rate rises
        mid = (low + high) / 2
        low, high = (mid, high) if binomial_cdf(errors, n, mid) > 1 - confidence else (low, mid)
    return high


def binomial_cdf(k, n, p):
    """The chance of at most k errors in n trials at error rate p (in logs: n may be thousands)."""
    log_q = math.log1p(-p)
    return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
                        + (n - i) * log_q) for i in range(k + 1)) if p > 0 else 1.0


def describe_sure_calls(calibration):
    """One line for train.py: the chosen cut-off and what it means on the validation split."""
    sure, cut = calibration["sure_calls"], calibration["sure_threshold"]
    if sure["accuracy"] is None:
        return f"sure from top probability {cut:.2f}: no validation image reaches it, every verdict will be uncertain"
    missed = (f"; no cut-off kept {1 - sure['target_error']:.1%} of them right, so the strictest is used"
              if sure["accuracy"] < 1 - sure["target_error"] else "")
    return (f"sure from top probability {cut:.2f}: {sure['uncertain_share']:.1%} of the {sure['validation_images']} "
            f"validation images left uncertain, the sure ones {sure['accuracy']:.1%} right (at least "
            f"{sure['accuracy_lower_95']:.1%} with 95% confidence: a larger validation split tells more){missed}")


# ----------------------------------------------------------------------------------------------
# Figures


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, no display needed
    import matplotlib.pyplot as plt

    return plt


def save_image_grid(images, titles, path, heading, colors=None, columns=3):
    """Save labelled images as a grid PNG."""
    plt = pyplot()
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.5 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image, title) in enumerate(zip(axes.flat, images, titles)):
        ax.imshow(image)
        ax.set_title(title, fontsize=9, color=colors[i] if colors else "black")
    fig.suptitle(heading)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history, path):
    """Accuracy, loss (log scale: the late epochs' differences are small) and the learning rate per epoch."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ["accuracy", "loss"]):
        ax.plot(epochs, history[key], "o-", label="training")
        ax.plot(epochs, history[f"val_{key}"], "o-", label="validation")
        ax.set(xlabel="epoch", ylabel=key, title=key.capitalize())
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_yscale("log")
    axes[2].plot(epochs, history["learning_rate"], "o-", color="grey")
    axes[2].set(xlabel="epoch", ylabel="learning rate", title="Learning rate (at the end of each epoch)")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_test_figures(folder, x, y, probs, report, class_names, seed):
    """confusion_matrix.png, roc_curve.png (two classes), test_predictions.png and misclassified.png."""
    plt = pyplot()
    counts = np.array(report["confusion_matrix"]["counts"])
    side = 3.2 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(side, side - 0.6))
    ax.imshow(counts, cmap="Blues")
    for (t, p), n in np.ndenumerate(counts):
        ax.text(p, t, str(n), ha="center", va="center", fontsize=14, color="white" if n > counts.max() / 2 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30 if len(class_names) > 3 else 0)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(folder / "confusion_matrix.png", dpi=100)
    plt.close(fig)
    if "roc_auc" in report:
        fpr, tpr = roc_curve(y, probs[:, 1])
        fig, ax = plt.subplots(figsize=(4.8, 4.5))
        ax.plot(fpr, tpr, label=f"AUC = {report['roc_auc']:.4f}")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set(xlabel="false-positive rate", ylabel="true-positive rate",
               title=f"ROC curve, {class_names[1]} (test split)")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(folder / "roc_curve.png", dpi=100)
        plt.close(fig)
    predicted = predicted_classes(probs, report.get("threshold", 0.5))
    sample = np.random.default_rng(seed).choice(len(x), size=min(16, len(x)), replace=False)
    wrong = np.flatnonzero(predicted != y)
    for rows, name, heading in ((sample, "test_predictions.png", "Sample test predictions"),
                                (wrong[:16], "misclassified.png", f"Misclassified test images ({len(wrong)} of "
                                 f"{len(x)}" + (", first 16)" if len(wrong) > 16 else ")"))):
        titles = [f"true {class_names[y[r]]}\n{class_names[predicted[r]]} {probs[r, predicted[r]]:.3f}" for r in rows]
        colors = ["seagreen" if predicted[r] == y[r] else "crimson" for r in rows]
        save_image_grid([x[r] for r in rows], titles, folder / name, heading, colors=colors, columns=4)


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
