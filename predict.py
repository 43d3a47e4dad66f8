"""Classify images of concrete as crack / uncertain / no crack with a model trained by train.py.

    python predict.py photo.jpg                        # verdict, and predictions/photo_prediction.png
    python predict.py wall.jpg --out results/ --show   # figure in results/, also shown on screen
    python predict.py folder/ more.jpg --csv results.csv --tiles-csv tiles.csv
    python predict.py photo.jpg --model models/crack_cnn.keras   # your model instead of the bundled one
    python predict.py site/ --save-tiles site_tiles    # every tile as an image, to sort and train on
    python predict.py photo.jpg --model crack_cnn.tflite         # on a device without TensorFlow

The model runs in the LiteRT runtime (ai-edge-litert) when it is installed and the model has a
.tflite version beside it (train.py writes one): a photo then takes well under a second, without
importing TensorFlow. Otherwise TensorFlow runs the .keras file (see choose_backend).

An image up to about a patch in size (either side under twice --tile) is resized to the model's
input and classified whole. A larger photo, such as a 12 MP phone picture, is cut into --tile px
tiles every --stride px: that is the scale the training patches were cut at, whereas shrinking
the whole photo would make a crack thinner than a pixel. The verdict weighs the tiles' evidence
(see judge); the figure maps the crack probability over the photo and outlines cracked areas.

Folders are searched recursively and classified in batches; explicitly named files get a
figure each, images found in folders only with --figures. The exit status is 1 when any input
could not be read.
"""

import signal
import sys


def exit_interrupted(*_):
    """Ctrl-C or SIGTERM at any moment: one line and status 130; `finally` blocks still clean up."""
    print("\ninterrupted: no CSV was written; figures already saved are complete", file=sys.stderr)
    raise SystemExit(130)


if __name__ == "__main__":  # installed before the slow imports below, so Ctrl-C during them is clean too
    signal.signal(signal.SIGINT, exit_interrupted)
    signal.signal(signal.SIGTERM, exit_interrupted)

import argparse  # noqa: E402
import collections  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from data_prep import (CLASS_NAMES, PATCH_SIZE, ImageError, decode_image, fit_to_model,  # noqa: E402
                       laplacian_magnitude, list_images, quiet_stderr, resize, smoother_than)

BUNDLED_MODEL = Path(__file__).resolve().parent / "pretrained" / "crack_cnn.keras"  # trained on the full data set
FIGURES = Path("predictions")  # never beside the inputs: a figure must not become an input
BATCH_SIZE = 128  # images or tiles per model call
UNFAMILIAR_SHARE = 0.5  # an image mostly smoother than the training images is outside what the model knows
FIGURE_MAX_SIDE = 1200  # photos are drawn at most this wide: readable on any screen, quick to write
FIGURE_MIN_SIDE = 480  # smaller images are enlarged by a whole factor, pixels kept sharp
COLOUR_BAR_MIN_HEIGHT = 160
# Straight lines (see straight_lines), in tile sides: a joint or an edge runs straight over a tile and
# a half; a crack rarely does. Gaps of up to half a tile are bridged, segments under a quarter are
# grain, and a line is taken out with 3 model pixels (11 photo pixels) either side.
LINE_MIN_TILES, LINE_GAP_TILES, LINE_PIECE_TILES, LINE_STRIP_TILES = 1.5, 0.5, 0.25, 3 / 64
# Figures are written quickly rather than small: zlib's fastest level, and (OpenCV 4.12+) the one PNG
# filter "up" instead of a trial of each per row: 35 ms instead of 57 ms for a 1290 x 980 figure.
PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 1] + ([cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
                                                  if hasattr(cv2, "IMWRITE_PNG_FILTER") else [])
VERDICT_COLOURS = {"crack": (200, 0, 0), "no crack": (0, 130, 0), "uncertain": (200, 110, 0)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="image files and/or folders")
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL,
                        help="model from train.py, .keras or .tflite (default: the bundled pretrained/crack_cnn.keras)")
    parser.add_argument("--backend", choices=["auto", "litert", "tensorflow"], default="auto",
                        help="what runs the model: the LiteRT runtime (quick to start; needs the .tflite beside "
                             "the .keras) or TensorFlow (default: auto, LiteRT when it can)")
    parser.add_argument("--out", type=Path, default=FIGURES, help=f"folder for the figures (default: {FIGURES})")
    parser.add_argument("--csv", type=Path, help="write one row per image: path, probability, verdict, ..., error")
    parser.add_argument("--tiles-csv", type=Path, help="write one row per tile of each photo")
    parser.add_argument("--threshold", type=float, help="crack probability that makes a crack (default: model.py's)")
    parser.add_argument("--tile", type=int, default=PATCH_SIZE,
                        help=f"tile side in photo pixels (default: {PATCH_SIZE}, the dataset's patch size); "
                             "0 resizes every image whole")
    parser.add_argument("--stride", type=int, help="step between tiles in photo pixels (default: half a tile)")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction,
                        help="figure for every image (default: only for files named on the command line)")
    parser.add_argument("--save-tiles", type=Path, metavar="DIR",
                        help="save every tile (or whole image) classified, at the photo's resolution, into "
                             "DIR/crack/ and DIR/no_crack/: sort the wrong ones into Positive/ and Negative/ "
                             "to teach the model your surface")
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


