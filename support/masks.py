"""Labels from crack masks: a labels file of boxes the size of predict.py's tiles, for data_prep.

    python -m support.masks site/images site/masks --tile 64 --out site_labels.csv
    python data_prep.py --src dataset/ --src site_labels.csv --out cache_site

A mask is an image beside each photo with the same name (any image type, e.g. masks/IMG_1.png for
images/IMG_1.jpg), white (255) where the photo shows a crack. Any other value, black or grey (a
drawn joint, say), is not crack. The photo is cut into tiles of predict.py's --tile every quarter
tile, twice as densely as predict cuts it: each crack is learnt at more places in a tile, which
lifted both sites measured (docs/EXPERIMENTS.md, "Whole sites"). A tile becomes a box labelled
"crack" when enough of it is crack (a line at least a quarter of the tile long, however wide the
mask draws it), "no crack" when none of it is, and is left out in between: a tile that only grazes
a crack is neither a clear example of one nor of a clean surface.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from support import atomic_files, runner
from support.errors import InputError
from support.images import IMAGE_EXTENSIONS, ImageError, decode_image, list_images
from support.labels import COLUMNS
from support.model_files import PATCH_SIZE
from support.opencv import cv2
from support.photos import MIN_TILE, densest_stride, tile_grid

CRACK_VALUE = 255  # a mask's crack pixels; others (0, or a grey for joints) are not crack
MIN_CRACK_LENGTH = 0.25  # of a tile's side: a shorter piece of crack in a tile leaves it out
STEP = 0.25  # between tiles, of a tile's side (predict.py's: 0.5)
# The densest --stride is photos.MIN_STEP of a tile's side: the densest measured (docs/EXPERIMENTS.md, every
# eighth of a tile). Rows grow with the square of 1/stride: --stride 1 made a 130 MB file and took 718 MB.


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, help="folder of photos (searched recursively)")
    parser.add_argument("masks", type=Path, help="folder of masks, each named like its photo")
    parser.add_argument("--out", type=Path, required=True, help="labels CSV to write (a new file)")
    parser.add_argument("--tile", type=int, default=PATCH_SIZE,
                        help="tile side in photo pixels, as predict.py's --tile (default: 227)")
    parser.add_argument("--stride", type=int, help="step between tiles (default: a quarter of a tile)")
    args = parser.parse_args(argv)
    if args.tile < MIN_TILE or (args.stride is not None and args.stride < 1):
        parser.error(f"--tile must be at least {MIN_TILE} and --stride at least 1")
    densest = densest_stride(args.tile)
    if args.stride is not None and args.stride < densest:
        parser.error(f"--stride must be at least an eighth of --tile ({densest} px): denser grids label the same "
                     "cracks again and again")
    args.stride = args.stride or max(1, round(args.tile * STEP))
    return args


def find_mask(photo, images, masks):
    """The mask of a photo: the same path below masks/, with any image extension."""
    stem = masks / photo.relative_to(images).with_suffix("")
    suffixes = [case(ext) for ext in sorted(IMAGE_EXTENSIONS) for case in (str.lower, str.upper)]
    return next((stem.with_suffix(suffix) for suffix in suffixes if stem.with_suffix(suffix).is_file()), None)


def crack_pixels(mask_path, shape):
    """A boolean crack map of a mask, checked against its photo's size."""
    mask = decode_image(mask_path)[..., 0]  # a grey mask: its three channels are the same
    if mask.shape != shape[:2]:
        raise ImageError(f"is {mask.shape[1]}x{mask.shape[0]} px, its photo {shape[1]}x{shape[0]}")
    return mask == CRACK_VALUE


def crack_width(cracks):
    """The typical width of a mask's cracks in pixels: twice the distance from their middle line to
    their edge, less the middle pixel (1 for a line drawn 1 px wide)."""
    distance = cv2.distanceTransform(np.uint8(cracks), cv2.DIST_L2, 5)
    ridge = cracks & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)))  # the middle lines
    return max(1.0, 2 * float(np.median(distance[ridge])) - 1) if ridge.any() else 1.0


def tile_labels(cracks, grid):
    """[(x, y, side, label)] for the tiles that are clearly cracked or clean."""
    counts = cv2.integral(np.uint8(cracks))  # crack pixels of any box in four lookups
    width, rows = crack_width(cracks), []
    for x, y, side in grid:
        inside = counts[y + side, x + side] - counts[y, x + side] - counts[y + side, x] + counts[y, x]
        if inside == 0:
            rows.append((x, y, side, "no crack"))
        elif inside >= MIN_CRACK_LENGTH * side * width:  # pixels of a crack that long
            rows.append((x, y, side, "crack"))
    return rows


def labels_from_masks(images, masks, tile, stride, out):
    """The rows of the labels file (paths relative to it), and [(photo, reason)] for photos skipped."""
    rows, skipped = [], []
    for photo in list_images(images):
        mask = find_mask(photo, images, masks)
        if mask is None:
            skipped.append((photo, f"no mask in {masks}"))
            continue
        try:
            image = decode_image(photo)
            cracks = crack_pixels(mask, image.shape)
        except ImageError as error:
            skipped.append((photo, str(error)))
            continue
        path = Path(os.path.relpath(photo.resolve(), out.resolve().parent))
        rows += [(path.as_posix(), x, y, side, side, label)
                 for x, y, side, label in tile_labels(cracks, tile_grid(image, tile, stride))]
    return rows, skipped


def main(argv=None):
    args = parse_args(argv)
    for folder in (args.images, args.masks):
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder")
    if args.out.exists():  # labels marked by hand look just the same: never replaced
        raise InputError(f"--out {args.out} exists; give a new file name")
    rows, skipped = labels_from_masks(args.images, args.masks, args.tile, args.stride, args.out)
    for photo, reason in skipped:
        print(f"skipped {photo}: {reason}", file=sys.stderr)
    if not rows:
        raise InputError(f"no tile of any photo in {args.images} could be labelled")
    atomic_files.write_csv(args.out, COLUMNS, rows)
    cracked = sum(row[-1] == "crack" for row in rows)
    print(f"wrote {args.out}: {cracked} crack and {len(rows) - cracked} no crack tiles of {args.tile} px "
          f"from {len({row[0] for row in rows})} photos")


if __name__ == "__main__":
    runner.run_script(main, "no labels file was written")
