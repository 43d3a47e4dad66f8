"""A photo cut into tiles and classified: the tile grid and the photo at the model's scale.

An image of twice the tile or more is cut into tiles of that size (--tile, else the model's: the boxes
it was trained on; for a crack model the dataset's patch, 227 px) every half tile: that is the scale
the training images were cut at, whereas shrinking the whole photo would make a crack thinner than a
pixel. A model trained on whole images classifies an image whole, resized as data_prep resized its
training images, unless --tile asks for tiles. The verdict the tiles give is verdicts.image_result's,
after the model's rules set aside what it does not count (a crack model: long straight lines,
support/crack_rules.py).
"""

from typing import NamedTuple

import numpy as np

from support.images import MAX_PIXELS, ImageError, laplacian_magnitude, resize, smoother_than
from support.opencv import cv2
from support.verdicts import Result, image_result

# A tile smaller than the model's input enlarges the photo: up to 2x for the 64 px model, and no more
# than 4x for any; a crack needs no more (docs/GUIDE.md, "Choosing the tile").
MIN_TILE = 32
# The densest stride, of a tile's side (predict's --stride, and support/masks.py's). Tiles grow with the
# square of tile / stride. A 12 MP photo (4000 x 3000) in 227 px tiles, whole runs of predict.py on two busy
# cores: every half tile (the default) 910 tiles in 4.3 s, every eighth 13,736 in 9.5 s, every 8 px 164,604
# in 104 s; --stride 1 would be 10.5 million, about two hours at that rate and gigabytes of tile boxes, for
# tiles that only repeat each other (every eighth is the densest docs/EXPERIMENTS.md measured, for masks.py).
MIN_STEP = 1 / 8


class PhotoTiles(NamedTuple):
    """A photo as classify_photo cut it: its verdict, each tile's box (x, y, side) in photo pixels, the
    tiles' probabilities that count and as the model saw them (tiles x classes), the straight lines."""
    result: Result
    grid: list
    counted: np.ndarray
    seen: np.ndarray
    lines: np.ndarray


def tiling(image, tile, stride):
    """(tile, stride) in the pixels an image was decoded at: as much smaller as a JPEG read reduced is
    (images.ReducedImage), so that a tile still covers the training patches' scale of the photo."""
    reduction = getattr(image, "reduction", 1)
    return max(1, round(tile / reduction)), max(1, round(stride / reduction))


def densest_stride(tile):
    """The smallest stride between tiles of `tile` px (MIN_STEP)."""
    return max(1, round(tile * MIN_STEP))


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

    The model's rules may set some tiles' evidence aside (VerdictRule.set_aside: a crack model's tiles
    that fire only on a long straight line); the lines are returned in photo pixels, for the figure.
    """
    grid = tile_grid(image, tile, stride)
    resized, corners = model_scale(image, grid, size)
    seen, far = classify_in_batches(classify, [resized[y:y + size, x:x + size] for x, y in corners], batch_size)
    smooth = tile_smoothness(resized, corners, size, rule.smooth_below)
    counted, lines, set_aside = rule.set_aside(resized, corners, size, seen, rule,
                                               lambda tiles: classify_in_batches(classify, tiles, batch_size)[0])
    result = image_result(counted, smooth, rule, image.shape, grid, set_aside, far)
    return PhotoTiles(result, grid, counted, seen, lines * (grid[0][2] / size))
