"""What a model says about a whole image: a photo cut into tiles, and the verdict its tiles give.

A model's kind (VerdictRule, built from its info by verdict_rule) decides the rest. A crack model
(Özgenel's Negative/ and Positive/) cuts an image of twice its tile or more into tiles of the
dataset's patch size (227 px) every half tile: that is the scale the training patches were cut at,
whereas shrinking the whole photo would make a crack thinner than a pixel. Its verdict is crack /
uncertain / no crack (judge_cracks), and a tile that fires only because of a long straight line (a
joint, an edge, a border) does not count (straight_lines).

Any other model classifies an image whole, resized as data_prep resized its training images, unless
predict's --tile asks for tiles; its verdict is the class most of its sure tiles show, or uncertain
(judge_classes).
"""

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from support.images import laplacian_magnitude, resize, smoother_than
from support.model_files import CRACK_CLASSES, PATCH_SIZE, is_crack_model, predicted_classes

UNFAMILIAR_SHARE = 0.5  # an image mostly smoother than the training images is outside what the model knows
# Straight lines (see straight_lines), in tile sides: a joint or an edge runs straight over a tile and
# a half; a crack rarely does. Gaps of up to half a tile are bridged, segments under a quarter are
# grain, and a line is taken out with 3 model pixels (11 photo pixels) either side.
LINE_MIN_TILES, LINE_GAP_TILES, LINE_PIECE_TILES, LINE_STRIP_TILES = 1.5, 0.5, 0.25, 3 / 64


@dataclass(frozen=True)
class VerdictRule:
    """What kind of model gives the verdicts: its classes and limits, and how its results are told
    (words, CSV columns, tile folders, the figure's label). One is built per model by verdict_rule."""
    class_names: tuple
    crack_model: bool
    threshold: float  # two classes: the second class's probability from which it is called
    sure_threshold: float  # a verdict below it is uncertain
    smooth_below: float  # a crack model's texture floor (images.smoother_than)
    tile: int  # predict's default tile in photo pixels; 0: images whole, as data_prep read them

    @property
    def verdicts(self):
        """Every verdict, in the order they are counted (terminal, report)."""
        return ["crack", "uncertain", "no crack"] if self.crack_model else [*self.class_names, "uncertain"]

    @property
    def labels(self):
        """What a tile of each class is called where a person reads it: the report's marks and their labels."""
        return ["no crack", "crack"] if self.crack_model else list(self.class_names)

    @property
    def tile_folders(self):
        """The folder of a saved tile of each class (predict --save-tiles)."""
        return ["no_crack", "crack"] if self.crack_model else list(self.class_names)

    @property
    def flagged(self):
        """(name, what they are) of the tiles a result counts ("flagged" and "share" of image_result)."""
        counted = "counted, and the share of the photo they cover."
        if self.crack_model:
            return "Flagged tiles", (f"the tiles whose crack probability reaches the threshold ({self.threshold}), "
                                     f"{counted} It says how much of the photo to look at, not how large a crack "
                                     "is: a tile with a hairline counts whole.")
        return "Tiles of its class", f"the tiles of the photo's class, {counted}"

    @property
    def report_title(self):
        return "Crack report" if self.crack_model else f"Report ({', '.join(self.class_names)})"

    @property
    def limits(self):
        """What the model cannot tell, said in the report's summary."""
        if self.crack_model:
            return ("The model points where to look; it does not diagnose: it learned bare concrete photographed at "
                    "phone scale, reads straight joints, grout and edges as cracks, misses fine cracks on other "
                    "surfaces, and a person on site decides (README, Limits).")
        return ("The model points where to look; it does not diagnose: it knows only the classes and surfaces it "
                "was trained on, and a person on site decides.")

    def mapped_class(self, chosen, result):
        """The class whose probability a figure maps: --map-class, else cracks, else the verdict's class."""
        return chosen or (CRACK_CLASSES[1] if self.crack_model else result["class"])

    def probability_label(self, mapped):
        return "p(crack)" if self.crack_model and mapped == CRACK_CLASSES[1] else f"p({mapped})"

    def csv_columns(self, compared=False):
        """predict --csv's columns: the crack model's (kept as they were), or a probability a class."""
        before = ["verdict_before", "probability_before", "changed"] if compared else []
        if self.crack_model:
            return ["path", "crack_probability", "verdict", "reason", "tiles", "cracked_tiles", "cracked_share",
                    "straight_line_tiles", *before, "figure", "error"]
        return ["path", "verdict", "reason", "probability", *(f"probability_{n}" for n in self.class_names),
                "tiles", "share", *before, "figure", "error"]

    def csv_values(self, result):
        """The columns of a result between path and the comparison, as csv_columns names them."""
        if self.crack_model:
            return [cut(result["probability"], 5), result["verdict"], result["reason"], result["tiles"],
                    result["flagged"], f"{result['share']:.4f}", result["straight_line_tiles"]]
        return [result["verdict"], result["reason"], cut(result["probability"], 5),
                *(cut(p, 5) for p in result["probabilities"].values()), result["tiles"], f"{result['share']:.4f}"]

    def tile_columns(self):
        """predict --tiles-csv's columns: a tile's box and probabilities."""
        extra = (["probability", "probability_with_straight_lines"] if self.crack_model
                 else [f"probability_{n}" for n in self.class_names])
        return ["image", "x", "y", "width", "height", *extra]

    def tile_values(self, counted, seen):
        """A tile's probabilities as tile_columns names them: what counted (and, for cracks, what the model saw)."""
        return [cut(counted[1], 5), cut(seen[1], 5)] if self.crack_model else [cut(v, 5) for v in counted]

    def summary(self, result):
        """(the main measure, [further phrases]) of a result, for predict's line and its figure's banner."""
        if self.crack_model:
            if result["tiles"] == 1:
                return f"crack probability {cut(result['probability'])}", []
            more = [f"flagged tiles: {result['flagged']} of {result['tiles']} ({result['share']:.1%} of the photo)"]
            if result["straight_line_tiles"]:
                more.append(f"{result['straight_line_tiles']} more fired only on long straight lines (joints, "
                            "edges): not counted")
            return f"highest tile probability {cut(result['probability'])}", more
        ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])
        if result["tiles"] == 1:
            return ", ".join(f"{name} {cut(p)}" for name, p in ranked), []
        counts = ", ".join(f"{name} {n}" for name, n in sorted(result["tile_classes"].items(), key=lambda i: -i[1]))
        return (f"highest {result['class']} tile probability {cut(result['probability'])}",
                [f"tiles by class: {counts} of {result['tiles']}",
                 f"{result['class']} on {result['share']:.1%} of the photo"])


