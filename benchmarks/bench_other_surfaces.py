"""How a model does on images unlike its training data: labelled patches and photos of other surfaces.

    python benchmarks/bench_other_surfaces.py --patches sdnet2018/ --photos my_photos/
    python benchmarks/bench_other_surfaces.py --patches site/ --model models/crack_cnn.keras

It runs predict.py on them as a user would (--csv) and prints, for --patches (a folder with
Positive/ and Negative/ sub-folders, like the dataset's), the accuracy at the model's threshold,
crack recall, no-crack recall and how many images of each class got each verdict; for --photos,
each photo's verdict, how many of its tiles fired and how many fired only on straight lines.
The README's figures for SDNET2018 and the 16 real photos were measured with it.
"""

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, machine

from data_prep import CLASS_NAMES
from model import read_model_info
from predict import BUNDLED_MODEL

VERDICTS = ["crack", "uncertain", "no crack"]


def predict_rows(inputs, model):
    """predict.py's --csv rows for the given files or folders."""
    with tempfile.TemporaryDirectory() as work:
        table = Path(work) / "predictions.csv"
        command = [sys.executable, str(REPO / "predict.py"), *map(str, inputs), "--model", str(model),
                   "--csv", str(table), "--no-figures"]
        result = subprocess.run(command, capture_output=True, text=True)
        if not table.is_file():
            raise SystemExit(f"error: predict.py failed:\n{result.stderr[-2000:]}")
        with open(table) as f:
            return list(csv.DictReader(f))


def label_of(path, patches):
    """The class a patch's folder names (Positive/... or Negative/..., any case), or None."""
    names = {name.lower(): name for name in CLASS_NAMES}
    return names.get(Path(path).relative_to(patches).parts[0].lower())


def report_patches(patches, model, threshold):
    rows = [row for row in predict_rows([patches], model) if row["verdict"] != "error"]
    labelled = [(label_of(row["path"], patches), float(row["crack_probability"]), row["verdict"]) for row in rows]
    labelled = [item for item in labelled if item[0] is not None]
    if not labelled:
        raise SystemExit(f"error: no images in {patches}/Positive or {patches}/Negative")
    by_class = {name: [(p, v) for label, p, v in labelled if label == name] for name in CLASS_NAMES}
    negative, positive = CLASS_NAMES
    correct = sum((p >= threshold) == (label == positive) for label, p, _ in labelled)
    recall = {name: sum((p >= threshold) == (name == positive) for p, _ in items) / max(len(items), 1)
              for name, items in by_class.items()}
    print(f"patches: {patches}/ ({', '.join(f'{len(v)} {k}' for k, v in by_class.items())})")
    print(f"  at the threshold {threshold}: accuracy {correct / len(labelled):.1%}, crack recall "
          f"{recall[positive]:.1%}, no-crack recall {recall[negative]:.1%}")
    print(f"  {'verdicts':<10}" + "".join(f"{v:>11}" for v in VERDICTS))
    for name, items in by_class.items():
        print(f"  {name:<10}" + "".join(f"{sum(v == verdict for _, v in items):>11}" for verdict in VERDICTS))


def report_photos(photos, model):
    rows = predict_rows([photos], model)
    print(f"\nphotos: {photos}/ ({len(rows)})")
    print(f"  {'photo':<36}{'verdict':<11}{'p(crack)':>9}{'tiles fired':>13}{'on lines':>10}")
    for row in sorted(rows, key=lambda r: r["path"]):
        if row["verdict"] == "error":
            print(f"  {Path(row['path']).name[:35]:<36}error: {row['error']}")
            continue
        fired = f"{int(row['cracked_tiles']) + int(row['straight_line_tiles'])} / {row['tiles']}"
        print(f"  {Path(row['path']).name[:35]:<36}{row['verdict']:<11}{float(row['crack_probability']):>9.3f}"
              f"{fired:>13}{row['straight_line_tiles']:>10}")
    counts = {verdict: sum(row["verdict"] == verdict for row in rows) for verdict in VERDICTS}
    print("  " + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patches", type=Path, help="folder with Positive/ and Negative/ images")
    parser.add_argument("--photos", type=Path, help="folder of photos")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="model (default: the bundled one)")
    args = parser.parse_args()
    if not args.patches and not args.photos:
        parser.error("give --patches, --photos or both")
    for folder in (args.patches, args.photos):
        if folder and not folder.is_dir():
            raise SystemExit(f"error: {folder} is not a folder")
    try:
        threshold = read_model_info(args.model)["threshold"]
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read {args.model}: {exc}")
    print(f"{machine()}\nmodel: {args.model}\n")
    if args.patches:
        report_patches(args.patches.resolve(), args.model, threshold)
    if args.photos:
        report_photos(args.photos.resolve(), args.model)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted")
