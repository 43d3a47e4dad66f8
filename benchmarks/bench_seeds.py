"""Run the whole default training for several seeds and print the spread that one run hides.

    python benchmarks/bench_seeds.py --src ../data/ozgenel                   # seeds 42, 7, 1234
    python benchmarks/bench_seeds.py --src dataset --seeds 1 2 3 4 5 --work runs/
    python benchmarks/bench_seeds.py --src dataset -- --epochs 30 --no-augment   # compare a setting

For every seed S it runs, as a user would, `data_prep.py --src SRC --seed S` (another split of the
images) and `train.py --seed S` (other initial weights, batch order and augmentation); options
after `--` go to train.py. It prints, per seed and as median/min/max: test accuracy, crack recall,
epochs, training seconds and the seconds until the validation accuracy first reached 99.5% (time
to accuracy). Each seed's cache, model, reports and log stay in --work; a cache already there is
reused, so comparing settings on the same splits costs only the training.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine

COLUMNS = ["test accuracy", "crack recall", "epochs", "training s", "s to 99.5% val"]


def run_logged(command, log):
    """Run a script of the project with its output appended to `log`; exits if it fails."""
    with open(log, "a") as f:
        f.write(f"$ {' '.join(map(str, command))}\n")
        f.flush()
        status = subprocess.call([sys.executable, *map(str, command)], stdout=f, stderr=subprocess.STDOUT)
    if status != 0:
        raise SystemExit(f"error: {command[0]} failed (status {status}); see {log}")


def run_seed(src, seed, work, train_args):
    """One seed's data_prep + train; returns the figures of its metrics.json."""
    cache, out, log = work / f"cache_{seed}", work / f"model_{seed}", work / f"seed_{seed}.log"
    if not (cache / "meta.json").is_file():
        run_logged([REPO / "data_prep.py", "--src", src, "--seed", seed, "--out", cache], log)
    run_logged([REPO / "train.py", "--cache", cache, "--seed", seed, "--out", out, *train_args], log)
    metrics = json.loads((out / "metrics.json").read_text())
    return [metrics["accuracy"], metrics["per_class"]["Positive"]["recall"], metrics["epochs_run"],
            metrics["training_seconds"], metrics["seconds_to_val_accuracy_0.995"]]


def show(name, row):
    cells = [f"{v:.2%}" if i < 2 else "never" if v is None else f"{v:.0f}" for i, v in enumerate(row)]
    print(f"{name:>8}" + "".join(f"{c:>16}" for c in cells), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="the data set folder (Positive/, Negative/)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 1234])
    parser.add_argument("--work", type=Path, help="folder for caches, models and logs (default: a new temporary one)")
    args, train_args = parser.parse_known_args()
    if train_args[:1] == ["--"]:
        train_args = train_args[1:]
    work = args.work or Path(tempfile.mkdtemp(prefix="crack-seeds-"))
    work.mkdir(parents=True, exist_ok=True)

    print(f"{machine()}\n{len(args.seeds)} seeds of data_prep.py --src {args.src} and train.py "
          f"{' '.join(train_args)}; caches, models and logs in {work}/\n")
    print(f"{'seed':>8}" + "".join(f"{c:>16}" for c in COLUMNS), flush=True)
    rows, start = [], time.time()
    for seed in args.seeds:
        rows.append(run_seed(args.src, seed, work, train_args))
        show(str(seed), rows[-1])
    for name, pick in (("median", statistics.median), ("min", min), ("max", max)):
        columns = [[row[i] for row in rows] for i in range(len(COLUMNS))]
        show(name, [None if None in c else pick(c) for c in columns])
    print(f"\n{time.time() - start:.0f} s in all")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted")
