"""Classify images with a model trained by train.py: a verdict per image, and a figure to look at.

    python predict.py photo.jpg                        # verdict, and predictions/photo_prediction.png
    python predict.py wall.jpg --out results/ --show   # figure in results/, also shown on screen
    python predict.py folder/ more.jpg --csv results.csv --tiles-csv tiles.csv
    python predict.py photo.jpg --model models/model.keras   # your model instead of the bundled one
    python predict.py site/ --save-tiles site_tiles    # every tile as an image, to sort and train on

The bundled crack model says crack, no crack or uncertain (with the reason); a model trained on
other classes names the class, or says uncertain. The model runs in the LiteRT runtime when it
is installed and the model has its .tflite copy beside it (well under a second for a photo,
without importing TensorFlow); otherwise TensorFlow runs the .keras file.

An image up to about a patch in size is classified whole; a larger photo is cut into tiles of
the training patches' scale, and its figure maps a class's probability over the photo
(support/photos.py). Folders are searched recursively and classified in batches; explicitly
named files get a figure each, images found in folders only with --figures. The exit status is
1 when any input could not be read.
"""

import argparse
import collections
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from support import figures, photos, safe_io
from support.images import ImageError, decode_image, fit_to_model, list_images, smoother_than
from support.model_files import choose_backend, load_classifier

