"""predict.py's results: the records it passes along, a line per input, a CSV row per input and per
tile, the run's last lines, and the verdicts that changed between two models (--compare-with). Probabilities are cut, never
rounded (wording.cut): 5 decimals in the CSVs, whose first 3 are what the terminal, the figures and
the report show. Where predict may write them is checked before any work: never over a file of the
user's, an input, a model, a report, or inside an input folder.
"""

import collections
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from support.errors import InputError
from support.model_files import find_model
from support.output_folders import check_output_folder, lock
from support.photos import PhotoTiles
from support.safe_text import printable
from support.verdicts import Result, VerdictRule, change_rank, is_predict_header, verdict_change
from support.wording import cut


@dataclass(frozen=True)
class LoadedModel:
    """A model as predict.py runs it: what classifies a uint8 batch, its info, its kind, and the line
    that says which model runs and how."""
    classify: Callable
    info: dict
    rule: VerdictRule
    line: str


@dataclass
class Classified:
    """An input as predict.py classified it: its image and result, or why it could not be."""
    path: Path
    named: bool  # named on the command line, not found in a folder: it gets a figure
    image: np.ndarray = None
    result: Result = None  # with --compare-with, the older model's in it (Result.before)
    tiles: PhotoTiles = None  # an image cut into tiles; None for one classified whole
    before_tiles: PhotoTiles = None  # with --compare-with, the same tiles as the older model saw them
    error: str = ""


def describe(path, result):
    """The terminal's line for an input: its verdict, why, and what the older model said if it differs."""
    main_measure, more = result.summary
    was = verdict_change(result) and f"was {result.before.verdict} at {cut(result.before.probability)}"
    details = "; ".join(filter(None, [result.reason, main_measure, *more, was]))
    return f"{printable(path)}: {result.verdict} ({details})"


def csv_row(path, result, figure, failure, rule, compared=False):
    """The --csv row of an input: its result, or the reason it failed."""
    if result is None:
        return [str(path) if c == "path" else "error" if c == "verdict" else failure if c == "error" else ""
                for c in rule.csv_columns(compared)]
    before = result.before
    before = [before.verdict, cut(before.probability, 5), verdict_change(result)] if before else []
    return [str(path), *rule.csv_values(result), *before, "" if figure is None else str(figure), ""]


def csv_rows(inputs, done, failures, rule, compared=False):
    """The --csv table: a row per input of `inputs` (predict: the images in the order found, then the
    paths that are no image), each once. done: [(path, result, figure)]."""
    finished = {path: (result, figure) for path, result, figure in done}
    return [csv_row(path, *finished.get(path, (None, None)), failures.get(path), rule, compared) for path in inputs]


def tile_rows(path, tiles, rule):
    """The --tiles-csv rows of a photo (photos.PhotoTiles): each tile's box and probabilities."""
    return [(str(path), x, y, s, s, *rule.tile_values(p, q)) for (x, y, s), p, q in zip(tiles.grid, tiles.counted,
                                                                                         tiles.seen)]


def print_summary(done, failures, seconds, rule, args, images):
    """The run's last lines: how many images in how long and their verdicts, the images found in folders
    that got no figure, and (--compare-with) the verdicts that changed. done: [(path, result, figure)];
    images: predict's inputs found, [(path, named, folder)]."""
    counts = collections.Counter(result.verdict for _, result, _ in done)
    count = len(done)
    if count > 1:
        rate = count / max(seconds, 1e-9)
        print(f"{count} images classified in {seconds:.1f} s ({rate:.{0 if rate >= 10 else 2}f} images/s): ",
              ", ".join(f"{counts[v]} {v}" for v in rule.verdicts) + (f", {len(failures)} failed" if failures else ""),
              sep="")
    in_folders = sum(not named for _, named, _ in images)
    if in_folders and args.figures is None and not args.report:
        print(f"no figures for the {in_folders} images found in folders: --figures draws them, "
              "--report makes a page of them all")
    if args.compare_with:
        print_changes({path: result for path, result, _ in done})