def choose_backend(model_path, backend):
    """(path to load, backend name, note or "") for --model and --backend.

    LiteRT starts in a fraction of a second where TensorFlow takes seconds, so it is used when
    its runtime is installed and the model has a .tflite version (train.py writes one beside
    the .keras file; a .tflite of another training run is not used). Otherwise TensorFlow runs
    the .keras file, with a note saying why.
    """
    tflite_path = model_path.with_suffix(".tflite")
    keras_path = model_path.with_suffix(".keras") if model_path.suffix == ".tflite" else model_path
    if backend == "tensorflow":
        if not keras_path.is_file():
            raise SystemExit(f"error: --backend tensorflow needs {keras_path}, which does not exist")
        return keras_path, "tensorflow", ""
    has_runtime = litert_installed()
    if backend == "litert" or model_path.suffix == ".tflite":
        if has_runtime and tflite_path.is_file():
            return tflite_path, "litert", ""
        if not tflite_path.is_file():
            raise SystemExit(f"error: --backend litert needs {tflite_path}, which does not exist")
        if model_path.suffix == ".tflite" and backend == "auto" and keras_path.is_file():
            return keras_path, "tensorflow", f"note: the LiteRT runtime is not installed; using {keras_path} with TensorFlow"
        raise SystemExit(f"error: {tflite_path} needs the LiteRT runtime: pip install ai-edge-litert "
                         "(wheels for Linux x86_64/aarch64, macOS arm64, Windows x86_64)")
    if not tflite_path.is_file():
        return keras_path, "tensorflow", ""
    if not has_runtime:
        return keras_path, "tensorflow", ("note: the LiteRT runtime is not installed (pip install ai-edge-litert), "
                                          "so TensorFlow runs the model: slower to start")
    from model import read_model_info

    try:
        same = read_model_info(keras_path) == read_model_info(tflite_path)
    except (OSError, ValueError) as error:
        return keras_path, "tensorflow", f"note: {tflite_path} is not used: {error}"
    if same:
        return tflite_path, "litert", ""
    return keras_path, "tensorflow", f"note: {tflite_path} is from another training run than {keras_path}: not used"


def litert_installed():
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def load_classifier(model_path, backend):
    """(classify, info): classify maps a uint8 batch to crack probabilities; info says what they mean."""
    from model import read_model_info

    try:
        info = read_model_info(model_path)
        classify, input_shape = (litert_classifier if backend == "litert" else keras_classifier)(model_path)
    except Exception as exc:  # Keras and LiteRT raise many types for a damaged or foreign file
        raise SystemExit(f"error: cannot load model {model_path}: {str(exc).splitlines()[0]}")
    size = info["image_size"]
    if tuple(input_shape[1:]) != (size, size, 3) or info["class_names"] != CLASS_NAMES:
        raise SystemExit(f"error: {model_path} is not a crack classifier of this project "
                         f"(input {input_shape}, classes {info['class_names']})")
    return classify, info


