"""Classify images of concrete as crack / no crack with the model trained by train.py.

    python predict.py photo.jpg                        # verdict, and photo_prediction.png beside it
    python predict.py wall.jpg --out results/ --show   # figure in results/, also shown on screen
    python predict.py folder/ more.jpg --csv results.csv --tiles-csv tiles.csv

An image up to about a patch in size (either side under twice --tile) is resized to the model's
input and classified whole. A larger photo, such as a 12 MP phone picture, is cut into --tile px
tiles every --stride px: that is the scale the training patches were cut at, whereas shrinking
the whole photo would make a crack thinner than a pixel. The photo is a crack when any tile
is; its figure maps the crack probability over the photo and outlines the cracked tiles.

Folders are searched recursively and classified in batches; explicitly named files get a
figure each, images found in folders only with --figures. The exit status is 1 when any input
could not be read.
"""

import argparse
import collections
import csv
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from data_prep import PATCH_SIZE, ImageError, fit_to_model, list_images, read_scaled

TRAINED_MODEL = Path("models/crack_cnn.keras")  # where train.py writes by default
BUNDLED_MODEL = Path(__file__).resolve().parent / "pretrained" / "crack_cnn.keras"  # trained on the full data set
BATCH_SIZE = 128  # images or tiles per model call
FIGURE_MAX_SIDE = 1200  # photos are drawn at most this wide: readable on any screen, quick to write


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders")
    parser.add_argument("--model", type=Path,
                        help=f"trained model (default: {TRAINED_MODEL} if you trained one, else the bundled "
                             "pretrained/crack_cnn.keras)")
    parser.add_argument("--out", type=Path, help="folder for the figures (default: beside each image)")
    parser.add_argument("--csv", type=Path, help="write one row per image: path, probability, verdict, ...")
    parser.add_argument("--tiles-csv", type=Path, help="write one row per tile of each photo")
    parser.add_argument("--threshold", type=float, help="crack probability that makes a crack (default: model.py's)")
    parser.add_argument("--tile", type=int, default=PATCH_SIZE,
                        help=f"tile side in photo pixels (default: {PATCH_SIZE}, the dataset's patch size); "
                             "0 resizes every image whole")
    parser.add_argument("--stride", type=int, help="step between tiles in photo pixels (default: half a tile)")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction,
                        help="figure for every image (default: only for files named on the command line)")
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
    """(path, named_explicitly) for every input file and every image below input folders."""
    found, missing = [], 0
    for path in inputs:
        if path.is_dir():
            images = list_images(path)
            if not images:
                error(f"{path}: no images in this folder")
                missing += 1
            found += [(p, False) for p in images]
        elif path.is_file():
            found.append((path, True))
        else:
            error(f"{path}: no such file or folder")
            missing += 1
    return found, missing


def load_classifier(model_path):
    """(classify, input_size): classify maps a uint8 batch to crack probabilities."""
    from model import keras, tf  # model.py imports TensorFlow quietly

    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged or foreign file
        raise SystemExit(f"error: cannot load model {model_path}: {str(exc).splitlines()[0]}")
    size = model.input_shape[1]
    # One traced graph for every batch size: no re-tracing when the last batch is shorter.
    infer = tf.function(lambda x: model(x, training=False),
                        input_signature=[tf.TensorSpec((None, size, size, 3), tf.uint8)])
    return (lambda batch: infer(np.asarray(batch)).numpy().ravel()), size


def read_input(path, size, tile):
    """(image, shrink) for a path: data_prep's decoding, so a patch gets exactly its training pixels.

    The decoding scale is the one data_prep uses for a dataset patch (or for a tile, if --tile is
    smaller), so both a patch-sized image and each tile of a photo end up resized from the same
    resolution as the training data.
    """
    return read_scaled(path, size, min(tile, PATCH_SIZE) or PATCH_SIZE)


def read_ahead(function, items, ahead):
    """function(item) for each item in order, computed up to `ahead` items early on threads.

    OpenCV releases the GIL while decoding, so the next images decode while the model runs.
    """
    with ThreadPoolExecutor(max(2, os.cpu_count() or 1)) as pool:
        queue = collections.deque()
        for item in items:
            queue.append(pool.submit(function, item))
            if len(queue) > ahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


# ----------------------------------------------------------------------------------------------
# Photos: tiling


def is_photo(image, shrink, tile):
    """Much larger than a patch: either side at least twice the tile (in photo pixels)."""
    return tile > 0 and max(image.shape[:2]) * shrink >= 2 * tile