def print_changes(results):
    """Every input whose verdict changed from the older model's, lost cracks first: none goes without a
    line. results: {path: Result with its before}."""
    changed = sorted(((path, r) for path, r in results.items() if verdict_change(r)),
                     key=lambda i: change_rank(verdict_change(i[1])))
    if not changed:
        return print(f"no verdict changed on the {len(results)} images (--model against --compare-with)")
    print(f"verdicts changed on {len(changed)} of {len(results)} images (--model against --compare-with), "
          "lost cracks first:")
    for path, result in changed:
        print(f"  {verdict_change(result)}: {printable(path)} ({cut(result.before.probability)} -> "
              f"{cut(result.probability)})")


def check_outputs(args):
    """Refuse predict's outputs of the wrong kind, outputs over inputs, the models or a report, and outputs
    where they would be read back as inputs; then hold the output folders against a second run at once.
    args.model and args.compare_with become the files they name (a train.py --out: its model.keras)."""
    args.model = find_model(args.model)
    args.compare_with = args.compare_with and find_model(args.compare_with)
    models = {args.model: "the model", args.compare_with: "the --compare-with model"}
    taken = {path: "an input" for path in args.inputs} | {model.with_suffix(suffix): name for model, name in
                                                          models.items() if model for suffix in (".keras", ".tflite")}
    check_output_file("--csv", args.csv, taken, is_predict_header)
    check_output_file("--tiles-csv", args.tiles_csv, taken | {args.csv: "the --csv file"}, is_predict_header)
    check_output_folder("--out", args.out)
    figures_drawn = args.figures or (args.figures is None and any(path.is_file() for path in args.inputs))
    check_output_folders(args.inputs, {"--out": args.out if figures_drawn and not args.report else None,
                                       "--save-tiles": args.save_tiles, "--report": args.report})


def check_output_file(option, path, taken, ours):
    """Refuse to write `path` over a file of `taken` ({path: what it is}, e.g. an input or the model) or
    over any file that is not empty and whose header `ours(header)` does not know for its own (predict:
    verdicts.is_predict_header, the exact columns it writes)."""
    if path is None:
        return
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file name")
    for other, what in taken.items():
        if other is not None and path.resolve() == other.resolve():
            raise InputError(f"{option} {path} is {what}: it would be overwritten; give another file name")
    if path.exists() or path.is_symlink():
        if not path.is_file():  # a FIFO: opening it would wait for a reader
            raise InputError(f"{option} {path} is not a regular file; give another file name")
        if not replaceable(path, ours):
            raise InputError(f"{option} {path} exists and is not a CSV that predict wrote; give another file name")


def replaceable(path, ours):
    """Whether a file is empty, or a CSV whose header `ours` knows for exactly one it writes."""
    return path.stat().st_size == 0 or ours(csv_header(path))


def csv_header(path):
    """The cells of a CSV file's first line ([] when it is blank, or longer than any header)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        line = f.readline(65536)
    if not line.endswith("\n"):
        return []
    return next(csv.reader([line.rstrip("\r\n")]), [])


def check_output_folders(inputs, folders):
    """Refuse predict's output folders ({option: folder or None}) of the wrong kind, a report folder that
    holds a report already (two runs' rows and figures would mix), and folders inside an input folder
    (their images would be read back); then lock them against a second run at once."""
    for option, folder in folders.items():
        check_output_folder(option, folder)
    report = folders.get("--report")
    if report and (report / "index.html").exists():
        raise InputError(f"--report {report} already holds a report (index.html); choose another folder, "
                         "or remove it to replace that report")
    for path in inputs:
        source = path if path.is_dir() else path.parent  # a named photo's folder is an input folder too
        for option, out in folders.items():
            if option != "--out" and out and out.resolve().is_relative_to(source.resolve()):
                raise InputError(f"{option} {out} is inside the input folder {source}; choose another")
    for folder in folders.values():
        if folder:
            lock(folder)
