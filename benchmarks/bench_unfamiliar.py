"""How a model of any classes treats inputs of none of them, and what saying "uncertain" for them costs.

    python benchmarks/bench_unfamiliar.py --write-inputs unfamiliar/      # the eight inputs of no class, as PNGs
    python benchmarks/bench_unfamiliar.py --model model/model.keras --cache cache/
    python benchmarks/bench_unfamiliar.py --model model/model.keras --cache cache/ --predict   # as predict.py says

Eight inputs that are none of anyone's classes (random noise, black, flat grey, a page of text, a
screenshot-like window, a matplotlib heat-map figure, a sky gradient, a checkerboard) are shrunk
whole to the model's size, as predict.py shrinks them. With --cache (the data_prep cache the model
was trained on), each way of telling an input unlike the training images is scored on the test
split: verdicts right (an uncertain is not right), uncertain share, sure verdicts right, and how
many of the eight get no class. The ways compared use the model's features (predict.py's: the
mean of each convolution's maps beside the input of the last layer; --last-layer-only: the latter
alone): their Mahalanobis distance to the nearest class mean, or to their k nearest training
images, with the cut-off at a percentile of the validation split's distances; each also with the
texture floor (smoother than 99.5% of the training images). --predict runs predict.py (--csv) on
the test split's files and the eight inputs instead, and scores its verdicts: what a user sees.
The figures in docs/EXPERIMENTS.md ("Inputs of no class") were measured with it.
"""

import argparse
import itertools
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
from common import machine

from support import runner, unfamiliar
from support.calibration import texture_floor
from support.images import fit_to_model, smoother_than
from support.model_files import predicted_classes, read_model_info