def keras_classifier(path):
    from model import keras, tf  # model.py imports TensorFlow quietly

    model = keras.models.load_model(path, compile=False)
    if model.output_shape[1:] != (1,):
        raise ValueError(f"it gives {model.output_shape[1:]} outputs per image, not 1")
    # One traced graph for every batch size: no re-tracing when the last batch is shorter.
    infer = tf.function(lambda x: model(x, training=False),
                        input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8)])
    return (lambda batch: infer(np.asarray(batch)).numpy().ravel()), model.input_shape


def litert_classifier(path):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), num_threads=os.cpu_count()).get_signature_runner()
    (name, details), = runner.get_input_details().items()
    (output, _), = runner.get_output_details().items()

    def classify(batch):
        return runner(**{name: np.asarray(batch, np.uint8)})[output].ravel()

    with quiet_stderr():  # the first call prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        classify(np.zeros((1, *details["shape"][1:]), np.uint8))
    return classify, details["shape_signature"]


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


def is_photo(image, tile):
    """Much larger than a patch: either side at least twice the tile."""
    return tile > 0 and max(image.shape[:2]) >= 2 * tile


def tile_starts(length, tile, stride):
    """Tile offsets along one side, the last flush with the edge so every pixel is covered."""
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile_grid(image, tile, stride):
    """(x, y, side) of every tile in photo pixels; square tiles, shrunk on a thin image."""
    height, width = image.shape[:2]
    side = min(tile, height, width)
    return [(x, y, side) for y in tile_starts(height, side, stride) for x in tile_starts(width, side, stride)]


def model_scale(image, grid, size):
    """(resized, corners): the photo resized once so that a tile becomes size x size pixels, and each
    tile's top-left corner in it.

    Tiles are then cut by slicing, which costs next to nothing beside the model (the photo goes
    through data_prep.resize, as a patch does; a tile's edge may shift by half a model pixel).
    """
    side = grid[0][2]
    scale = size / side
    resized = resize(image, round(image.shape[1] * scale), round(image.shape[0] * scale))
    height, width = resized.shape[:2]
    if min(height, width) < size:  # a thin photo rounded down: pad the last row or column
        resized = cv2.copyMakeBorder(resized, 0, max(0, size - height), 0, max(0, size - width), cv2.BORDER_REPLICATE)
        height, width = resized.shape[:2]
    corners = np.array([(min(round(x * scale), width - size), min(round(y * scale), height - size)) for x, y, _ in grid])
    return resized, corners


def classify_in_batches(classify, tiles, batch_size):
    return np.concatenate([classify(np.stack(tiles[start:start + batch_size]))
                           for start in range(0, len(tiles), batch_size)])


def tile_smoothness(resized, corners, size, floor):
    """data_prep.smoother_than(tile, floor) for every tile, from one pass over the whole photo.

    A tile's inner pixels have the same Laplacian in the photo as in the tile cut out, so the
    pixels below the floor are found once and counted per tile with an integral image, instead
    of filtering every pixel four times (tiles overlap by half in both directions).
    """
    below = np.uint8(laplacian_magnitude(resized[None])[0] < floor)  # pixel (i + 1, j + 1) of the photo
    counts = cv2.integral(below)  # counts[i, j]: how many of below[:i, :j] are set
    inner = size - 2
    x, y = corners[:, 0], corners[:, 1]
    inside = counts[y + inner, x + inner] - counts[y, x + inner] - counts[y + inner, x] + counts[y, x]
    return inside > inner * inner // 2


def judge(probabilities, smooth, rule):
    """(verdict, reason) for an image from its tiles' crack probabilities and which tiles are smoother
    than the model's texture floor (data_prep.smoother_than).

    "crack" needs a tile at or above the model's sure threshold, where its validation calls were
    99.9% right; a tile between the threshold and that is weak evidence. And when most of the
    image is smoother than 99.5% of the training images, the model is outside what it learned,
    so its alarms there are "uncertain" too. Both limits are measured by train.py (calibrate).
    """
    if not np.any(probabilities >= rule["threshold"]):
        return "no crack", ""
    smooth_share = float(np.mean(smooth))
    if smooth_share >= UNFAMILIAR_SHARE:
        return "uncertain", (f"{smooth_share:.0%} of the image is smoother than 99.5% of the training images: a painted "
                             "surface, or photographed far closer than the dataset (a larger --tile may help)")
    if probabilities.max() < rule["sure_threshold"]:
        return "uncertain", f"weak evidence: no tile reaches {rule['sure_threshold']:.2f}, the model's sure threshold"
    return "crack", ""


