"""How a model does on images unlike its training data: labelled patches and photos of other surfaces.

    python benchmarks/bench_other_surfaces.py --patches sdnet2018/ --photos my_photos/
    python benchmarks/bench_other_surfaces.py --patches site/ --model models/model.keras

It runs predict.py on them as a user would (--csv) and prints, for --patches (a folder with
Positive/ and Negative/ sub-folders, like the dataset's), the accuracy at the model's threshold,
crack recall, no-crack recall and how many images of each class got each verdict; for --photos,
each photo's verdict, how many of its tiles fired and how many fired only on straight lines.
The figures for SDNET2018 and the 16 real photos in docs/EXPERIMENTS.md were measured with it.
"""

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import REPO, machine

from data_prep import find_class_folders
from predict import BUNDLED_MODEL
from support import runner
from support.errors import InputError
from support.evaluation import test_report
from support.images import list_images
from support.model_files import CRACK_CLASSES, read_model_info

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


def report_patches(patches, model, threshold):
    folders = find_class_folders(patches, CRACK_CLASSES)  # Positive/ and Negative/, any case, as data_prep finds them
    labels = {str(path): label for label, name in enumerate(CRACK_CLASSES) for path in list_images(folders[name])}
    rows = [row for row in predict_rows(folders.values(), model) if row["path"] in labels]
    if not rows:
        raise SystemExit(f"error: no images in {', '.join(map(str, folders.values()))}")
    y_true = np.array([labels[row["path"]] for row in rows])
    crack = np.array([float(row["crack_probability"]) for row in rows])
    report = test_report(y_true, np.column_stack([1 - crack, crack]), CRACK_CLASSES, threshold)
    negative, positive = (report["per_class"][name] for name in CRACK_CLASSES)
    counts = ", ".join(f"{row['support']} {name}" for name, row in report["per_class"].items())
    print(f"patches: {patches}/ ({counts})")
    print(f"  at the threshold {threshold}: accuracy {report['accuracy']:.1%}, crack recall "
          f"{positive['recall']:.1%}, no-crack recall {negative['recall']:.1%}")
    print(f"  {'verdicts':<10}" + "".join(f"{v:>11}" for v in VERDICTS))
    for label, name in enumerate(CRACK_CLASSES):
        verdicts = [row["verdict"] for row, y in zip(rows, y_true) if y == label]
        print(f"  {name:<10}" + "".join(f"{verdicts.count(verdict):>11}" for verdict in VERDICTS))


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
    except (OSError, InputError) as exc:
        raise SystemExit(f"error: cannot read {args.model}: {exc}")
    print(f"{machine()}\nmodel: {args.model}\n")
    if args.patches:
        report_patches(args.patches.resolve(), args.model, threshold)
    if args.photos:
        report_photos(args.photos.resolve(), args.model)


if __name__ == "__main__":
    runner.run_script(main, "nothing more was measured")