def unfamiliar_inputs(seed=0):
    """{name: RGB image} of eight inputs of no class: each a kind of file a user may give by mistake."""
    rng = np.random.default_rng(seed)
    page = np.full((800, 600, 3), 250, np.uint8)
    for row in range(12):
        words = " ".join("".join(chr(c) for c in rng.integers(97, 123, rng.integers(2, 9))) for _ in range(6))
        cv2.putText(page, words, (40, 60 + 55 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2, cv2.LINE_AA)
    window = np.full((800, 1280, 3), 236, np.uint8)
    cv2.rectangle(window, (0, 0), (1279, 40), (60, 63, 70), -1)  # title bar
    cv2.rectangle(window, (0, 41), (240, 799), (250, 250, 252), -1)  # side panel
    for i, label in enumerate(["Home", "Files", "Settings", "Help"]):
        cv2.putText(window, label, (24, 90 + 44 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (40, 40, 40), 1, cv2.LINE_AA)
    for i in range(3):
        cv2.rectangle(window, (300 + 320 * i, 100), (580 + 320 * i, 300), (255, 255, 255), -1)
        cv2.rectangle(window, (320 + 320 * i, 240), (440 + 320 * i, 280), (215, 120, 0), -1)  # a button
    cv2.putText(window, "Dashboard", (300, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (30, 30, 30), 2, cv2.LINE_AA)
    sky = np.linspace(0, 1, 600)[:, None, None] * np.array([120, 80, 20]) + np.array([40, 110, 220])  # RGB
    return {
        "noise": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
        "black": np.zeros((256, 256, 3), np.uint8),
        "flat grey": np.full((256, 256, 3), 128, np.uint8),
        "text": page,
        "screenshot": window,
        "heat-map figure": heat_map_figure(rng),
        "sky gradient": np.broadcast_to(sky, (600, 900, 3)).clip(0, 255).astype(np.uint8),
        "checkerboard": ((np.indices((256, 256)) // 32).sum(axis=0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2),
    }


def heat_map_figure(rng):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.5), dpi=100)
    field = cv2.GaussianBlur(rng.normal(size=(60, 80)), (0, 0), 6)
    image = axes.imshow(field, cmap="viridis")
    figure.colorbar(image, ax=axes)
    axes.set_title("crack probability")
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return pixels


def features_and_probabilities(model, x, batch=256, last_layer_only=False):
    """(features, class probabilities) of uint8 inputs, from the .keras model: what predict.py reads
    (model_files.with_features), or the last layer's input alone."""
    from support.model_files import class_probabilities, with_features
    from support.tf_import import keras

    both = with_features(model)
    if last_layer_only:
        both = keras.Model(model.inputs[0], [model.outputs[0], model.layers[-2].output])
    parts = [both(np.asarray(x[i:i + batch]), training=False) for i in range(0, len(x), batch)]
    return (np.concatenate([np.asarray(f) for _, f in parts]),
            class_probabilities(np.concatenate([np.asarray(p) for p, _ in parts])))


def mahalanobis(train_f, train_y, val_f):
    """Distance to the nearest class mean, in the training features' shared (within-class) covariance:
    what train.py stores and predict.py measures (support/unfamiliar.py)."""
    stats = unfamiliar.feature_statistics(train_f, train_y, val_f)
    return lambda f: unfamiliar.distances(f, stats)


def nearest(train_f, k):
    """Distance to the k-th nearest training image, features scaled to unit length (Sun et al. 2022)."""
    unit = train_f / (np.linalg.norm(train_f, axis=1, keepdims=True) + 1e-9)

    def distance(f):
        f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-9)
        return np.sort(np.sqrt(np.maximum(0, 2 - 2 * f @ unit.T)), axis=1)[:, k - 1]
    return distance


def scores(verdicts, y):
    """(verdicts right, uncertain share, sure verdicts right, sure count) of -1 (uncertain) or a class."""
    sure = verdicts >= 0
    return (float(np.mean(verdicts == y)), float(1 - sure.mean()),
            float(np.mean(verdicts[sure] == y[sure])) if sure.any() else float("nan"), int(sure.sum()))


def score_predict(model, cache, inputs):
    """predict.py's verdicts on the cache's test files and on the eight inputs, scored."""
    from bench_other_surfaces import predict_rows

    meta = json.loads((cache / "meta.json").read_text())
    names = meta["class_names"]
    files = [os.path.abspath(f) for f in meta["files"]["test"]]  # as data_prep saw them: run from where it ran
    truth = dict(zip(files, np.load(cache / "test_y.npy")))
    with tempfile.TemporaryDirectory() as odd:
        for name, image in inputs.items():
            cv2.imwrite(str(Path(odd) / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        rows = predict_rows([*files, odd], model)
    test = [row for row in rows if row["path"] in truth]
    said = np.array([names.index(row["verdict"]) if row["verdict"] in names else -1 for row in test])
    right, uncertain, sure_right, sure = scores(said, np.array([truth[row["path"]] for row in test]))
    named = [f"{Path(row['path']).stem} ({row['verdict']})" for row in rows
             if row["path"] not in truth and row["verdict"] != "uncertain"]
    print(f"{machine()}\nmodel: {model}; predict.py on {len(test)} test images: verdicts right {right:.1%}, "
          f"uncertain {uncertain:.1%}, sure verdicts right {sure_right:.2%} ({sure}); inputs of no class given "
          f"no class: {len(inputs) - len(named)} of {len(inputs)}" + (f" (named: {', '.join(named)})" if named else ""))
    reasons = sorted({row["reason"] for row in rows if row["path"] not in truth})
    print("  reasons: " + " | ".join(reasons))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-inputs", type=Path, help="write the eight inputs of no class here as PNGs")
    parser.add_argument("--model", type=Path, help="a .keras model of train.py")
    parser.add_argument("--cache", type=Path, help="the data_prep cache it was trained on")
    parser.add_argument("--predict", action="store_true", help="score predict.py's verdicts on the test files")
    parser.add_argument("--last-layer-only", action="store_true", help="features: the last layer's input alone")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args()
    inputs = unfamiliar_inputs()
    if args.write_inputs:
        args.write_inputs.mkdir(parents=True, exist_ok=True)
        for name, image in inputs.items():
            cv2.imwrite(str(args.write_inputs / f"{name.replace(' ', '_')}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        print(f"wrote {len(inputs)} images to {args.write_inputs}/")
    if not args.model:
        return
    if not args.cache:
        parser.error("--model needs --cache")
    if args.predict:
        return score_predict(args.model, args.cache, inputs)
    from support.cache import load_cache
    from support.tf_import import keras

    info = read_model_info(args.model)
    model = keras.models.load_model(args.model, compile=False)
    data, meta = load_cache(args.cache)
    size, threshold, sure_from = info["image_size"], info.get("threshold", 0.5), info.get("sure_threshold", 0.5)
    odd = np.stack([fit_to_model(image, size) for image in inputs.values()])
    split = {name: features_and_probabilities(model, x, last_layer_only=args.last_layer_only)
             for name, (x, _) in data.items()} | {"odd": features_and_probabilities(model, odd, last_layer_only=args.last_layer_only)}
    (train_f, _), train_y = split["train"], data["train"][1]
    pixels = {"train": data["train"][0], "val": data["val"][0], "test": data["test"][0], "odd": odd}
    floor = texture_floor(pixels["train"])  # what train.py stores as smooth_below
    ways = {"none": None, "Mahalanobis": mahalanobis(train_f, train_y, split["val"][0]), "1-NN": nearest(train_f, 1),
            "5-NN": nearest(train_f, 5)}
    print(f"{machine()}\nmodel: {args.model} (sure from {sure_from}); test images: {len(data['test'][1])}")
    print(f"{'way':<24}{'cut-off':>9}{'right':>8}{'uncertain':>10}{'sure right':>12}{'no class':>10}  given a class")
    rows = []
    for (way, distance), smooth in itertools.product(ways.items(), [False, True]):
        for percentile in ([None] if distance is None else [99.0, 99.5, 100.0]):
            cut = None if distance is None else float(np.percentile(distance(split["val"][0]), percentile))

            def verdicts(name):
                features, probs = split[name]
                predicted = predicted_classes(probs, threshold)
                sure = probs[np.arange(len(probs)), predicted] >= sure_from
                if cut is not None:
                    sure &= distance(features) <= cut
                if smooth:
                    sure &= ~smoother_than(np.asarray(pixels[name]), floor)
                return np.where(sure, predicted, -1)
            right, uncertain, sure_right, _ = scores(verdicts("test"), data["test"][1])
            named = [name for name, v in zip(inputs, verdicts("odd")) if v >= 0]
            label = (f"{way} p{percentile:g}" if percentile else way) + (" + floor" if smooth else "")
            print(f"{label:<24}{cut or 0:>9.3g}{right:>8.1%}{uncertain:>10.1%}{sure_right:>12.2%}"
                  f"{8 - len(named):>8} of 8  {', '.join(named)}")
            rows.append({"way": label, "cut": cut, "right": right, "uncertain": uncertain, "sure_right": sure_right,
                         "no_class": 8 - len(named), "given_a_class": named})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    runner.run_script(main, "nothing more was measured")
