"""The figure predict.py draws for an image: the verdict above it and, for a photo, a heat map of
one class's probability over its tiles, the areas at or above the threshold outlined, and the
straight lines whose alarms were not counted drawn white. Also the tiles saved to sort
(--save-tiles), and which of these an input gets (save_outputs).

Drawn with OpenCV rather than matplotlib: for a 12 MP photo that is tens of milliseconds instead
of more than a second, less than classifying the tiles.
"""

import collections
import struct
import zlib
from pathlib import Path

import numpy as np

from support import verdicts
from support.atomic_files import writing
from support.errors import InputError
from support.images import ImageError
from support.inspection import shown_path
from support.model_files import predicted_classes
from support.opencv import cv2

FIGURE_MAX_SIDE = 1200  # photos are drawn at most this wide: readable on any screen, quick to write
FIGURE_MIN_SIDE = 480  # smaller images are enlarged by a whole factor, pixels kept sharp
COLOUR_BAR_MIN_HEIGHT = 160
# Figures are written quickly rather than small: zlib's fastest level, and (OpenCV 4.12+) the one PNG
# filter "up" instead of a trial of each per row: 35 ms instead of 57 ms for a 1290 x 980 figure.
PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 1] + ([cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
                                                  if hasattr(cv2, "IMWRITE_PNG_FILTER") else [])
FIGURE_JPEG_QUALITY = 85  # a report's figures, at the size drawn: 16 phone photos' take 2.7 MB (as PNG, about 17)
FIGURE_BOX = 1.5  # a figure is shown fitted into a box this many times as wide as high (banner_font_scale)
BANNER_FONT_SIDE = 1100  # the banner's font scale is 1 when the figure's side that fits that box is this long
BANNER_FONT_SCALES = (0.45, 1.2)  # and never smaller (10 pixels high: still legible) nor larger than these
OUTLINE_COLOUR = (255, 0, 0)  # around flagged tiles, however few: red reads as an alarm on any heat (JET's 0.5 is green)
SET_ASIDE_COLOUR = (255, 255, 255)  # the straight lines whose alarms were not counted
LINE_RIM = (0, 0, 0)  # each line drawn over a dark rim, so it shows on any colour
# Every kind of line a figure draws, as the report's legend names it: (colour, its name, what it shows).
FIGURE_LINES = [(OUTLINE_COLOUR, "red outline", "around {flagged}, even a single one"),
                (SET_ASIDE_COLOUR, "white double line",
                 "a long straight line (a joint, an edge): the alarms along it were set aside, not counted")]
VERDICT_COLOURS = {"crack": (200, 0, 0), "no crack": (0, 130, 0), "uncertain": (200, 110, 0)}
CLASS_COLOURS = [(20, 90, 200), (120, 40, 160), (0, 120, 120), (150, 80, 20), (60, 60, 60)]  # other models' classes


def verdict_colour(verdict, class_names):
    if verdict in VERDICT_COLOURS:
        return VERDICT_COLOURS[verdict]
    return CLASS_COLOURS[class_names.index(verdict) % len(CLASS_COLOURS)] if verdict in class_names else (0, 0, 0)


def draw_figure(image, banner, colour, grid=None, values=None, threshold=0.5, lines=(), label="p(crack)"):
    """The image below its banner (lines of text in the verdict's colour); with a tile grid, also the
    heat map of `values` (one probability per tile, named `label` on the colour bar). Raises ImageError
    when OpenCV cannot draw it (e.g. a 20 x 50000 px strip shrinks to no height)."""
    try:
        return _draw_figure(image, banner, colour, grid, values, threshold, lines, label)
    except cv2.error as error:
        raise ImageError(f"OpenCV cannot draw it ({error.err})") from None


def _draw_figure(image, banner, colour, grid, values, threshold, lines, label):
    scale, shown = figure_scale(image.shape), shown_photo(image)
    if grid:
        heat = heat_map(shown.shape[:2], grid, values, scale)
        colours = colour_map(heat)
        # Only where the class is likely, and at most half opaque: the photo stays visible everywhere.
        alpha = 0.5 * np.clip((heat - 0.2) / 0.8, 0, 1)
        shown = cv2.blendLinear(shown, colours, 1 - alpha, alpha)
        outline_areas(shown, heat, threshold)
        for x1, y1, x2, y2 in np.round(np.asarray(lines) * scale).astype(int):
            cv2.line(shown, (x1, y1), (x2, y2), LINE_RIM, 3, cv2.LINE_AA)
            cv2.line(shown, (x1, y1), (x2, y2), SET_ASIDE_COLOUR, 1, cv2.LINE_AA)
        bar = colour_bar(max(shown.shape[0], COLOUR_BAR_MIN_HEIGHT), label)
        shown = np.hstack([pad_to_height(shown, COLOUR_BAR_MIN_HEIGHT), bar])
    return add_banner(shown, banner, colour)


def figure_scale(shape):
    """A large photo is shrunk to fit a screen; a small one is shown at its size or enlarged by a
    whole factor with sharp pixels, never smaller than it is."""
    longest = max(shape[:2])
    return FIGURE_MAX_SIDE / longest if longest > FIGURE_MAX_SIDE else max(1, FIGURE_MIN_SIDE // longest)


def shown_photo(image):
    """The image at the size its figure shows it (the report's plain photo beside the heat map too)."""
    scale = figure_scale(image.shape)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST if scale == int(scale) else cv2.INTER_LINEAR
    height, width = image.shape[:2]  # a side never shrinks to nothing: a 20 x 50000 strip stays a line
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=interpolation)


def photo_area(figure, image_shape, has_grid):
    """(top, scale): where the photo starts in a figure (below the banner) and how it was scaled."""
    scale = figure_scale(image_shape)
    shown = round(image_shape[0] * scale)
    return figure.shape[0] - (max(shown, COLOUR_BAR_MIN_HEIGHT) if has_grid else shown), scale


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


def outline_areas(shown, heat, threshold):
    """One outline around each area at or above the threshold (not a mesh of tile edges), in the one
    alarm colour (the heat map's own colour at 0.5-0.7 is green or yellow: an isolated flagged tile
    read as "OK"), with a dark rim so it shows on any colour."""
    mask = np.uint8(heat >= threshold)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(shown, contours, -1, LINE_RIM, 4, cv2.LINE_AA)
    cv2.drawContours(shown, contours, -1, OUTLINE_COLOUR, 2, cv2.LINE_AA)


def pad_to_height(image, height):
    if image.shape[0] >= height:
        return image
    return np.vstack([image, np.full((height - image.shape[0],) + image.shape[1:], 255, np.uint8)])


def colour_bar(height, label):
    """A vertical 0-1 probability bar under its title, as wide as its labels."""
    label = drawable(label)
    width = max(90, cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0] + 8)
    bar = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(bar, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    top, bottom = 30, height - 10
    ramp = np.linspace(1, 0, bottom - top)
    bar[top:bottom, 8:26] = colour_map(ramp[:, None])
    for value in (0.0, 0.5, 1.0):
        y = round(top + (1 - value) * (len(ramp) - 1))
        cv2.putText(bar, f"{value:.1f}", (30, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def drawable(text):
    """Text as OpenCV can draw it: its fonts have ASCII only, and a name that is not UTF-8 (held as
    surrogates) crashed cv2.getTextSize (a segmentation fault): any other character as its escape."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def add_banner(image, lines, colour):
    """The image below a white strip holding `lines` of text, made smaller or wrapped to fit."""
    lines = [drawable(line) for line in lines]
    height, width = image.shape[:2]
    font_scale = banner_font_scale(height, width)
    while font_scale > 0.4 and max(text_width(line, font_scale) for line in lines) > width - 20:
        font_scale -= 0.05
    lines = [part for line in lines for part in wrap(line, font_scale, width - 20)]
    line_height = round(34 * font_scale / 0.9)
    banner = np.full((line_height * len(lines) + 14, width, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(banner, line, (10, line_height * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour,
                    2 if i == 0 else 1, cv2.LINE_AA)
    return np.vstack([banner, image])


def banner_font_scale(height, width):
    """The banner's text as large on paper (and on a screen) whatever the photo's shape or size: a figure is
    shown fitted into a box FIGURE_BOX times as wide as high (the report's print: the page's width, 120 mm
    high), so its text grows with the side that fits the box, within BANNER_FONT_SCALES."""
    low, high = BANNER_FONT_SCALES
    return float(np.clip(max(height, width / FIGURE_BOX) / BANNER_FONT_SIDE, low, high))


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


def save_figure(figure, path, source, show=False):
    """Write the figure as PNG, or as JPEG for a .jpg path (a report's: small enough to send), under a
    temporary name then renamed, saying in it which input it shows; optionally show it in a window."""
    jpeg = Path(path).suffix == ".jpg"
    ok, data = cv2.imencode(".jpg" if jpeg else ".png", cv2.cvtColor(figure, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, FIGURE_JPEG_QUALITY] if jpeg else PNG_OPTIONS)
    with writing(path) as tmp:  # encoded in memory: cv2.imwrite fails on non-ASCII paths on Windows
        tmp.write_bytes(with_source(data.tobytes(), source))
    if show:  # the headless OpenCV wheel has no windows: matplotlib shows it
        import matplotlib.pyplot as plt

        plt.figure(figsize=(figure.shape[1] / 100, figure.shape[0] / 100))
        plt.imshow(figure)
        plt.axis("off")
        plt.show()


def save_tiles(image, boxes, folders, folder, stem, source, all_folders):
    """Each tile of a photo (RGB, full resolution, as patches are cut) as a JPEG like a dataset patch,
    in folder/<its predicted class's folder>/, named after the photo (`stem`, a relative path) and
    its position. boxes: (x, y, width, height) in photo pixels. The same tile of the same photo saved
    by an earlier run under another class (another model or threshold) is removed: a tile is never
    in two class folders at once."""
    image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for (x, y, width, height), name in zip(boxes, folders):
        ending = f"_x{x:05d}_y{y:05d}.jpg"
        for other in all_folders:
            old = folder / other / f"{stem}{ending}"
            if other != name and old.exists() and source_of(old) == str(source):
                old.unlink()
        ok, data = cv2.imencode(".jpg", image[y:y + height, x:x + width], [cv2.IMWRITE_JPEG_QUALITY, 95])
        with writing(free_path(folder / name, stem, ending, source)) as tmp:
            tmp.write_bytes(with_source(data.tobytes(), source))


def save_outputs(item, rule, args, stem, error):
    """An input's figure (for named files, or with --figures or --report) and saved tiles (--save-tiles),
    as predict's options ask; returns the figure's path and where the photo is in it, or (None, None).
    item: a results.Classified; stem: where its outputs go (output_stems); error: what tells a figure
    that cannot be drawn (predict's error line): one image's figure never takes the others down."""
    image, result, tiles, source = item.image, item.result, item.tiles, item.path.resolve()
    if tiles:
        grid, counted, lines = tiles.grid, tiles.counted, tiles.lines
        boxes = [(x, y, s, s) for x, y, s in grid]
    else:  # an image classified whole: one tile
        grid, counted, lines = None, np.array([list(result.probabilities.values())]), ()
        boxes = [(0, 0, image.shape[1], image.shape[0])]
    if args.save_tiles:
        folders = [rule.class_names[p] for p in predicted_classes(counted, rule.threshold)]
        save_tiles(image, boxes, folders, args.save_tiles, stem, source, rule.class_names)
    if not (args.figures or args.report or (args.figures is None and item.named)):
        return None, None
    mapped = rule.mapped_class(args.map_class, result)
    banner = verdicts.banner((stem.parent / item.path.name).as_posix(), result)
    column = rule.class_names.index(mapped)  # outlined where that class is called: the threshold is the second's
    outline = (rule.threshold if column == 1 else 1 - rule.threshold) if len(rule.class_names) == 2 else 0.5
    try:
        figure = draw_figure(image, banner, verdict_colour(result.verdict, rule.class_names), grid,
                             counted[:, column], outline, lines, rule.probability_label(mapped))
    except ImageError as failure:
        error(f"{item.path}: no figure: {failure}")
        return None, None
    if args.report:  # JPEG, small enough to send; marked with the path the page shows, not this computer's
        source = shown_path(item.path, stem)
    figure_path = free_path(args.report / "figures" if args.report else args.out, stem,
                            "_prediction.jpg" if args.report else "_prediction.png", source)
    save_figure(figure, figure_path, source, args.show)
    return figure_path, photo_area(figure, image.shape, grid is not None)


def check_folder_names(names, option):
    """Refuse class names that cannot be a folder's name inside `option`'s folder: a name from a model
    or a labels file such as ../../x or /x would send tiles outside it."""
    for name in names:
        if name in ("", ".", "..") or any(c in name for c in "/\\\0:") or name != name.strip():
            raise InputError(f"{option}: the class name {name!r} cannot be a folder's name (it holds a "
                             "path separator, or is . or ..); retrain with plain class names")


def output_stems(items):
    """{path: where its outputs go, relative}: the path below the folder it was found in, without
    its suffix; the folders above are added where two inputs would share a name."""
    stems = {path: path.relative_to(root).with_suffix("") if root else Path(path.stem) for path, _, root in items}
    for _ in range(8):
        taken = collections.Counter(stems.values())
        clashing = [path for path, stem in stems.items() if taken[stem] > 1]
        if not clashing:
            break
        for path in clashing:
            parts = path.resolve().with_suffix("").parts
            stems[path] = Path(*parts[max(1, len(parts) - len(stems[path].parts) - 1):])
    return stems


# ----------------------------------------------------------------------------------------------
# Which input an output shows, written inside it: a second run into the same folder replaces the
# outputs of the same input, and never those of another input that happens to have the same name.


def free_path(folder, name, ending, source):
    """folder/NAME+ENDING, or NAME_2+ENDING, NAME_3+ENDING ... if that file holds an output of another
    input than `source` (the ending stays last: list_images knows figures by it)."""
    candidate, n = folder / f"{name}{ending}", 2
    while candidate.exists() and source_of(candidate) != str(source):
        candidate, n = folder / f"{name}_{n}{ending}", n + 1
    return candidate


def with_source(data, source):
    """PNG or JPEG bytes with the input's path inside: an iTXt chunk, or a JPEG comment."""
    text = str(source).encode("utf-8", "surrogateescape")  # a name not UTF-8: its very bytes
    if data.startswith(b"\x89PNG"):
        body = b"iTXt" + b"Source\0\0\0\0\0" + text
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return data[:33] + chunk + data[33:]  # after the signature and the IHDR chunk
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]  # after SOI


def source_of(path):
    """The input path written into an output by with_source, or None."""
    try:
        data = Path(path).read_bytes()[:65536]
    except OSError:
        return None
    if data.startswith(b"\x89PNG"):
        start = data.find(b"iTXtSource\0")
        if start < 0:
            return None
        length = struct.unpack(">I", data[start - 4:start])[0]  # of the chunk's data, after "iTXt"
        return data[start + 15:start + 4 + length].decode("utf-8", "surrogateescape")
    start = data.find(b"\xff\xfe", 2, 64)
    if start != 2:
        return None
    length = struct.unpack(">H", data[4:6])[0]
    return data[6:4 + length].decode("utf-8", "surrogateescape")
