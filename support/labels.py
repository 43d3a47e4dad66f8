"""A labels file as a data_prep source: boxes in photos, each with its class.

    path,x,y,width,height,label
    site/IMG_0001.jpg,1130,452,227,227,Negative
    /data/survey/IMG_0002.jpg,0,227,227,227,crack

path is relative to the CSV's folder, or absolute; the box is in the upright photo's pixels (as
predict.py's --tiles-csv and figures show them); label is a class name, and for a crack model
"crack" and "no crack" stand for Positive and Negative. predict.py's report writes such a file
when you mark tiles; you can also write one by hand, or from a segmentation mask.

Each box is cut from its photo with predict.py's decoding and resizing (photos.model_scale), so the
model learns from exactly the pixels it judged.
"""

import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from support.errors import InputError
from support.images import ImageError, decode_image, fit_to_model
from support.crack_rules import ALIASES, classes_named
from support.model_files import CRACK_CLASSES
from support.photos import MIN_TILE, model_scale

COLUMNS = ["path", "x", "y", "width", "height", "label"]
# A box of fewer pixels a side is refused: predict cuts no smaller tile (photos.MIN_TILE), the 64 px model
# would see it enlarged beyond twice, and the photo is enlarged with it (a 1 x 1 box asked for 40 GB).
MIN_BOX = MIN_TILE


def is_labels_file(path):
    return path.suffix.lower() == ".csv"