def tile_starts(length, tile, stride):
    """Tile offsets along one side, the last flush with the edge so every pixel is covered."""
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile_grid(image, shrink, tile, stride):
    """(x, y, side) of every tile in decoded-image pixels; square tiles, shrunk on a thin image."""
    height, width = image.shape[:2]
    side = min(max(1, round(tile / shrink)), height, width)
    step = max(1, round(stride / shrink))
    return [(x, y, side) for y in tile_starts(height, side, step) for x in tile_starts(width, side, step)]


def classify_tiles(image, grid, classify, size, batch_size):
    """Crack probability of each tile, cut and classified batch by batch (never all at once)."""
    probabilities = []
    for start in range(0, len(grid), batch_size):
        batch = [fit_to_model(image[y:y + s, x:x + s], size) for x, y, s in grid[start:start + batch_size]]
        probabilities.append(classify(np.stack(batch)))
    return np.concatenate(probabilities)


def classify_photo(image, shrink, classify, size, tile, stride, batch_size, threshold):
    """(result, tile grid, tile probabilities) for a photo: crack when any tile reaches the threshold."""
    grid = tile_grid(image, shrink, tile, stride)
    probabilities = classify_tiles(image, grid, classify, size, batch_size)
    cracked = probabilities >= threshold
    result = {"probability": float(probabilities.max()), "verdict": "crack" if cracked.any() else "no crack",
              "tiles": len(grid), "cracked_tiles": int(cracked.sum()),
              "cracked_share": cracked_share(image.shape, grid, cracked)}
    return result, grid, probabilities


def cracked_share(image_shape, grid, cracked):
    """Fraction of the photo covered by at least one cracked tile."""
    covered = np.zeros(image_shape[:2], bool)
    for (x, y, s), flag in zip(grid, cracked):
        if flag:
            covered[y:y + s, x:x + s] = True
    return float(covered.mean())


# ----------------------------------------------------------------------------------------------
# Figures


def figure_path(image_path, out_dir, used):
    folder = out_dir or image_path.parent
    path = folder / f"{image_path.stem}_prediction.png"
    n = 2
    while path in used:  # two inputs with the same name in --out
        path, n = folder / f"{image_path.stem}_{n}_prediction.png", n + 1
    used.add(path)
    return path


def verdict_lines(result):
    verdict = result["verdict"].upper()
    if result["tiles"] == 1:
        return [f"{verdict}: crack probability {result['probability']:.3f}"]
    return [f"{verdict}: highest tile probability {result['probability']:.3f}",
            f"{result['cracked_tiles']} of {result['tiles']} tiles cracked "
            f"({result['cracked_share']:.1%} of the photo)"]


