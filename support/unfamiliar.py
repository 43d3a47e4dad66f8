"""Inputs unlike anything a model learned from: how far an image's features lie from the training images'.

The classifier's last layer reads the features of the layer before it (model.py's Dense(64)).
Images of the classes a model was trained on give features near those of its training images; an
input of none of them (noise, a flat grey, a page of text, a screenshot) lands far away, however
sure its softmax is. train.py measures each class's mean feature vector on the training split and
their shared spread (the within-class covariance); an input's distance is its Mahalanobis distance
to the nearest class mean, and it is unfamiliar beyond the distance that CUTOFF_PERCENTILE of the
validation images stay within. Chosen on measurements (docs/EXPERIMENTS.md, "Inputs of no class").

The statistics travel in the model's info (its "features" entry), and the .tflite and .keras models
give the features as a second output (model_files), so predict.py needs numpy only. A model saved
before has no such entry: nothing is unfamiliar to it, as before.
"""

import base64

import numpy as np

from support.errors import InputError

UNFAMILIAR_SHARE = 0.5  # an image mostly unlike the training images (smoother, or far) is outside what the model knows

CUTOFF_PERCENTILE = 99.5  # of the validation images' distances: about 1 in 200 of the classes' own is set aside
SHRINK = 1e-3  # added to the covariance's diagonal (times its mean variance): units that never fire stay finite


def feature_statistics(train_features, train_labels, val_features):
    """The info's "features" entry: the whitening that turns distances into Mahalanobis ones (kept
    as float16, base64: 144 x 144 numbers would be 250 kB of JSON), each class's whitened mean, and
    the cut-off measured on the validation split with the whitening as stored."""
    train_features, train_labels = np.asarray(train_features, np.float64), np.asarray(train_labels)
    classes = np.unique(train_labels)
    means = np.stack([train_features[train_labels == c].mean(axis=0) for c in classes])
    centred = train_features - means[np.searchsorted(classes, train_labels)]
    covariance = centred.T @ centred / len(centred)
    covariance += SHRINK * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    values, vectors = np.linalg.eigh(covariance)
    whitening = (vectors / np.sqrt(values)).astype(np.float16)
    stats = {"width": len(whitening), "whitening": base64.b64encode(whitening.tobytes()).decode(),
             "means": np.round(means @ whitening.astype(np.float64), 4).tolist()}
    cut = float(np.percentile(distances(val_features, stats), CUTOFF_PERCENTILE))
    return stats | {"unfamiliar_beyond": round(cut, 4), "percentile": CUTOFF_PERCENTILE}


def describe(stats):
    """train.py's line about the cut-off."""
    return (f"unlike the training images beyond a feature distance of {stats['unfamiliar_beyond']:.1f} "
            f"({stats['percentile']:g}% of the validation images lie within it): such inputs will be uncertain")


def whitening_matrix(stats):
    width = stats["width"]
    return np.frombuffer(base64.b64decode(stats["whitening"]), np.float16).reshape(width, width).astype(np.float32)


def distances(features, stats):
    """Each row's Mahalanobis distance to the nearest class mean of the training features."""
    whitened = np.asarray(features, np.float32) @ whitening_matrix(stats)
    return np.min([np.linalg.norm(whitened - mean, axis=1) for mean in np.asarray(stats["means"], np.float32)], axis=0)


def far_from_training(features, info, rows):
    """Which of `rows` inputs lie farther from the training images than the cut-off; none for a
    model without the statistics (saved before, or a crack model: see train.py)."""
    stats = info.get("features")
    if not stats:
        return np.zeros(rows, bool)
    return distances(features, stats) > stats["unfamiliar_beyond"]


def check_width(features, stats):
    """Raise InputError unless the model gives as many features as its statistics describe."""
    if np.shape(features)[-1] != stats["width"]:
        raise InputError(f"it gives {np.shape(features)[-1]} features but its info describes {stats['width']}")


def statistics_problem(stats):
    """What is wrong with an info's "features" entry, or None (model_files.info_problem)."""
    try:
        width, cut = stats["width"], stats["unfamiliar_beyond"]
        means = np.asarray(stats["means"], np.float64)
        whitening = whitening_matrix(stats)
    except (KeyError, TypeError, ValueError, AttributeError):  # base64 and reshape raise ValueError (binascii.Error)
        return "features must hold width, whitening, means and unfamiliar_beyond"
    if means.ndim != 2 or means.shape[1] != width or type(cut) not in (int, float) or not np.isfinite(cut) \
            or not np.all(np.isfinite(means)) or not np.all(np.isfinite(whitening)):
        return f"features must hold class means of {width} numbers each and a cut-off"
    return None
