"""The correction loop on a labelled site: fine-tune on some photos' tiles, judge on other photos.

    python benchmarks/bench_site_loop.py --dataset ozgenel/ --site sites/road_cfd --tile 64
    python benchmarks/bench_site_loop.py --dataset ozgenel/ --site sites/drone_uav75/train \\
        --test-site sites/drone_uav75/val --tile 64 --seeds 42 1 2 -- --site-repeats 20

A site is a folder with images/ and masks/ (support/masks.py). Its photos are split by photo,
never by tile: with --test-site, all of --site's photos but a validation share are fine-tuned on
and --test-site's photos are the test; otherwise --site's photos are split fit:validation:test
(60:20:20, seeded); --fit-on-validation, once the settings are chosen, fine-tunes on the
validation photos too, as a user would on all the photos they labelled. Each split's tiles are
labelled from the masks (`python -m support.masks`): the fit photos' as a user would label them,
the others' on predict's grid (every half tile), as predict reads photos; the fit photos'
labels join the dataset in one cache (data_prep.py --src DATASET --src labels.csv), and train.py
fine-tunes the bundled model on it, with anything after `--` passed to train.py. It prints, per
seed, for the validation and test photos: tile ROC AUC and balanced accuracy at the model's
threshold, before (the bundled model) and after; and the dataset's test accuracy after.
docs/EXPERIMENTS.md ("Correcting it on a site") was measured with it.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, machine

from predict import BUNDLED_MODEL
from support import masks, runner
from support.evaluation import roc_curve
from support.images import list_images
from support.labels import cut_boxes
from support.model_files import CRACK_CLASSES, load_classifier, read_model_info

SPLIT = (0.6, 0.2, 0.2)  # fit, validation, test photos of a site without --test-site


def split_photos(site, test_site, seed, fit_on_validation=False):
    """{split: [photo paths]} by photo; fit_on_validation: the validation photos join the fit ones."""
    photos = list_images(site / "images")
    order = [photos[i] for i in np.random.default_rng(seed).permutation(len(photos))]
    if test_site:
        n_val = round(len(order) * SPLIT[1] / (SPLIT[0] + SPLIT[1]))
        return {"fit": order[n_val:], "val": order[:n_val], "test": list_images(test_site / "images")}
    n_fit, n_val = round(len(order) * SPLIT[0]), round(len(order) * SPLIT[1])
    if fit_on_validation:
        return {"fit": order[:n_fit + n_val], "test": order[n_fit + n_val:]}
    return {"fit": order[:n_fit], "val": order[n_fit:n_fit + n_val], "test": order[n_fit + n_val:]}


def labels_file(photos, work, name, tile, stride=None):
    """A labels CSV for these photos, made by support/masks.py from a folder of links to them, its tiles
    every `stride` pixels (default: masks.py's)."""
    folder = work / name
    for photo in photos:
        for kind, path in (("images", photo), ("masks", masks.find_mask(photo, photo.parent, photo.parent.parent / "masks"))):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            (folder / kind / path.name).symlink_to(path.resolve())
    out = work / f"{name}.csv"
    run([sys.executable, "-m", "support.masks", folder / "images", folder / "masks", "--tile", tile, "--out", out,
         *(["--stride", stride] if stride else [])])
    return out


def run(command):
    result = subprocess.run([str(c) for c in command], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(map(str, command))} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def tile_scores(model, labels_csv):
    """(tile ROC AUC, balanced accuracy at the model's threshold, tiles, crack recall, no crack recall) on
    a labels file's tiles."""
    classify, info = load_classifier(model, "tensorflow")
    _, cut = cut_boxes(labels_csv, CRACK_CLASSES, info["image_size"])
    tiles = [tile for name in CRACK_CLASSES for _, tile in cut[name]]
    truth = np.array([label for label, name in enumerate(CRACK_CLASSES) for _ in cut[name]])
    probs = np.concatenate([classify(np.stack(tiles[i:i + 256]))[0][:, 1] for i in range(0, len(tiles), 256)])
    fpr, tpr = roc_curve(truth, probs)
    said = probs >= info.get("threshold", 0.5)
    recalls = float(np.mean(said[truth == 1])), float(np.mean(~said[truth == 0]))
    return float(np.trapezoid(tpr, fpr)), sum(recalls) / 2, len(tiles), *recalls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset's folder (Negative/, Positive/)")
    parser.add_argument("--site", type=Path, required=True, help="a site: images/ and masks/")
    parser.add_argument("--test-site", type=Path, help="other photos of the site, the test (default: a share of --site)")
    parser.add_argument("--tile", type=int, default=227, help="tile side in photo pixels")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="seeds of the photo split and training")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="the model to fine-tune")
    parser.add_argument("--fit-on-validation", action="store_true",
                        help="settings chosen, fine-tune on the validation photos too (as a user would on every "
                             "photo labelled) and score the test photos alone; not with --test-site")
    parser.add_argument("train_args", nargs="*", help="after --: more options for train.py")
    args = parser.parse_args()
    if args.fit_on_validation and args.test_site:
        parser.error("--fit-on-validation splits --site itself: leave out --test-site")
    print(machine())
    print(f"site {args.site}, tiles of {args.tile} px, train.py {' '.join(args.train_args) or '(defaults)'}")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix="site-loop-") as work:
            work = Path(work)
            photos = split_photos(args.site, args.test_site, seed, args.fit_on_validation)
            # fine-tuned on labels as a user makes them; scored on predict's grid, as a user's photos are read
            csvs = {name: labels_file(found, work, name, args.tile, None if name == "fit" else args.tile // 2)
                    for name, found in photos.items()}
            run([sys.executable, "data_prep.py", "--src", args.dataset, "--src", csvs["fit"], "--out", work / "cache",
                 "--seed", seed, "--size", read_model_info(args.model)["image_size"]])
            start = time.time()
            run([sys.executable, "train.py", "--cache", work / "cache", "--init-from", args.model, "--out", work / "model",
                 "--seed", seed, *args.train_args])
            seconds = time.time() - start
            metrics = json.loads((work / "model" / "metrics.json").read_text())
            dataset_accuracy = metrics["per_source"][str(args.dataset.resolve())]["accuracy"]
            line = [f"seed {seed}: {len(photos['fit'])} photos fine-tuned on in {seconds:.0f} s"]
            for split in [name for name in ("val", "test") if name in photos]:
                before = tile_scores(args.model, csvs[split])
                after = tile_scores(work / "model" / "model.keras", csvs[split])
                line.append(f"{split} ({len(photos[split])} photos, {after[2]} tiles): AUC {before[0]:.3f} -> "
                            f"{after[0]:.3f}, balanced accuracy {before[1]:.3f} -> {after[1]:.3f} (recall: crack {after[3]:.3f}, "
                            f"no crack {after[4]:.3f})")
            line.append(f"threshold {metrics['threshold']}; dataset test accuracy after {dataset_accuracy:.4f}")
            print("; ".join(line), flush=True)


if __name__ == "__main__":
    runner.run_script(main, "nothing more was measured")