def verdict_rule(info, threshold=None):
    """judge()'s limits from a model's info; `threshold` (--threshold) replaces the model's own."""
    threshold = info["threshold"] if threshold is None else threshold
    # A model saved before train.py calibrated its models has no sure threshold or texture floor.
    return {"threshold": threshold, "sure_threshold": max(threshold, info.get("sure_threshold", threshold)),
            "smooth_below": info.get("smooth_below", 0.0)}


def classify_photo(image, classify, size, tile, stride, batch_size, rule):
    """(result, tile grid, tile probabilities that count, as the model saw them, straight lines) for
    a photo; the verdict is judge()'s.

    A tile that fires only because of a long straight line (see straight_lines) does not count:
    its probability becomes that of the tile with the lines taken out (without_straight_lines),
    if lower. The lines are returned in photo pixels, for the figure.
    """
    grid = tile_grid(image, tile, stride)
    resized, corners = model_scale(image, grid, size)
    probabilities = classify_in_batches(classify, [resized[y:y + size, x:x + size] for x, y in corners], batch_size)
    fired = probabilities >= rule["threshold"]
    lines = straight_lines(resized, size) if fired.any() else np.zeros((0, 4), np.float32)
    crossing = {}  # fired tile -> the lines through it
    for i in np.flatnonzero(fired):
        through = [line for line in lines if crosses(line, corners[i], size)]
        if through:
            crossing[i] = np.array(through)
    counted = probabilities.copy()
    if crossing:
        crossed = list(crossing)
        line_free = classify_in_batches(classify, [without_straight_lines(resized, corners[i], crossing[i], size)
                                                   for i in crossed], batch_size)
        counted[crossed] = np.minimum(probabilities[crossed], line_free)  # lines explain alarms away, never add one
    cracked = counted >= rule["threshold"]
    verdict, reason = judge(counted, tile_smoothness(resized, corners, size, rule["smooth_below"]), rule)
    result = {"probability": float(counted.max()), "verdict": verdict, "reason": reason,
              "tiles": len(grid), "cracked_tiles": int(cracked.sum()),
              "cracked_share": cracked_share(image.shape, grid, cracked),
              "straight_line_tiles": int(np.sum(fired & ~cracked))}
    used = np.unique(np.concatenate(list(crossing.values())), axis=0) if crossing else np.zeros((0, 4), np.float32)
    return result, grid, counted, probabilities, used * (grid[0][2] / size)


def straight_lines(resized, size):
    """The long straight lines of a photo at model scale, (N, 4) as x1, y1, x2, y2: joints, edges of
    slabs and frames, photo borders. The network calls any dark line a crack; these are not.

    OpenCV's line segment detector finds straight edges with no threshold to tune (it keeps a
    segment only where its pixels line up beyond chance). A probabilistic Hough transform proposes
    the lines on which segments lie, across short gaps (moss, a stain, a crossing joint), at least
    LINE_MIN_TILES tiles long; a line is kept where segments running along it cover half its
    length. A crack's edge turns every few pixels: its segments are short, point every way, and do
    not add up to such a line. A joint may be found more than once (its two edges): harmless.
    """
    grey = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
    segments = cv2.createLineSegmentDetector().detect(grey)[0]
    segments = np.zeros((0, 4), np.float32) if segments is None else segments.reshape(-1, 4)
    segments = segments[np.hypot(*(segments[:, 2:] - segments[:, :2]).T) >= LINE_PIECE_TILES * size]  # shorter: grain
    pieces = np.zeros_like(grey)
    for x1, y1, x2, y2 in np.round(segments).astype(int):
        cv2.line(pieces, (x1, y1), (x2, y2), 255, 2)  # 2 px wide: pieces a pixel off one line still vote for it
    length = round(LINE_MIN_TILES * size)
    proposed = cv2.HoughLinesP(pieces, 1, np.pi / 360, threshold=round(0.6 * length), minLineLength=length,
                               maxLineGap=round(LINE_GAP_TILES * size))
    proposed = np.zeros((0, 4), np.float32) if proposed is None else proposed.reshape(-1, 4).astype(np.float32)
    return np.array([line for line in proposed if covered_share(segments, line) >= 0.5], np.float32).reshape(-1, 4)