def draw_figure(image, result, grid=None, probabilities=None, threshold=0.5):
    """The image with its verdict above it; a photo also gets a heat map and cracked-tile outlines.

    Drawn with OpenCV rather than matplotlib: for a 12 MP photo that is tens of milliseconds
    instead of more than a second, less than classifying the tiles.
    """
    scale = min(FIGURE_MAX_SIDE / max(image.shape[:2]), 1.0) if grid else 320 / max(image.shape[:2])
    shown = cv2.resize(image, None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    if grid:
        height, width = shown.shape[:2]
        total, count = np.zeros((height, width), np.float32), np.zeros((height, width), np.float32)
        boxes = [tuple(round(v * scale) for v in (x, y, x + s, y + s)) for x, y, s in grid]
        for (x0, y0, x1, y1), p in zip(boxes, probabilities):
            total[y0:y1, x0:x1] += p
            count[y0:y1, x0:x1] += 1
        heat = total / np.maximum(count, 1)  # mean probability of the tiles covering each pixel
        colours = cv2.applyColorMap(np.uint8(heat * 255), cv2.COLORMAP_JET)[..., ::-1]
        # Opacity grows with the probability, so clean concrete stays as it was photographed.
        alpha = (0.6 * heat)[..., None]
        shown = np.uint8(shown * (1 - alpha) + colours * alpha)
        for (x0, y0, x1, y1), p in zip(boxes, probabilities):
            if p >= threshold:
                cv2.rectangle(shown, (x0, y0), (x1 - 1, y1 - 1), (255, 0, 0), 2)
        shown = np.hstack([shown, colour_scale(height)])
    return add_banner(shown, verdict_lines(result), (200, 0, 0) if result["verdict"] == "crack" else (0, 130, 0))


def colour_scale(height):
    """A vertical 0-1 crack-probability bar, as wide as its labels."""
    bar = np.full((height, 70, 3), 255, np.uint8)
    ramp = np.linspace(1, 0, max(height - 20, 2))
    bar[10:10 + len(ramp), 8:26] = cv2.applyColorMap(np.uint8(ramp * 255)[:, None], cv2.COLORMAP_JET)[..., ::-1]
    for value in (0.0, 0.5, 1.0):
        y = round(10 + (1 - value) * (len(ramp) - 1))
        cv2.putText(bar, f"{value:.1f}", (30, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def add_banner(image, lines, colour):
    """The image below a white strip holding `lines` of text."""
    font_scale = 0.6 if image.shape[1] < 700 else 0.9
    line_height = round(34 * font_scale / 0.9)
    banner = np.full((line_height * len(lines) + 14, image.shape[1], 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(banner, line, (10, line_height * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour,
                    2 if i == 0 else 1, cv2.LINE_AA)
    return np.vstack([banner, image])


def save_figure(figure, path, show):
    """Write the figure as PNG (temporary name, then rename); optionally show it in a window."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{path.name}")
    cv2.imwrite(str(tmp), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    os.replace(tmp, path)
    if show:  # the headless OpenCV wheel has no windows: matplotlib shows it
        import matplotlib.pyplot as plt

        plt.figure(figsize=(figure.shape[1] / 100, figure.shape[0] / 100))
        plt.imshow(figure)
        plt.axis("off")
        plt.show()


# ----------------------------------------------------------------------------------------------
# Output files


def write_csv(path, header, rows):
    """Write a CSV under a temporary name and rename it, so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{path.name}")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


def describe(path, result):
    if result["tiles"] == 1:
        return f"{path}: {result['verdict']} (crack probability {result['probability']:.3f})"
    return (f"{path}: {result['verdict']} (highest tile probability {result['probability']:.3f}; "
            f"{result['cracked_tiles']} of {result['tiles']} tiles cracked, "
            f"{result['cracked_share']:.1%} of the photo)")


def main(argv=None):
    args = parse_args(argv)
    images, failed = find_images(args.inputs)
    model_path = args.model or (TRAINED_MODEL if TRAINED_MODEL.is_file() else BUNDLED_MODEL)
    if not model_path.is_file():
        raise SystemExit(f"error: no model at {model_path}; train one with: python train.py")
    if not images:
        raise SystemExit("error: no images to classify")

    # TensorFlow takes seconds to import, so it waits until the inputs are known to be usable.
    from model import THRESHOLD

    threshold = THRESHOLD if args.threshold is None else args.threshold
    classify, size = load_classifier(model_path)
    print(f"model: {model_path} ({size}x{size} px input)")

    def read(item):
        path, named = item
        try:
            return path, named, *read_input(path, size, args.tile)
        except ImageError as exc:
            return path, named, exc, None

    results, tile_rows, used_names = {}, [], set()
    pending = []  # patch-sized images waiting to fill a batch: (path, model input, image if drawn)
    start = time.time()

    def flush_patches():
        if not pending:
            return
        for (path, _, image), p in zip(pending, classify(np.stack([x for _, x, _ in pending]))):
            result = {"probability": float(p), "verdict": "crack" if p >= threshold else "no crack",
                      "tiles": 1, "cracked_tiles": int(p >= threshold), "cracked_share": float(p >= threshold)}
            results[path] = result
            print(describe(path, result))
            if image is not None:
                save_figure(draw_figure(image, result), figure_path(path, args.out, used_names), args.show)
        pending.clear()

    for path, named, image, shrink in read_ahead(read, images, ahead=2 * args.batch_size):
        if isinstance(image, ImageError):
            error(f"{path}: {image}")
            failed += 1
            continue
        draw = args.figures if args.figures is not None else named
        if not is_photo(image, shrink, args.tile):
            pending.append((path, fit_to_model(image, size), image if draw else None))
            if len(pending) >= args.batch_size:
                flush_patches()
            continue
        result, grid, probabilities = classify_photo(image, shrink, classify, size, args.tile, args.stride,
                                                     args.batch_size, threshold)
        results[path] = result
        print(describe(path, result))
        tile_rows += [(str(path), x * shrink, y * shrink, s * shrink, s * shrink, f"{p:.5f}")
                      for (x, y, s), p in zip(grid, probabilities)]
        if draw:
            figure = draw_figure(image, result, grid, probabilities, threshold)
            save_figure(figure, figure_path(path, args.out, used_names), args.show)
    flush_patches()

    if args.csv:
        write_csv(args.csv, ["path", "crack_probability", "verdict", "tiles", "cracked_tiles", "cracked_share"],
                  [(str(path), f"{r['probability']:.5f}", r["verdict"], r["tiles"], r["cracked_tiles"],
                    f"{r['cracked_share']:.4f}") for path, _ in images if (r := results.get(path))])
    if args.tiles_csv:
        write_csv(args.tiles_csv, ["image", "x", "y", "width", "height", "probability"], tile_rows)
    if len(results) > 1:
        seconds = time.time() - start
        cracks = sum(r["verdict"] == "crack" for r in results.values())
        print(f"{len(results)} images classified in {seconds:.1f} s ({len(results) / seconds:.0f} images/s): "
              f"{cracks} crack, {len(results) - cracks} no crack" + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