BUNDLED_MODEL = Path(__file__).resolve().parent / "pretrained" / "crack_cnn.keras"  # trained on the full data set
FIGURES = Path("predictions")  # never beside the inputs: a figure must not become an input
BATCH_SIZE = 128  # images or tiles per model call
PATCH_SIZE = 227  # the dataset's patch side in photo pixels: the default tile


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL,
                        help="model from train.py, .keras or .tflite (default: the bundled pretrained/crack_cnn.keras)")
    parser.add_argument("--backend", choices=["auto", "litert", "tensorflow"], default="auto",
                        help="what runs the model: the LiteRT runtime (quick to start; needs the .tflite beside "
                             "the .keras) or TensorFlow (default: auto, LiteRT when it can)")
    parser.add_argument("--out", type=Path, default=FIGURES, help=f"folder for the figures (default: {FIGURES})")
    parser.add_argument("--csv", type=Path, help="write one row per image: path, verdict, probabilities, ..., error")
    parser.add_argument("--tiles-csv", type=Path, help="write one row per tile of each photo")
    parser.add_argument("--threshold", type=float,
                        help="two-class models: probability of the second class from which an image is called it "
                             "(default: the model's)")
    parser.add_argument("--map-class", metavar="CLASS",
                        help="the class whose probability a photo's figure maps (default: crack, or the verdict's class)")
    parser.add_argument("--tile", type=int, default=PATCH_SIZE,
                        help=f"tile side in photo pixels (default: {PATCH_SIZE}, the dataset's patch size); "
                             "0 resizes every image whole")
    parser.add_argument("--stride", type=int, help="step between tiles in photo pixels (default: half a tile)")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction,
                        help="figure for every image (default: only for files named on the command line)")
    parser.add_argument("--save-tiles", type=Path, metavar="DIR",
                        help="save every tile (or whole image) classified, at the photo's resolution, into a "
                             "folder per predicted class (crack/ and no_crack/ for the crack model): move the "
                             "wrong ones into your class folders to teach the model your surface")
    parser.add_argument("--show", action="store_true", help="also show each figure in a window")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"images per model call (default: {BATCH_SIZE})")
    args = parser.parse_args(argv)
    if args.tile < 0 or (args.stride is not None and args.stride < 1) or args.batch_size < 1:
        parser.error("--tile must be 0 or more, --stride and --batch-size at least 1")
    args.stride = args.stride or max(1, args.tile // 2)
    return args


def error(message):
    print(f"error: {message}", file=sys.stderr)


def find_images(inputs):
    """[(path, named_explicitly)] for every input file and every image below input folders, and
    {path: reason} for the inputs that are neither."""
    found, failures = [], {}
    for path in inputs:
        if path.is_dir():
            images = list_images(path)
            if not images:
                failures[path] = "no images in this folder"
            found += [(p, False) for p in images]
        elif path.is_file():
            found.append((path, True))
        else:
            failures[path] = "no such file or folder"
    for path, reason in failures.items():
        error(f"{path}: {reason}")
    return found, failures


def check_outputs(args):
    """Refuse outputs of the wrong kind, and tiles saved where they would be read back as inputs."""
    if not args.model.is_file():
        raise SystemExit(f"error: model file {args.model} does not exist" + (
            "" if args.model.suffix in (".keras", ".tflite") else " (expected a .keras or .tflite file from train.py)"))
    for option, path in (("--csv", args.csv), ("--tiles-csv", args.tiles_csv)):
        if path is not None and path.is_dir():
            raise SystemExit(f"error: {option} {path} is a folder; give a file name")
    safe_io.check_output_folder("--out", args.out)
    safe_io.check_output_folder("--save-tiles", args.save_tiles)
    for folder in args.inputs:
        if args.save_tiles and folder.is_dir() and args.save_tiles.resolve().is_relative_to(folder.resolve()):
            raise SystemExit(f"error: --save-tiles {args.save_tiles} is inside the input folder {folder}; choose another")


def load_model(args):
    """(classify, verdict rule) for --model, and a line saying which model runs and how."""
    model_path, backend, note = choose_backend(args.model, args.backend)
    classify, info = load_classifier(model_path, backend)
    rule = photos.verdict_rule(info, args.threshold)
    if args.map_class is not None and args.map_class not in rule["class_names"]:
        raise SystemExit(f"error: --map-class {args.map_class}: the model's classes are {', '.join(rule['class_names'])}")
    which = "the bundled model" if args.model.resolve() == BUNDLED_MODEL else "--model"
    limits = (f"threshold {rule['threshold']}, sure from {rule['sure_threshold']}" if rule["crack_model"]
              else f"classes {', '.join(rule['class_names'])}, sure from {rule['sure_threshold']}")
    print(f"model: {model_path} ({which}, run by {'LiteRT' if backend == 'litert' else 'TensorFlow'}; "
          f"{info['image_size']}x{info['image_size']} px input, {limits})")
    if note:
        print(note)
    return classify, info, rule


def read_images(items, ahead):
    """(path, named, RGB image or ImageError) for each item in order, decoded up to `ahead` items
    early on threads: OpenCV releases the GIL while decoding, so the next images decode while the
    model runs."""
    def read(item):
        try:
            return *item, decode_image(item[0])
        except ImageError as exc:
            return *item, exc

    with ThreadPoolExecutor(max(2, os.cpu_count() or 1)) as pool:
        queue = collections.deque()
        for item in items:
            queue.append(pool.submit(read, item))
            if len(queue) > ahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def classify_images(items, classify, info, rule, args):
    """(path, named, image or ImageError, result, photo tiles or None) for each input, in order.

    Patch-sized images are classified in batches; a photo is cut into tiles (photos.classify_photo).
    """
    size, pending = info["image_size"], []

    def classify_pending():
        if pending:
            batch = np.stack([x for *_, x in pending])
            smooth = smoother_than(batch, rule["smooth_below"]) if rule["crack_model"] else [None] * len(batch)
            for (path, named, image, _), probs, flat in zip(pending, classify(batch), smooth):
                yield path, named, image, photos.image_result(probs[None], np.array([flat]), rule), None
            pending.clear()

    for path, named, image in read_images(items, ahead=2 * args.batch_size):
        if not isinstance(image, ImageError) and not photos.is_photo(image, args.tile):
            pending.append((path, named, image, fit_to_model(image, size)))
            if len(pending) >= args.batch_size:
                yield from classify_pending()
            continue
        yield from classify_pending()  # first: results come in the order given
        if isinstance(image, ImageError):
            yield path, named, image, None, None
            continue
        result, *tiles = photos.classify_photo(image, classify, size, args.tile, args.stride, args.batch_size, rule)
        yield path, named, image, result, tiles
    yield from classify_pending()


def describe(path, result):
    main_measure, more = photos.summary(result)
    return f"{path}: {result['verdict']} ({'; '.join(filter(None, [result['reason'], main_measure, *more]))})"


def save_figure_and_tiles(path, named, image, result, tiles, rule, args, used_names):
    """The figure (for named files, or with --figures) and the saved tiles (with --save-tiles)."""
    names = rule["class_names"]
    if tiles:
        grid, counted, _, lines = tiles
        boxes = [(x, y, s, s) for x, y, s in grid]
    else:  # a patch: one tile, the whole image
        grid, counted, lines = None, np.array([list(result["probabilities"].values())]), ()
        boxes = [(0, 0, image.shape[1], image.shape[0])]
    if args.save_tiles:
        predicted = photos.predicted_classes(counted, rule)
        folders = [("crack" if p else "no_crack") if rule["crack_model"] else names[p] for p in predicted]
        shown = counted[:, 1] if rule["crack_model"] else counted[np.arange(len(counted)), predicted]  # in the names
        figures.save_tiles(image, boxes, folders, shown, args.save_tiles, path.stem)
    if args.figures or (args.figures is None and named):
        mapped = args.map_class or ("Positive" if rule["crack_model"] else result.get("class", names[0]))
        main_measure, more = photos.summary(result)
        banner = [f"{result['verdict'].upper()}: {main_measure}", *filter(None, [result["reason"]]), *more]
        label = "p(crack)" if rule["crack_model"] and mapped == "Positive" else f"p({mapped})"
        figure = figures.draw_figure(image, banner, figures.verdict_colour(result["verdict"], names), grid,
                                     counted[:, names.index(mapped)], rule["threshold"] if len(names) == 2 else 0.5,
                                     lines, label)
        figures.save_figure(figure, figure_path(path, args.out, used_names), args.show)


def figure_path(image_path, folder, used):
    path = folder / f"{image_path.stem}_prediction.png"
    n = 2
    while path in used:  # two inputs with the same name
        path, n = folder / f"{image_path.stem}_{n}_prediction.png", n + 1
    used.add(path)
    return path


def csv_columns(rule):
    if rule["crack_model"]:
        return ["path", "crack_probability", "verdict", "reason", "tiles", "cracked_tiles", "cracked_share",
                "straight_line_tiles", "error"]
    return ["path", "verdict", "reason", "probability", *(f"probability_{n}" for n in rule["class_names"]),
            "tiles", "share", "error"]


def csv_row(path, result, failure, rule):
    columns = csv_columns(rule)
    if failure is not None:
        return [str(path) if c == "path" else "error" if c == "verdict" else failure if c == "error" else "" for c in columns]
    if rule["crack_model"]:
        return [str(path), f"{result['probability']:.5f}", result["verdict"], result["reason"], result["tiles"],
                result["cracked_tiles"], f"{result['cracked_share']:.4f}", result["straight_line_tiles"], ""]
    return [str(path), result["verdict"], result["reason"], f"{result['probability']:.5f}",
            *(f"{p:.5f}" for p in result["probabilities"].values()), result["tiles"], f"{result['share']:.4f}", ""]


def tile_rows(path, tiles, rule):
    grid, counted, seen, _ = tiles
    boxes = [(x, y, s, s) for x, y, s in grid]
    if rule["crack_model"]:
        return [(str(path), *box, f"{p[1]:.5f}", f"{q[1]:.5f}") for box, p, q in zip(boxes, counted, seen)]
    return [(str(path), *box, *(f"{v:.5f}" for v in p)) for box, p in zip(boxes, counted)]


def tile_columns(rule):
    extra = (["probability", "probability_with_straight_lines"] if rule["crack_model"]
             else [f"probability_{n}" for n in rule["class_names"]])
    return ["image", "x", "y", "width", "height", *extra]


def main(argv=None):
    args = parse_args(argv)
    images, failures = find_images(args.inputs)
    check_outputs(args)
    if not images:
        raise SystemExit("error: no images to classify")
    classify, info, rule = load_model(args)  # once the inputs are known to be usable: TensorFlow is slow to import

    results, tiles_found, used_names, start = {}, [], set(), time.time()
    for path, named, image, result, tiles in classify_images(images, classify, info, rule, args):
        if result is None:
            error(f"{path}: {image}")
            failures[path] = str(image)
            continue
        results[path] = result
        print(describe(path, result))
        save_figure_and_tiles(path, named, image, result, tiles, rule, args, used_names)
        if tiles:
            tiles_found += tile_rows(path, tiles, rule)

    if args.csv:
        in_order = dict.fromkeys([path for path, _ in images] + list(failures))  # each input once
        safe_io.write_csv(args.csv, csv_columns(rule),
                          [csv_row(path, results.get(path), failures.get(path), rule) for path in in_order])
    if args.tiles_csv:
        safe_io.write_csv(args.tiles_csv, tile_columns(rule), tiles_found)
    if len(results) > 1:
        seconds = time.time() - start
        counts = collections.Counter(r["verdict"] for r in results.values())
        verdicts = ["crack", "uncertain", "no crack"] if rule["crack_model"] else [*rule["class_names"], "uncertain"]
        print(f"{len(results)} images classified in {seconds:.1f} s ({len(results) / seconds:.0f} images/s): "
              + ", ".join(f"{counts[v]} {v}" for v in verdicts) + (f", {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    safe_io.run_script(main, "no CSV was written; figures already saved are complete")