def covered_share(segments, line):
    """The share of a line's length that segments running along it cover (a joint's two edges count twice)."""
    along = running_along(segments, line)
    return np.hypot(*(segments[along, 2:] - segments[along, :2]).T).sum() / np.hypot(*(line[2:] - line[:2]))


def running_along(segments, line, tolerance=2.0):
    """Which segments run along a line: parallel within 5 degrees, their middles within `tolerance`
    pixels of it and not beyond its ends."""
    start, end = line[:2], line[2:]
    length = np.hypot(*(end - start))
    unit = (end - start) / length
    normal = np.array([-unit[1], unit[0]])
    directions = segments[:, 2:] - segments[:, :2]
    middles = (segments[:, :2] + segments[:, 2:]) / 2 - start
    return ((np.abs(directions @ unit) >= np.cos(np.radians(5)) * np.hypot(*directions.T))
            & (np.abs(middles @ normal) <= tolerance)
            & (middles @ unit >= -tolerance) & (middles @ unit <= length + tolerance))


def crosses(line, corner, size):
    """Whether a line (x1, y1, x2, y2) passes through the size x size tile at corner (x, y)."""
    x1, y1, x2, y2 = (round(float(v)) for v in line)
    return cv2.clipLine((int(corner[0]), int(corner[1]), size, size), (x1, y1), (x2, y2))[0]


