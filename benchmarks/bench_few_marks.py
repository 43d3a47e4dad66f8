"""The correction loop with a few marks, as an inspector does it in the report: what changes on the other photos.

    python benchmarks/bench_few_marks.py --dataset ozgenel/ --photos photos/ \\
        --false-alarms photos/noncrack_01.jpg --cracks photos/concrete_crack1.jpg --seeds 42 1 2

Every tile that fires (at the model's threshold) on a --false-alarms photo is marked "no crack",
every one that fires on a --cracks photo "crack", as a person clicking them in the report would.
The marks join the dataset (data_prep.py --src DATASET --src labels.csv), train.py fine-tunes the
bundled model on them (anything after `--` is passed to it), and predict.py classifies every photo
in --photos with both models. It prints each photo's verdict and tiles before and
after, then a count: photos that were crack and are no longer, split by whether they were marked.
"""

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine

from predict import BUNDLED_MODEL


def run(command):
    result = subprocess.run([str(c) for c in command], cwd=REPO, capture_output=True, text=True)
    if result.returncode not in (0, 1):  # 1: some input could not be read, the rest is classified
        raise SystemExit(f"error: {' '.join(map(str, command))} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def predict_rows(photos, model, work, name, options=()):
    """{photo path: predict.py's --csv row} and the tile rows of every photo (more predict.py options in options)."""
    table, tiles = work / f"{name}.csv", work / f"{name}_tiles.csv"
    run([sys.executable, "predict.py", photos, "--model", model, "--csv", table, "--tiles-csv", tiles, "--no-figures",
         *options])
    with open(table) as f, open(tiles) as g:
        return {row["path"]: row for row in csv.DictReader(f)}, list(csv.DictReader(g))


def mark(tiles, photos, label, threshold):
    """Labels-file rows: every tile of these photos that fired, with this label."""
    wanted = {str(p) for p in photos}
    return [[row["image"], row["x"], row["y"], row["width"], row["height"], label]
            for row in tiles if row["image"] in wanted and float(row["probability"]) >= threshold]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset's folder (Negative/, Positive/)")
    parser.add_argument("--photos", type=Path, required=True, help="the site's photos")
    parser.add_argument("--false-alarms", type=Path, nargs="+", default=[], help="photos whose fired tiles are no crack")
    parser.add_argument("--cracks", type=Path, nargs="+", default=[], help="photos whose fired tiles are cracks")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--tile", type=int, default=227, help="predict.py's --tile")
    parser.add_argument("train_args", nargs="*", help="after --: more options for train.py")
    args = parser.parse_args()
    print(machine())
    print(f"marked: no crack on {', '.join(p.name for p in args.false_alarms)}; crack on "
          f"{', '.join(p.name for p in args.cracks)}; train.py {' '.join(args.train_args) or '(defaults)'}")
    photos = [args.photos / p.name for p in (*args.false_alarms, *args.cracks)]
    with tempfile.TemporaryDirectory(prefix="few-marks-") as work:
        work = Path(work)
        before, tiles = predict_rows(args.photos, BUNDLED_MODEL, work, "before")
        rows = (mark(tiles, photos[:len(args.false_alarms)], "no crack", 0.5)
                + mark(tiles, photos[len(args.false_alarms):], "crack", 0.5))
        with open(work / "labels.csv", "w", newline="") as f:
            csv.writer(f).writerows([["path", "x", "y", "width", "height", "label"], *rows])
        print(f"{len(rows)} tiles marked ({sum(r[-1] == 'crack' for r in rows)} crack)")
        for seed in args.seeds:
            run([sys.executable, "data_prep.py", "--src", args.dataset, "--src", work / "labels.csv",
                 "--out", work / f"cache{seed}", "--seed", seed])
            start = time.time()
            run([sys.executable, "train.py", "--cache", work / f"cache{seed}", "--init-from", BUNDLED_MODEL,
                 "--out", work / f"model{seed}", "--seed", seed, *args.train_args])
            seconds = time.time() - start
            after, _ = predict_rows(args.photos, work / f"model{seed}" / "model.keras", work, f"after{seed}")
            metrics = json.loads((work / f"model{seed}" / "metrics.json").read_text())
            dataset = metrics["per_source"][str(args.dataset.resolve())]["accuracy"]
            lost = []
            print(f"seed {seed}: fine-tuned in {seconds:.0f} s, dataset test accuracy {dataset:.4f}")
            for path, row in before.items():
                new = after[path]
                marked = Path(path).name in {p.name for p in photos}
                print(f"  {Path(path).name:34s} {row['verdict']:9s} {row['cracked_tiles']:>3s}/{row['tiles']:<3s} "
                      f"{row['crack_probability']} -> {new['verdict']:9s} {new['cracked_tiles']:>3s} "
                      f"{new['crack_probability']}{'  (marked)' if marked else ''}")
                if row["verdict"] == "crack" and new["verdict"] != "crack" and not marked:
                    lost.append(f"{Path(path).name} ({new['verdict']})")
            print(f"  no longer crack, not marked: {', '.join(lost) or 'none'}", flush=True)


if __name__ == "__main__":
    main()