def verdict_rule(info, threshold=None):
    """The VerdictRule of a model's info; `threshold` (--threshold) replaces its own."""
    threshold = info.get("threshold", 0.5) if threshold is None else threshold
    crack_model = is_crack_model(info)
    # A model saved before train.py calibrated its models has no sure threshold or texture floor.
    sure = info.get("sure_threshold", threshold)
    # Another model's tile is that of the boxes it was trained on, 0 (whole images) if none; models saved
    # before train.py kept its recipe said 227 for every model, whatever it was trained on.
    tile = info.get("patch_size", PATCH_SIZE) if crack_model else info.get("patch_size", 0) if "recipe" in info else 0
    return VerdictRule(tuple(info["class_names"]), crack_model, threshold,
                       max(threshold, sure) if crack_model else sure, info.get("smooth_below", 0.0), tile)


class PhotoTiles(NamedTuple):
    """A photo as classify_photo cut it: its verdict, each tile's box (x, y, side) in photo pixels, the
    tiles' probabilities that count and as the model saw them (tiles x classes), the straight lines."""
    result: dict
    grid: list
    counted: np.ndarray
    seen: np.ndarray
    lines: np.ndarray


def tiling(image, tile, stride):
    """(tile, stride) in the pixels an image was decoded at: as much smaller as a JPEG read reduced is
    (images.ReducedImage), so that a tile still covers the training patches' scale of the photo."""
    reduction = getattr(image, "reduction", 1)
    return max(1, round(tile / reduction)), max(1, round(stride / reduction))


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
    """(x, y, side) of every tile in photo pixels; square tiles, shrunk on a thin image (and their
    stride with them, so that the tiles still cover it)."""
    height, width = image.shape[:2]
    side, stride = tile_side_and_stride(image.shape, tile, stride)
    return [(x, y, side) for y in tile_starts(height, side, stride) for x in tile_starts(width, side, stride)]