def read_labels(path):
    """[(photo path, (x, y, width, height), label)] from a labels CSV; InputError if it is bad."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:  # names as predict wrote
            reader = csv.DictReader(f)
            if not set(COLUMNS) <= set(reader.fieldnames or []):
                raise InputError(f"{path} is not a labels file: it needs the columns {','.join(COLUMNS)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:  # csv.Error: e.g. a cell beyond csv's field limit
        raise InputError(f"cannot read labels {path}: {getattr(error, 'strerror', None) or error}")
    labels, there = [], set()
    for line, row in enumerate(rows, start=2):
        try:
            box = tuple(int(float(row[key])) for key in ("x", "y", "width", "height"))
        except (TypeError, ValueError, OverflowError):  # OverflowError: inf, 1e400
            raise InputError(f"{path}, line {line}: x, y, width and height must be numbers") from None
        photo, label = Path(row["path"] or ""), (row["label"] or "").strip()
        if not label or not (row["path"] or "").strip():
            raise InputError(f"{path}, line {line}: the {'label' if not label else 'path'} is blank")
        found = photo if photo.is_absolute() else path.parent / photo
        if found not in there:  # a photo of many boxes looked for once
            if not found.is_file():
                where = "" if photo.is_absolute() else \
                    f" (read relative to the labels file's folder {Path(os.path.abspath(path.parent))})"
                missing = "is not a file" if found.exists() else "does not exist"
                raise InputError(f"{path}, line {line}: photo {photo}{where} {missing}")
            there.add(found)
        labels.append((found, box, label))
    if not labels:
        raise InputError(f"{path} holds no labelled boxes")
    return labels


def class_names(labels):
    """The classes a labels file names, sorted; the crack model's when they are all its
    (crack_rules.classes_named)."""
    names = {label for _, _, label in labels}
    return classes_named(names) or sorted(names)


def cut_boxes(path, classes, size):
    """(class names, {class name: [(name for meta.json, size x size x 3 uint8)]}) for a labels file,
    every photo decoded once; classes None: the ones the file names. Raises InputError, before
    anything is written, on an unknown label, a missing or unreadable photo, or a box outside it."""
    labels = read_labels(path)
    classes = classes or class_names(labels)
    known = {name.lower(): name for name in classes} | {alias: target for alias, target in ALIASES.items()
                                                         if target in classes}
    if len(classes) < 2:
        raise InputError(f"{path} labels boxes of one class only ({', '.join(classes)}); a model needs two")
    by_photo, seen = {}, {}
    for photo, box, label in labels:
        if min(box[2:]) < MIN_BOX:
            raise InputError(f"{path}: box {','.join(map(str, box))} of {photo} is smaller than {MIN_BOX} px "
                             "a side, predict's smallest tile: too little of the photo for the model")
        if label.lower() not in known:
            raise InputError(f"{path}: unknown label {label!r} for {photo} (the classes are "
                             f"{', '.join(classes)}{'; crack and no crack also work' if classes == CRACK_CLASSES else ''})")
        name = seen.setdefault((photo.resolve(), box), known[label.lower()])
        if name != known[label.lower()]:
            raise InputError(f"{path}: box {','.join(map(str, box))} of {photo} is labelled both {name} "
                             f"and {known[label.lower()]}")
        by_photo.setdefault(photo, []).append((box, name))
    cut, store = {name: [] for name in classes}, StoredTiles()
    for photo, boxes in by_photo.items():
        try:
            image = decode_image(photo)
        except ImageError as error:
            raise InputError(f"{path}: photo {photo}: {error}")
        height, width = image.shape[:2]
        for (x, y, w, h), name in boxes:
            if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
                raise InputError(f"{path}: box {x},{y},{w},{h} is outside {photo} ({width}x{height} px)")
        stored = [None] * len(boxes)
        try:
            for i, tile in model_inputs(image, [box for box, _ in boxes], size):
                stored[i] = store.add(tile)
        except ImageError as error:  # e.g. enlarged over the pixel limit
            raise InputError(f"{path}: photo {photo}: {error}")
        del image
        for ((box, name), tile) in zip(boxes, stored):
            cut[name].append((f"{photo}#{','.join(map(str, box))}", tile))
    return classes, cut


class StoredTiles:
    """Boxes cut from photos, kept in a temporary file until the cache takes them, not in memory:
    97,500 boxes of one photo held took 2.1 GB. The file goes with the process (tempfile)."""

    def __init__(self):
        self.file, self.count = tempfile.TemporaryFile(), 0

    def add(self, tile):
        data = np.ascontiguousarray(tile).tobytes()
        self.file.seek(0, 2)
        self.file.write(data)
        self.count += 1
        return StoredTile(self.file, self.file.tell() - len(data), tile.shape)


class StoredTile:
    """One box of StoredTiles: read back as an array wherever numpy takes one (np.asarray, np.stack)."""

    def __init__(self, file, offset, shape):
        self.file, self.offset, self.shape = file, offset, shape

    def __array__(self, dtype=None, copy=None):
        self.file.seek(self.offset)
        tile = np.frombuffer(self.file.read(int(np.prod(self.shape))), np.uint8).reshape(self.shape)
        return tile if dtype is None else tile.astype(dtype)


def common_tile(names):
    """The side of the boxes cut (names as cut_boxes gives them) when all are squares of one size: the
    tile predict.py cut them at, which a model fine-tuned on them should use too; else None."""
    shapes = {tuple(name.rsplit("#", 1)[1].split(",")[2:]) for name in names}
    return int(shapes.pop()[0]) if len(shapes) == 1 and len(set(next(iter(shapes)))) == 1 else None


def model_inputs(image, boxes, size):
    """(index, tile) for each box, as predict.py feeds it to the model, one at a time (never all held):
    square tiles through the photo resized once per tile side (photos.model_scale), any other box
    resized alone."""
    for side in sorted({w for _, _, w, h in boxes if w == h}):
        chosen = [i for i, (_, _, w, h) in enumerate(boxes) if w == h == side]
        resized, corners = model_scale(image, [(boxes[i][0], boxes[i][1], side) for i in chosen], size)
        for i, (cx, cy) in zip(chosen, corners):
            yield i, resized[cy:cy + size, cx:cx + size]
        del resized
    for i, (x, y, w, h) in enumerate(boxes):
        if w != h:
            yield i, fit_to_model(image[y:y + h, x:x + w], size)
