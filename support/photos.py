"""A photo cut into tiles and classified: the tile grid, the photo at the model's scale, and the
long straight lines that a crack model does not take for cracks.

A crack model (Özgenel's Negative/ and Positive/) cuts an image of twice its tile or more into tiles
of its size (227 px for the bundled one, the dataset's patch; or --tile) every half tile: that is the
scale the training patches were cut at, whereas shrinking the whole photo would make a crack thinner
than a pixel. A tile that fires only because of a long straight line (a joint, an edge, a border)
does not count (straight_lines).

Any other model classifies an image whole, resized as data_prep resized its training images, unless
predict's --tile asks for tiles. The verdict the tiles give is verdicts.image_result's.
"""

from typing import NamedTuple

import numpy as np

from support.images import MAX_PIXELS, ImageError, laplacian_magnitude, resize, smoother_than
from support.opencv import cv2
from support.verdicts import image_result

# A tile smaller than the model's input enlarges the photo: up to 2x for the 64 px model, and no more
# than 4x for any; a crack needs no more (README, "Correct it on your site").
MIN_TILE = 32
# Straight lines (see straight_lines), in tile sides: a joint or an edge runs straight over a tile and
# a half; a crack rarely does. Gaps of up to half a tile are bridged, segments under a quarter are
# grain, and a line is taken out with 3 model pixels (11 photo pixels) either side.
LINE_MIN_TILES, LINE_GAP_TILES, LINE_PIECE_TILES, LINE_STRIP_TILES = 1.5, 0.5, 0.25, 3 / 64


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
    width, height = round(image.shape[1] * scale), round(image.shape[0] * scale)
    if width * height > MAX_PIXELS:  # small tiles enlarge the photo: it stays under the pixel limit too
        raise ImageError(f"at tiles of {side} px it would be enlarged to {width}x{height} px, over the limit of "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels (a larger tile, or a smaller photo)")
    resized = resize(image, width, height)
    height, width = resized.shape[:2]
    if min(height, width) < size:  # a thin photo rounded down: pad the last row or column
        resized = cv2.copyMakeBorder(resized, 0, max(0, size - height), 0, max(0, size - width), cv2.BORDER_REPLICATE)
        height, width = resized.shape[:2]
    corners = np.array([(min(round(x * scale), width - size), min(round(y * scale), height - size)) for x, y, _ in grid])
    return resized, corners


def classify_in_batches(classify, tiles, batch_size):
    """((tiles x classes) probabilities, which tiles are far from the training images), batch_size
    tiles per model call."""
    parts = [classify(np.stack(tiles[start:start + batch_size])) for start in range(0, len(tiles), batch_size)]
    return np.concatenate([probs for probs, _ in parts]), np.concatenate([far for _, far in parts])


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


def patch_results(batch, classify, rule):
    """The result of each patch-sized image of a batch, already fitted to the model's input."""
    probs, far = classify(batch)
    smooth = smoother_than(batch, rule.smooth_below)
    return [image_result(p[None], s[None], rule, far=f[None]) for p, s, f in zip(probs, smooth, far)]


def classify_photo(image, classify, size, tile, stride, batch_size, rule):
    """The PhotoTiles of a photo: its result, its tiles and their probabilities.

    For a crack model, a tile that fires only because of a long straight line (see straight_lines)
    does not count: its crack probability becomes that of the tile with the lines taken out
    (without_straight_lines), if lower. The lines are returned in photo pixels, for the figure.
    """
    grid = tile_grid(image, tile, stride)
    resized, corners = model_scale(image, grid, size)
    seen, far = classify_in_batches(classify, [resized[y:y + size, x:x + size] for x, y in corners], batch_size)
    smooth = tile_smoothness(resized, corners, size, rule.smooth_below)
    if not rule.crack_model:
        result = image_result(seen, smooth, rule, image.shape, grid, far=far)
        return PhotoTiles(result, grid, seen, seen, np.zeros((0, 4)))
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
        line_free, _ = classify_in_batches(classify, [without_straight_lines(resized, corners[i], crossing[i], size)
                                                      for i in crossed], batch_size)
        counted[crossed] = np.where(line_free[:, 1:] < seen[crossed, 1:], line_free, seen[crossed])  # never add one
        used = np.unique(np.concatenate(list(crossing.values())), axis=0)
    on_lines = int(np.sum(fired & (counted[:, 1] < rule.threshold)))
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
