"""The report's notes.csv as a data_prep source: the inspector's verdict on each photo reviewed.

    path,model_verdict,inspector_verdict,note,marked_tiles,tile
    /survey/IMG_0001.jpg,crack,no crack,joints of the paving,0,227
    /survey/IMG_0002.jpg,crack,crack,,0,227
    /survey/IMG_0003.jpg,crack,,,0,227

A verdict is the cheapest label there is: the inspector reviews every flagged photo anyway. Each
photo reviewed is cut into tiles on predict's grid at the report's tile (the `tile` column; 227 px,
the bundled model's, when it is missing), with predict's decoding and resizing (labels.model_inputs):

- "no crack": every tile is a no crack image, split like any labelled box; the ones the model
  flagged are the false alarms to clear, and train.py learns from those (support/bags.py);
- "crack": some tile holds a crack, but which is not said. The photo's tiles travel together as a
  bag; train.py learns from the bag's most crack-like tiles and checks that the photo still reads as
  crack.

Photos, not tiles, are split: a photo's tiles are all in training or all set aside for validation
(the --split's validation share of each verdict's photos, one at least from four photos up), so that
the photos set aside say how fine-tuning does on photos it never saw (tiles of one photo on both sides
would tell what it remembers). meta.json's "bags" names each training and validation row's photo.

Photos without an inspector verdict are left out.
"""

import csv
import dataclasses
from pathlib import Path

import numpy as np

from support.errors import InputError
from support.images import ImageError, decode_image
from support.labels import StoredTiles, model_inputs
from support.model_files import CRACK_CLASSES, PATCH_SIZE
from support.photos import MIN_TILE, is_photo, tile_grid

COLUMNS = ["path", "inspector_verdict"]
VERDICTS = {"crack": "Positive", "no crack": "Negative"}


def is_notes_file(path):
    """A CSV whose header names inspector_verdict (a labels file names x, y, width, height, label)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return "inspector_verdict" in next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def read_notes(path):
    """[(photo path, class name, tile)] for the photos given a verdict; InputError if it is bad."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not set(COLUMNS) <= set(reader.fieldnames or []):
                raise InputError(f"{path} is not a notes file: it needs the columns {','.join(COLUMNS)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read notes {path}: {getattr(error, 'strerror', None) or error}")
    reviewed = {}
    for line, row in enumerate(rows, start=2):
        verdict = (row["inspector_verdict"] or "").strip().lower()
        if not verdict:
            continue
        if verdict not in VERDICTS:
            raise InputError(f"{path}, line {line}: inspector_verdict must be crack, no crack or blank, "
                             f"not {verdict!r:.40}")
        try:
            tile = int(float(row.get("tile") or PATCH_SIZE))
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{path}, line {line}: tile must be a number of pixels") from None
        if tile != 0 and tile < MIN_TILE:  # 0: predict read its images whole (--tile 0)
            raise InputError(f"{path}, line {line}: tile must be 0 (images whole) or at least {MIN_TILE} px")
        photo = Path(row["path"] or "")
        photo = photo if photo.is_absolute() else path.parent / photo
        if reviewed.setdefault(photo.resolve(), (photo, VERDICTS[verdict], tile)) != (photo, VERDICTS[verdict], tile):
            raise InputError(f"{path}, line {line}: {photo} is given two verdicts or tiles")
    if not reviewed:
        raise InputError(f"{path} gives no photo a verdict (inspector_verdict is blank on every row)")
    return list(reviewed.values())


@dataclasses.dataclass
class Reviewed:
    """The photos of every notes file read, and which of them each tile was cut from."""
    photos: list = dataclasses.field(default_factory=list)  # their paths
    cracked: list = dataclasses.field(default_factory=list)  # each photo's verdict: crack (True) or no crack
    photo_of: dict = dataclasses.field(default_factory=dict)  # tile name -> index into photos

    def split_of(self, val_share, seed):
        """{tile name: "train" or "val"}: each verdict's photos split, seeded, whole photos on each side."""
        rng, held = np.random.default_rng(seed), set()
        for verdict in (True, False):
            photos = [i for i, cracked in enumerate(self.cracked) if cracked == verdict]
            count = max(1, round(len(photos) * val_share)) if len(photos) >= 4 else 0
            held |= {photos[i] for i in rng.permutation(len(photos))[:count]}
        return {key: "val" if photo in held else "train" for key, photo in self.photo_of.items()}


def cut_photos(path, classes, size, reviewed):
    """{class name: [(name for meta.json, size x size x 3 uint8)]}: every photo given a verdict cut
    into predict's tiles, and added to reviewed. Raises InputError, before anything is written, on a
    missing or unreadable photo, or classes other than a crack model's."""
    if list(classes or CRACK_CLASSES) != CRACK_CLASSES:
        raise InputError(f"{path} gives crack / no crack verdicts; the classes are {', '.join(classes)}")
    cut, store = {name: [] for name in CRACK_CLASSES}, StoredTiles()  # 100 phone photos: 85,000 tiles
    for photo, name, tile in read_notes(path):
        try:
            image = decode_image(photo)
            height, width = image.shape[:2]
            # predict classifies an image of under two tiles whole; a larger one every half tile
            boxes = ([(x, y, side, side) for x, y, side in tile_grid(image, tile, max(1, tile // 2))]
                     if is_photo(image, tile) else [(0, 0, width, height)])
            stored = dict((i, store.add(pixels)) for i, pixels in model_inputs(image, boxes, size))
        except ImageError as error:
            raise InputError(f"{path}: photo {photo}: {error}")
        del image
        for i, box in enumerate(boxes):
            key = f"{photo}#{','.join(map(str, box))}"
            cut[name].append((key, stored[i]))
            reviewed.photo_of[key] = len(reviewed.photos)
        reviewed.photos.append(str(photo))
        reviewed.cracked.append(name == "Positive")
    return cut
