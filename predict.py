"""Classify images with a model trained by train.py: a verdict per image, and a figure to look at.

    python predict.py photo.jpg                        # verdict, and predictions/photo_prediction.png
    python predict.py site/ --report site_report       # site_report/index.html: one page to hand over
    python predict.py folder/ more.jpg --csv results.csv --tiles-csv tiles.csv
    python predict.py photo.jpg --model models/model.keras      # your model instead of the bundled one
    python predict.py site/ --save-tiles site_tiles    # every tile as an image, to sort and train on
    python predict.py site/ --model models_site/model.keras --compare-with pretrained/crack_cnn.keras

The bundled crack model says crack, no crack or uncertain (with the reason); a model trained on
other classes names the class, or says uncertain. The model runs in the LiteRT runtime when it
is installed and the model has its .tflite copy beside it (well under a second for a photo,
without importing TensorFlow); otherwise TensorFlow runs the .keras file.

The crack model classifies an image of about a patch whole and cuts a larger photo into tiles of
the training patches' scale, its figure mapping the crack probability; any other model classifies
an image whole, as data_prep read it, unless --tile asks for tiles (support/photos.py). Folders are
searched recursively; outputs mirror their sub-folders and say inside which input they show. Named
files get a figure each, images found in folders only with --figures or --report; the exit status
is 1 when any input could not be read. --compare-with classifies every input with an older model
too (the one fine-tuned from, say) and lists each whose verdict changed, lost cracks first.
"""

import argparse
import dataclasses
import errno
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from support import atomic_files, figures, photos, results, run_report, runner, verdicts
from support.errors import InputError
from support.images import IMAGE_EXTENSIONS, ImageError, fit_to_model, list_images, read_ahead
from support.model_files import PATCH_SIZE, choose_backend, load_classifier
from support.safe_text import printable

BUNDLED_MODEL = Path(__file__).resolve().parent / "pretrained" / "crack_cnn.keras"  # trained on all Özgenel
FIGURES = Path("predictions")  # never beside the inputs: a figure must not become an input
BATCH_SIZE = 128  # images or tiles per model call
READ_AHEAD_PIXELS = 50_000_000  # decoded ahead of the model: four 12 MP photos, or a batch of patches


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL,
                        help="model from train.py, .keras or .tflite (default: pretrained/crack_cnn.keras)")
    parser.add_argument("--backend", choices=["auto", "litert", "tensorflow"], default="auto",
                        help="what runs the model: the LiteRT runtime (quick to start; needs the .tflite "
                             "beside the .keras) or TensorFlow (default: auto, LiteRT when it can)")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for the figures (default: predictions)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write DIR/index.html, a page of every input with its verdict and figure")
    parser.add_argument("--compare-with", type=Path, metavar="OLD_MODEL",
                        help="also classify with this model (e.g. the one --model was fine-tuned from) and list "
                             "every input whose verdict changed, crack -> no crack first")
    for field in run_report.HEADER_FIELDS:  # the report's header; --report-info gives them from a file
        parser.add_argument(f"--{field}", help=f"the report's {field} (with --report)")
    parser.add_argument("--report-info", type=Path, metavar="FILE", help="those fields as JSON or 'field: value' lines")
    parser.add_argument("--final-copy", type=Path, metavar="NOTES_CSV",
                        help="with --report: write the inspector's verdicts and notes from this notes.csv (the "
                             "report's Save notes.csv) into the new report, a final copy any browser shows as signed")
    parser.add_argument("--csv", type=Path, help="write one row per input: path, verdict, probabilities, error")
    parser.add_argument("--tiles-csv", type=Path, help="write one row per tile of each photo")
    parser.add_argument("--threshold", type=float,
                        help="two-class models: probability of the second class from which an image is "
                             "called it (default: the model's)")
    parser.add_argument("--map-class", metavar="CLASS",
                        help="the class whose probability a photo's figure maps (default: Positive for the "
                             "crack model, else the verdict's class)")
    parser.add_argument("--tile", type=int,
                        help=f"tile side in photo pixels, about 32 times a crack's width, at least 64 (default: the "
                             f"crack model's, {PATCH_SIZE} for the bundled one; 0: images whole, as for other classes)")
    parser.add_argument("--stride", type=int, help="step between tiles in photo pixels (default: half a tile; at "
                                                   "least an eighth of one: denser tiles only repeat each other)")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction,
                        help="figure for every image (default: only for files named on the command line)")
    parser.add_argument("--save-tiles", type=Path, metavar="DIR",
                        help="save every tile classified, at the photo's resolution, in a folder per predicted "
                             "class, named as data_prep reads them (Negative/, Positive/ for the crack model): move "
                             "the wrong ones, then data_prep.py --src dataset/ --src DIR")
    parser.add_argument("--show", action="store_true", help="also show each figure in a window")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="images per model call (default: 128)")
    args = parser.parse_args(argv)
    if args.tile not in (None, 0) and args.tile < photos.MIN_TILE:
        parser.error(f"--tile must be 0 (images whole) or at least {photos.MIN_TILE}")
    if (args.stride is not None and args.stride < 1) or args.batch_size < 1:
        parser.error("--stride and --batch-size must be at least 1")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        parser.error("--threshold must be a probability from 0 to 1")
    args.header = run_report.read_header(args)  # a bad --report-info stops the run here, not after the photos
    args.final_notes = run_report.read_final_copy(args)  # and a bad --final-copy
    return args