def tile_side_and_stride(shape, tile, stride):
    side = min(tile, shape[0], shape[1])
    return side, max(1, round(stride * side / tile))


def model_scale(image, grid, size):
    """(resized, corners): the photo resized once so that a tile becomes size x size pixels, and each
    tile's top-left corner in it.

    Tiles are then cut by slicing, which costs next to nothing beside the model (the photo goes
    through images.resize, as a patch does; a tile's edge may shift by half a model pixel).
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
    """(tiles x classes) probabilities, batch_size tiles per model call."""
    return np.concatenate([classify(np.stack(tiles[start:start + batch_size]))
                           for start in range(0, len(tiles), batch_size)])


def tile_smoothness(resized, corners, size, floor):
    """images.smoother_than(tile, floor) for every tile, from one pass over the whole photo.

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


def judge_cracks(probabilities, smooth, rule):
    """(verdict, reason) for an image from its tiles' crack probabilities and which tiles are smoother
    than the model's texture floor (images.smoother_than).

    "crack" needs a tile at or above the model's sure threshold, where its validation calls were
    99.9% right; a tile between the threshold and that is weak evidence. And when most of the
    image is smoother than 99.5% of the training images, the model is outside what it learned,
    so its alarms there are "uncertain" too. Both limits are measured by train.py (calibrate).
    """
    if not np.any(probabilities >= rule.threshold):
        return "no crack", ""
    smooth_share = float(np.mean(smooth))
    if smooth_share >= UNFAMILIAR_SHARE:
        return "uncertain", (f"{smooth_share:.0%} of the image is smoother than 99.5% of the training images: a painted "
                             "surface, or photographed far closer than the dataset (a larger --tile may help)")
    if probabilities.max() < rule.sure_threshold:
        return "uncertain", f"weak evidence: no tile reaches {rule.sure_threshold:.2f}, the model's sure threshold"
    return "crack", ""


def judge_classes(probs, rule):
    """(verdict, reason) for an image from its tiles' class probabilities (n tiles x classes).

    A tile is sure when its class's probability reaches the model's sure threshold, from which its
    validation calls were 99.5% right (train.py measures it: evaluation.sure_cutoff). The verdict is
    the class most sure tiles show (for a patch: its class when sure); with no sure tile, it is uncertain.
    """
    predicted = predicted_classes(probs, rule.threshold)
    sure = probs[np.arange(len(probs)), predicted] >= rule.sure_threshold
    if not sure.any():
        where = "no tile reaches" if len(probs) > 1 else "below"
        return "uncertain", f"weak evidence: {where} {rule.sure_threshold:.2f}, the model's sure probability"
    return rule.class_names[np.bincount(predicted[sure], minlength=probs.shape[1]).argmax()], ""


def image_result(probs, smooth, rule, image_shape=None, grid=None, fired_on_lines=0):
    """The verdict and the figures that explain it, for one image from its tiles' probabilities
    (a patch: one tile, no grid). "flagged" and "share": the tiles at or above a crack model's
    threshold, or of the image's class, and the share of the image they cover. Not an area of crack:
    a tile flagged for a hairline counts whole (README, "Flagged tiles")."""
    names = rule.class_names
    result = {"tiles": len(probs), "probabilities": dict(zip(names, probs.max(axis=0).tolist()))}
    if rule.crack_model:
        verdict, reason = judge_cracks(probs[:, 1], smooth, rule)
        flagged, label = probs[:, 1] >= rule.threshold, 1
        result |= {"straight_line_tiles": fired_on_lines}
    else:
        verdict, reason = judge_classes(probs, rule)
        predicted = predicted_classes(probs, rule.threshold)
        label = names.index(verdict) if verdict in names else int(np.bincount(predicted, minlength=len(names)).argmax())
        flagged = predicted == label
        result |= {"class": names[label], "tile_classes": {name: int(np.sum(predicted == i)) for i, name in enumerate(names)}}
    share = covered_share(image_shape, grid, flagged) if grid else float(flagged[0])
    result |= {"verdict": verdict, "reason": reason, "probability": float(probs[:, label].max()),
               "flagged": int(flagged.sum()), "share": share}
    return result | {"summary": rule.summary(result)}