def without_straight_lines(resized, corner, lines, size):
    """The tile at `corner` with the straight lines through it taken out: whatever lies beyond a line,
    seen from the tile's centre, is replaced by the mirror image of the near side, the line itself
    and LINE_STRIP_TILES on either side included. A joint, an edge or a band along the border is
    gone; a crack on the near side stays, and one on the far side is seen by a neighbouring tile
    (tiles overlap by half).
    """
    strip = LINE_STRIP_TILES * size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    px, py = xs + corner[0], ys + corner[1]
    centre = corner + size / 2
    for _ in range(2):  # a pixel mirrored over one line may land beyond another where joints cross
        for line in lines:
            start, end = line[:2], line[2:]
            length = np.hypot(*(end - start))
            along_unit = (end - start) / length
            normal = np.array([-along_unit[1], along_unit[0]])
            side = 1 if (centre - start) @ normal >= 0 else -1
            distance = side * ((px - start[0]) * normal[0] + (py - start[1]) * normal[1])  # > 0: near side
            along = (px - start[0]) * along_unit[0] + (py - start[1]) * along_unit[1]
            beyond = (distance < strip) & (along > -strip) & (along < length + strip)
            shift = np.where(beyond, 2 * (strip - distance) * side, 0)  # mirrored over the strip's near edge
            px, py = px + shift * normal[0], py + shift * normal[1]
    return cv2.remap(resized, px.astype(np.float32), py.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def cracked_share(image_shape, grid, cracked):
    """Fraction of the photo covered by at least one cracked tile."""
    covered = np.zeros(image_shape[:2], bool)
    for (x, y, s), flag in zip(grid, cracked):
        if flag:
            covered[y:y + s, x:x + s] = True
    return float(covered.mean())


# ----------------------------------------------------------------------------------------------
# Figures


def save_tiles(path, image, boxes, probabilities, threshold, folder):
    """Each tile of a photo (RGB, full resolution, as patches are cut) as a JPEG like a dataset patch,
    named after the photo, its position and crack probability, in folder/crack/ or folder/no_crack/.
    boxes: (x, y, width, height) in photo pixels, or None for the whole image."""
    image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for box, p in zip(boxes or [(0, 0, image.shape[1], image.shape[0])], probabilities):
        x, y, width, height = box
        verdict = "crack" if p >= threshold else "no_crack"
        target = folder / verdict / f"{path.stem}_x{x:05d}_y{y:05d}_p{p:.2f}.jpg"
        tmp = target.with_name(f".partial-{target.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp), image[y:y + height, x:x + width], [cv2.IMWRITE_JPEG_QUALITY, 95])
        os.replace(tmp, target)


def figure_path(image_path, folder, used):
    path = folder / f"{image_path.stem}_prediction.png"
    n = 2
    while path in used:  # two inputs with the same name
        path, n = folder / f"{image_path.stem}_{n}_prediction.png", n + 1
    used.add(path)
    return path


def verdict_lines(result):
    verdict = result["verdict"].upper()
    reason = [result["reason"]] if result["reason"] else []
    if result["tiles"] == 1:
        return [f"{verdict}: crack probability {result['probability']:.3f}", *reason]
    lines = [f"{verdict}: highest tile probability {result['probability']:.3f}", *reason,
             f"{result['cracked_tiles']} of {result['tiles']} tiles cracked ({result['cracked_share']:.1%} of the photo)"]
    if result.get("straight_line_tiles"):
        lines.append(straight_line_note(result, "", drawn=", drawn white"))
    return lines


def draw_figure(image, result, grid=None, probabilities=None, threshold=0.5, lines=()):
    """The image with its verdict above it; a photo also gets a heat map, its
    cracked areas outlined and the straight lines whose alarms were not counted drawn white.

    Drawn with OpenCV rather than matplotlib: for a 12 MP photo that is tens of milliseconds
    instead of more than a second, less than classifying the tiles.
    """
    longest = max(image.shape[:2])
    # A large photo is shrunk to fit a screen; a small one is shown at its size or enlarged by a whole
    # factor with sharp pixels, never smaller than it is.
    scale = FIGURE_MAX_SIDE / longest if longest > FIGURE_MAX_SIDE else max(1, FIGURE_MIN_SIDE // longest)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST if scale == int(scale) else cv2.INTER_LINEAR
    shown = cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)
    if grid:
        heat = heat_map(shown.shape[:2], grid, probabilities, scale)
        colours = colour_map(heat)
        # Only where a crack is likely, and at most half opaque: the photo stays visible everywhere.
        alpha = 0.5 * np.clip((heat - 0.2) / 0.8, 0, 1)
        shown = cv2.blendLinear(shown, colours, 1 - alpha, alpha)
        outline_cracked_areas(shown, heat, threshold)
        for x1, y1, x2, y2 in np.round(np.asarray(lines) * scale).astype(int):
            cv2.line(shown, (x1, y1), (x2, y2), (0, 0, 0), 3, cv2.LINE_AA)
            cv2.line(shown, (x1, y1), (x2, y2), (255, 255, 255), 1, cv2.LINE_AA)
        shown = np.hstack([pad_to_height(shown, COLOUR_BAR_MIN_HEIGHT), colour_bar(max(shown.shape[0], COLOUR_BAR_MIN_HEIGHT))])
    return add_banner(shown, verdict_lines(result), VERDICT_COLOURS[result["verdict"]])


def heat_map(shape, grid, probabilities, scale):
    """Per pixel of the figure, the mean crack probability of the tiles that cover it."""
    total, count = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    for (x, y, s), p in zip(grid, probabilities):
        x0, y0, x1, y1 = (round(v * scale) for v in (x, y, x + s, y + s))
        total[y0:y1, x0:x1] += p
        count[y0:y1, x0:x1] += 1
    return total / np.maximum(count, 1)


def colour_map(values):
    """RGB colours of probabilities 0-1, as on the colour bar."""
    return cv2.cvtColor(cv2.applyColorMap(np.uint8(np.clip(values, 0, 1) * 255), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def outline_cracked_areas(shown, heat, threshold):
    """One outline around each area at or above the threshold (not a mesh of tile edges), drawn in
    the colour of the highest probability inside it, with a dark rim so it shows on any colour."""
    mask = np.uint8(heat >= threshold)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        area = np.zeros_like(mask)
        cv2.drawContours(area, [contour], -1, 1, -1)
        colour = tuple(int(c) for c in colour_map(np.array([[heat[area > 0].max()]]))[0, 0])
        cv2.drawContours(shown, [contour], -1, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.drawContours(shown, [contour], -1, colour, 2, cv2.LINE_AA)


def pad_to_height(image, height):
    if image.shape[0] >= height:
        return image
    return np.vstack([image, np.full((height - image.shape[0],) + image.shape[1:], 255, np.uint8)])


def colour_bar(height):
    """A vertical 0-1 crack-probability bar under its title, as wide as its labels."""
    bar = np.full((height, 90, 3), 255, np.uint8)
    cv2.putText(bar, "p(crack)", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    top, bottom = 30, height - 10
    ramp = np.linspace(1, 0, bottom - top)
    bar[top:bottom, 8:26] = colour_map(ramp[:, None])
    for value in (0.0, 0.5, 1.0):
        y = round(top + (1 - value) * (len(ramp) - 1))
        cv2.putText(bar, f"{value:.1f}", (30, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def add_banner(image, lines, colour):
    """The image below a white strip holding `lines` of text, made smaller or wrapped to fit."""
    width = image.shape[1]
    font_scale = 0.9 if width >= 700 else 0.6
    while font_scale > 0.4 and max(text_width(line, font_scale) for line in lines) > width - 20:
        font_scale -= 0.05
    lines = [part for line in lines for part in wrap(line, font_scale, width - 20)]
    line_height = round(34 * font_scale / 0.9)
    banner = np.full((line_height * len(lines) + 14, width, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(banner, line, (10, line_height * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour,
                    2 if i == 0 else 1, cv2.LINE_AA)
    return np.vstack([banner, image])


def text_width(text, font_scale):
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 2)[0][0]


def wrap(line, font_scale, width):
    """Split a line at spaces into parts that fit `width` pixels."""
    parts = [""]
    for word in line.split(" "):
        candidate = f"{parts[-1]} {word}".strip()
        if parts[-1] and text_width(candidate, font_scale) > width:
            parts.append(word)
        else:
            parts[-1] = candidate
    return parts


def save_figure(figure, path, show):
    """Write the figure as PNG (temporary name, then rename); optionally show it in a window."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{path.name}")
    cv2.imwrite(str(tmp), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), PNG_OPTIONS)
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


CSV_COLUMNS = ["path", "crack_probability", "verdict", "reason", "tiles", "cracked_tiles", "cracked_share",
               "straight_line_tiles", "error"]


def csv_row(path, result, failure):
    if failure is not None:
        return [str(path), "", "error", "", "", "", "", "", failure]
    return [str(path), f"{result['probability']:.5f}", result["verdict"], result["reason"], result["tiles"],
            result["cracked_tiles"], f"{result['cracked_share']:.4f}", result.get("straight_line_tiles", 0), ""]


def describe(path, result):
    reason = f"{result['reason']}; " if result["reason"] else ""
    if result["tiles"] == 1:
        return f"{path}: {result['verdict']} ({reason}crack probability {result['probability']:.3f})"
    return (f"{path}: {result['verdict']} ({reason}highest tile probability {result['probability']:.3f}; "
            f"{result['cracked_tiles']} of {result['tiles']} tiles cracked, "
            f"{result['cracked_share']:.1%} of the photo{straight_line_note(result, '; ')})")


def straight_line_note(result, separator, drawn=""):
    """What the straight lines explained away, if anything (see classify_photo)."""
    if not result.get("straight_line_tiles"):
        return ""
    return (f"{separator}{result['straight_line_tiles']} more fired only on long straight lines{drawn} "
            "(joints, edges): not counted")


def main(argv=None):
    args = parse_args(argv)
    images, failures = find_images(args.inputs)
    if not args.model.is_file():
        raise SystemExit(f"error: model file {args.model} does not exist"
                         + ("" if args.model.suffix in (".keras", ".tflite") else
                            " (expected a .keras or .tflite file from train.py)"))
    if not images:
        raise SystemExit("error: no images to classify")
    for option, path in (("--csv", args.csv), ("--tiles-csv", args.tiles_csv)):
        if path is not None and path.is_dir():
            raise SystemExit(f"error: {option} {path} is a folder; give a file name")
    for option, path in (("--out", args.out), ("--save-tiles", args.save_tiles)):
        if path is not None and path.exists() and not path.is_dir():
            raise SystemExit(f"error: {option} {path} is a file; give a folder")
    for folder in args.inputs:  # saved tiles are images: inside an input folder they would be read back
        if args.save_tiles and folder.is_dir() and args.save_tiles.resolve().is_relative_to(folder.resolve()):
            raise SystemExit(f"error: --save-tiles {args.save_tiles} is inside the input folder {folder}; "
                             "choose another")

    # The model is loaded once the inputs are known to be usable: TensorFlow takes seconds to import.
    model_path, backend, note = choose_backend(args.model, args.backend)
    classify, info = load_classifier(model_path, backend)
    size = info["image_size"]
    rule = verdict_rule(info, args.threshold)
    threshold = rule["threshold"]
    which = "the bundled model" if args.model.resolve() == BUNDLED_MODEL else "--model"
    print(f"model: {model_path} ({which}, run by {'LiteRT' if backend == 'litert' else 'TensorFlow'}; "
          f"{size}x{size} px input, threshold {threshold}, sure from {rule['sure_threshold']})")
    if note:
        print(note)

    def read(item):
        path, named = item
        try:
            return path, named, decode_image(path)
        except ImageError as exc:
            return path, named, exc

    results, tile_rows, used_names = {}, [], set()
    pending = []  # patch-sized images waiting to fill a batch: (path, model input, image, whether drawn)
    start = time.time()

    def flush_patches():
        if not pending:
            return
        batch = np.stack([x for _, x, _, _ in pending])
        for (path, _, image, draw), p, smooth in zip(pending, classify(batch), smoother_than(batch, rule["smooth_below"])):
            verdict, reason = judge(np.array([p]), np.array([smooth]), rule)
            result = {"probability": float(p), "verdict": verdict, "reason": reason,
                      "tiles": 1, "cracked_tiles": int(p >= threshold), "cracked_share": float(p >= threshold)}
            results[path] = result
            print(describe(path, result))
            if draw:
                save_figure(draw_figure(image, result), figure_path(path, args.out, used_names), args.show)
            if args.save_tiles:
                save_tiles(path, image, None, [p], threshold, args.save_tiles)
        pending.clear()

    for path, named, image in read_ahead(read, images, ahead=2 * args.batch_size):
        if isinstance(image, ImageError):
            error(f"{path}: {image}")
            failures[path] = str(image)
            continue
        draw = args.figures if args.figures is not None else named
        if not is_photo(image, args.tile):
            pending.append((path, fit_to_model(image, size), image if draw or args.save_tiles else None, draw))
            if len(pending) >= args.batch_size:
                flush_patches()
            continue
        result, grid, probabilities, as_seen, lines = classify_photo(image, classify, size, args.tile,
                                                                     args.stride, args.batch_size, rule)
        results[path] = result
        print(describe(path, result))
        boxes = [(x, y, s, s) for x, y, s in grid]
        tile_rows += [(str(path), *box, f"{p:.5f}", f"{q:.5f}") for box, p, q in zip(boxes, probabilities, as_seen)]
        if args.save_tiles:
            save_tiles(path, image, boxes, probabilities, threshold, args.save_tiles)
        if draw:
            figure = draw_figure(image, result, grid, probabilities, threshold, lines)
            save_figure(figure, figure_path(path, args.out, used_names), args.show)
    flush_patches()

    if args.csv:
        in_order = dict.fromkeys([path for path, _ in images] + list(failures))  # each input once
        write_csv(args.csv, CSV_COLUMNS, [csv_row(path, results.get(path), failures.get(path)) for path in in_order])
    if args.tiles_csv:
        write_csv(args.tiles_csv, ["image", "x", "y", "width", "height", "probability",
                                   "probability_with_straight_lines"], tile_rows)
    if len(results) > 1:
        seconds = time.time() - start
        counts = collections.Counter(r["verdict"] for r in results.values())
        print(f"{len(results)} images classified in {seconds:.1f} s ({len(results) / seconds:.0f} images/s): "
              + ", ".join(f"{counts[v]} {v}" for v in ("crack", "uncertain", "no crack"))
              + (f", {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as failure:  # disk full, no permission, a file where a folder should be: one line
        sys.exit(f"error: {failure.filename or ''}: {failure.strerror or failure}")
