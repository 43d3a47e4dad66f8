"""train.py's and data_prep.py's plots, saved as PNG files: grids of labelled images, the training
curves, and the test split's confusion matrix, ROC curve and sample predictions. matplotlib is
imported only when one is drawn.
"""

import numpy as np

from support.evaluation import roc_curve
from support.model_files import predicted_classes


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


def save_examples(folder, classes, seed):
    """A 3x3 grid of labelled training images, so the user sees what the model will see."""
    x, y = np.load(folder / "train_x.npy", mmap_mode="r"), np.load(folder / "train_y.npy")
    rows = np.random.default_rng(seed).choice(len(x), size=min(9, len(x)), replace=False)
    save_image_grid([x[row] for row in rows], [classes[y[row]] for row in rows], folder / "examples.png",
                    f"Training examples ({x.shape[1]}x{x.shape[2]} px)")