# Changes of verdict from an older model to a newer (predict --compare-with), the worst first.
LOSSES = ["crack -> no crack", "crack -> uncertain", "uncertain -> no crack"]


def verdict_change(result):
    """'crack -> no crack' where the older model's verdict (result["before"]) differs, else ''."""
    before = result.get("before") or result
    return f"{before['verdict']} -> {result['verdict']}" if before["verdict"] != result["verdict"] else ""


def change_rank(result):
    """Where a change of verdict sorts: lost cracks first, then any other change."""
    change = verdict_change(result)
    return LOSSES.index(change) if change in LOSSES else len(LOSSES)


def patch_results(batch, classify, rule):
    """The result of each patch-sized image of a batch, already fitted to the model's input."""
    smooth = smoother_than(batch, rule.smooth_below) if rule.crack_model else [None] * len(batch)
    return [image_result(probs[None], np.array([flat]), rule) for probs, flat in zip(classify(batch), smooth)]


def cut(p, decimals=3):
    """A probability as text, cut rather than rounded: 0.98968 is not shown as 0.990, which would
    seem to reach a 0.99 threshold that it missed. The one cutting of the terminal, the CSVs (to 5
    decimals, whose first 3 are then what the figure and the report show), figures and report."""
    scale = 10 ** decimals
    return f"{np.floor((p + 1e-9) * scale) / scale:.{decimals}f}"  # 1e-9: 0.29 * 1000 is 289.99999999999997


def banner(name, result):
    """The lines above a figure: the photo's name and verdict, the measure, why, and more."""
    main_measure, more = summary(result)
    return [f"{name}: {result['verdict'].upper()}, {main_measure}", *filter(None, [result["reason"]]), *more]


def summary(result):
    """(the main measure, [further phrases]) of a result, as its model's kind words it (VerdictRule.summary)."""
    return result["summary"]


def classify_photo(image, classify, size, tile, stride, batch_size, rule):
    """The PhotoTiles of a photo: its result, its tiles and their probabilities.

    For a crack model, a tile that fires only because of a long straight line (see straight_lines)
    does not count: its crack probability becomes that of the tile with the lines taken out
    (without_straight_lines), if lower. The lines are returned in photo pixels, for the figure.
    """
    grid = tile_grid(image, tile, stride)
    resized, corners = model_scale(image, grid, size)
    seen = classify_in_batches(classify, [resized[y:y + size, x:x + size] for x, y in corners], batch_size)
    if not rule.crack_model:
        return PhotoTiles(image_result(seen, None, rule, image.shape, grid), grid, seen, seen, np.zeros((0, 4)))
    counted, used = seen.copy(), np.zeros((0, 4), np.float32)
    fired = seen[:, 1] >= rule.threshold
    lines = straight_lines(resized, size) if fired.any() else used
    crossing = {}  # fired tile -> the lines through it
    for i in np.flatnonzero(fired):
        through = [line for line in lines if crosses(line, corners[i], size)]
        if through:
            crossing[i] = np.array(through)
    if crossing:
        crossed = list(crossing)
        line_free = classify_in_batches(classify, [without_straight_lines(resized, corners[i], crossing[i], size)
                                                   for i in crossed], batch_size)
        counted[crossed] = np.where(line_free[:, 1:] < seen[crossed, 1:], line_free, seen[crossed])  # never add one
        used = np.unique(np.concatenate(list(crossing.values())), axis=0)
    on_lines = int(np.sum(fired & (counted[:, 1] < rule.threshold)))
    smooth = tile_smoothness(resized, corners, size, rule.smooth_below)
    result = image_result(counted, smooth, rule, image.shape, grid, on_lines)
    return PhotoTiles(result, grid, counted, seen, used * (grid[0][2] / size))


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
    return np.array([line for line in proposed if share_along(segments, line) >= 0.5], np.float32).reshape(-1, 4)


def share_along(segments, line):
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


def covered_share(image_shape, grid, chosen):
    """Fraction of the photo covered by at least one chosen tile."""
    covered = np.zeros(image_shape[:2], bool)
    for (x, y, s), flag in zip(grid, chosen):
        if flag:
            covered[y:y + s, x:x + s] = True
    return float(covered.mean())