def find_inputs(inputs):
    """[(path, named, folder it was found in or None)] for every image, and {path: reason} for
    every input that cannot be classified (missing, not an image file)."""
    found, failures = [], {}
    for path in inputs:
        if path.is_dir():
            others = []
            images = list_images(path, others)
            if not images:
                failures[path] = f"no images in this folder (reads {', '.join(sorted(IMAGE_EXTENSIONS))})"
            found += [(image, False, path) for image in images]
            failures |= {other: f"not an image file of a kind read here ({other.suffix or 'no extension'})"
                         for other in others}
        elif path.exists() or path.is_symlink():  # decode_image names what is not a regular file (a broken link)
            found.append((path, True, None))
        else:
            failures[path] = "no such file or folder"
    for path, reason in failures.items():
        error(f"{path}: {reason}")
    if not found:
        raise InputError(f"no images to classify (reads {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return found, failures


def error(message):
    tqdm.write(f"error: {printable(message)}", file=sys.stderr)


def load_model(args, path):
    """The results.LoadedModel of --model or --compare-with, its line printed; --model's also sets
    args.tile and args.stride (the model's tile unless --tile is given)."""
    model_path, backend, note = choose_backend(path, args.backend)
    classify, info = load_classifier(model_path, backend)
    rule = verdicts.verdict_rule(info, args.threshold)
    if path == args.model:  # a crack model's tiles, unless --tile says otherwise; another's images whole
        args.tile = rule.tile if args.tile is None else args.tile
        args.stride = args.stride or max(1, args.tile // 2)
        check_stride(args.tile, args.stride)
    names = rule.class_names
    if path == args.model:
        args.class_names = names
        if args.save_tiles:  # a class name from a model becomes a folder: never ../x or /x
            figures.check_folder_names(names, "--save-tiles")
    elif names != args.class_names:  # every verdict would seem "changed"
        raise InputError(f"--compare-with {path} tells {', '.join(names)} apart, --model "
                         f"{', '.join(args.class_names)}: compare two models of the same classes")
    if args.map_class is not None and args.map_class not in names:
        raise InputError(f"--map-class {args.map_class}: the model's classes are {', '.join(names)}")
    which = ("the bundled model" if path.resolve() == BUNDLED_MODEL else
             "--compare-with" if path == args.compare_with else "--model")
    bundled = model_path.parent == BUNDLED_MODEL.parent  # shown relative: the README's line has no machine path
    shown = model_path.relative_to(BUNDLED_MODEL.parent.parent) if bundled else model_path
    tiles = (f"; tiles of {args.tile} px" if args.tile else "; images whole") if path == args.model else ""
    line = (f"{'compared with' if path == args.compare_with else 'model'}: {shown} ({which}, run by "
            f"{'LiteRT' if backend == 'litert' else 'TensorFlow'}; {info['image_size']}x{info['image_size']} px "
            f"input, {rule.model_line}, sure from {rule.sure_threshold}{tiles})")
    print(line, *filter(None, [note]), sep="\n")
    return results.LoadedModel(classify, info, rule, line)


def check_stride(tile, stride):
    """Refuse tiles denser than every eighth of a tile (photos.MIN_STEP: --stride 1 would take hours a photo)."""
    densest = photos.densest_stride(tile)
    if tile and stride < densest:
        raise InputError(f"--stride {stride} is under an eighth of the {tile} px tile: give {densest} or more (tiles "
                         f"grow with the square of tile / stride: at --stride 1 a 12 MP photo is 10 million tiles, hours)")


def classify_images(items, model, args, older=None):
    """A results.Classified for each input, in order.

    Images classified whole go in batches, holding no more pixels than are read ahead; a photo is cut
    into tiles (photos.classify_photo). With `older` (--compare-with's model), each result also holds
    the older model's (Result.before): the same batches, the same tiles.
    """
    pending = []  # (Classified, its image fitted to the model)

    def classify_pending():
        if pending:
            found = photos.patch_results(np.stack([x for _, x in pending]), model.classify, model.rule)
            if older:
                batch = np.stack([fit_to_model(item.image, older.info["image_size"]) for item, _ in pending])
                olds = photos.patch_results(batch, older.classify, older.rule)
                found = [dataclasses.replace(result, before=before) for result, before in zip(found, olds)]
            for (item, _), result in zip(pending, found):
                item.result = result
                yield item
            pending.clear()

    for (path, named, _), image in read_ahead(items, READ_AHEAD_PIXELS, 2 * args.batch_size):
        if isinstance(image, ImageError):
            yield from classify_pending()  # first: results come in the order given
            yield results.Classified(path, named, error=str(image))
        elif not photos.is_photo(image, args.tile):
            pending.append((results.Classified(path, named, image), fit_to_model(image, model.info["image_size"])))
            held = sum(item.image.size // 3 for item, _ in pending)  # pixels: large images classified whole too
            if len(pending) >= args.batch_size or held >= READ_AHEAD_PIXELS:
                yield from classify_pending()
        else:
            yield from classify_pending()
            yield classify_tiles(results.Classified(path, named, image), model, args, older)
    yield from classify_pending()


def classify_tiles(item, model, args, older=None):
    """A photo cut into tiles and classified (by the older model too, on the same tiles), or why it
    could not be."""
    tile, stride = photos.tiling(item.image, args.tile, args.stride)  # a JPEG read reduced: tiles too
    try:
        item.tiles = photos.classify_photo(item.image, model.classify, model.info["image_size"], tile, stride,
                                           args.batch_size, model.rule)
        item.result = item.tiles.result
        if older:
            item.before_tiles = photos.classify_photo(item.image, older.classify, older.info["image_size"], tile,
                                                      stride, args.batch_size, older.rule)
            item.result = dataclasses.replace(item.result, before=item.before_tiles.result)
    except ImageError as failure:  # OpenCV cannot scale it to the model's tiles
        return results.Classified(item.path, item.named, error=str(failure))
    return item


def main(argv=None):
    args = parse_args(argv)
    images, failures = find_inputs(args.inputs)
    results.check_outputs(args)
    model = load_model(args, args.model)  # after checking the inputs: TensorFlow is slow to start
    older = args.compare_with and load_model(args, args.compare_with)
    run_report.check_final_copy(args, rule=model.rule)
    stems, rule = figures.output_stems(images), model.rule

    done, report_rows, start = [], {}, time.time()  # done: (path, result, figure) of each input, repeats too
    with atomic_files.csv_lines(args.tiles_csv, rule.tile_columns()) as tiles_csv, \
            tqdm(total=len(images), unit="image", disable=None, leave=False) as progress:
        for item in classify_images(images, model, args, older):
            progress.update()
            if item.error:
                error(f"{item.path}: {item.error}")
                failures[item.path] = item.error
                continue
            tqdm.write(results.describe(item.path, item.result))
            try:
                figure, layout = figures.save_outputs(item, rule, args, stems[item.path], error)
                if args.report:
                    report_rows[item.path] = run_report.report_row(item, figure, layout, stems[item.path], args, rule)
            except OSError as failure:  # a name too long for its figure's: that image's error, not the run's
                if failure.errno != errno.ENAMETOOLONG:
                    raise
                failures[item.path] = "file name too long to name its figure or tiles after it"
                error(f"{item.path}: {failures[item.path]}")
                item = None  # as below: its image goes before the next photo is decoded
                continue
            done.append((item.path, item.result, figure))
            if item.tiles and tiles_csv:
                tiles_csv.writerows(results.tile_rows(item.path, item.tiles, rule))
            del item  # else its image is held while the next photo is decoded and classified: two in memory

    in_order = dict.fromkeys([path for path, _, _ in images] + list(failures))  # each input once
    if args.csv:
        table = results.csv_rows(in_order, done, failures, rule, bool(older))
        atomic_files.write_csv(args.csv, rule.csv_columns(bool(older)), table)
    if args.report:
        lines = [model.line] + ([older.line] if older else [])
        page = run_report.write_run_report(args, in_order, lines, model.info, report_rows, failures, rule)
        print(f"report: {page} ({len(in_order)} inputs; open it in a browser, or zip {args.report}/ and send it)")
    results.print_summary(done, failures, time.time() - start, rule, args, images)
    return 1 if failures else 0


def interrupted():
    """The line after a Ctrl-C: which of the CSVs and the report were written whole, as it is then."""
    written = [str(path) for path in atomic_files.finished() if path.suffix == ".csv" or path.name == "index.html"]
    return (f"{', '.join(written)} written whole" if written else "no CSV or report was written") + \
        "; figures and tiles already saved are complete"


if __name__ == "__main__":
    runner.run_script(main, interrupted)
