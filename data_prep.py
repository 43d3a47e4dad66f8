"""Turn a folder of labelled images into cached numpy arrays for train.py.

Every sub-folder of --src is a class, named after the folder (sorted, or as --classes orders
them). Özgenel's "Concrete Crack Images for Classification" unpacks to Negative/ and Positive/:
the crack model's two classes (0 = no crack, 1 = crack).

    python data_prep.py --src dataset/                   # writes cache/
    python data_prep.py --src sample_data/ --size 64 --out demo/cache
    python data_prep.py --src dataset/ --src my_site/    # merge your own labelled images
    python data_prep.py --src surfaces/ --classes clean,crack,stain
    python data_prep.py --src dataset/ --src labels.csv  # boxes marked in predict's report (support/labels.py)
    python data_prep.py --src dataset/ --src notes.csv   # the report's verdicts per photo (support/notes.py)

Images are found recursively below each class folder. Each is decoded to RGB, resized to
--size x --size (thin cracks kept dark: support/images.py), kept as uint8 and split, stratified
and seeded, into train/val/test, each --src on its own so every source is split the same way.
The cache holds {train,val,test}_{x,y}.npy, meta.json (class names, sizes, counts, the source
file of every row, skipped files) and examples.png (a grid of labelled samples).
"""

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np

from model import INPUT_SIZE, MIN_INPUT_SIZE  # the sizes the network takes (model.py imports no TensorFlow)
from support import cache, labels, notes, output_folders, runner
from support.errors import InputError
from support.images import IMAGE_EXTENSIONS, list_images
from support.model_files import CRACK_CLASSES
from model import SEED  # train.py's too (the knobs stand in model.py)
from support.cache import decode_into, write_labels_and_meta
from support.plots import save_examples

DEFAULT_SPLIT = (0.70, 0.24, 0.06)
SPLITS = cache.SPLITS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, required=True, action="append",
                        help="folder with one sub-folder of images per class, a labels .csv of boxes in "
                             "photos, or a report's notes.csv of verdicts per photo; repeat to merge several")
    parser.add_argument("--classes", type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
                        help="class folders to use, comma-separated, in label order (default: all, sorted)")
    parser.add_argument("--out", type=Path, default=Path("cache"), help="cache folder to write (default: cache)")
    parser.add_argument("--size", type=int, default=INPUT_SIZE,
                        help=f"image side in pixels (default: {INPUT_SIZE}, the network's)")
    parser.add_argument("--split", type=parse_split, default=DEFAULT_SPLIT, help="train:val:test (default: 70:24:6)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed of the split (default: {SEED})")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="decoding processes (default: all cores)")
    args = parser.parse_args(argv)
    if args.size < MIN_INPUT_SIZE:
        parser.error(f"--size must be at least {MIN_INPUT_SIZE} (the smallest side the network accepts, model.py)")
    if args.seed < 0:
        parser.error("--seed must be 0 or more")
    if args.classes and len({c.lower() for c in args.classes}) < len(args.classes):
        parser.error("--classes names a folder twice (folders are matched in any letter case)")
    return args


def parse_split(text):
    parts = [float(p) for p in text.split(":")]
    if len(parts) != 3 or not all(map(math.isfinite, parts)) or min(parts) < 0 or min(parts[:2]) <= 0:
        raise argparse.ArgumentTypeError("expected three numbers like 70:24:6, train and validation above 0")
    return tuple(p / sum(parts) for p in parts)


def find_class_folders(src, classes=None):
    """{class name: folder} for the class sub-folders of src, names matched in any letter case."""
    if src.is_file():
        raise InputError(f"--src {src} is a file; give the folder that holds one sub-folder per class")
    if not src.is_dir():
        what = "labels file" if labels.is_labels_file(src) else "source folder"  # e.g. saved as "labels (1).csv"
        raise InputError(f"{what} {src} does not exist")
    folders = output_folders.folders_not_ours(src)  # e.g. train.py --out dataset/models: its figures are no class
    by_lower = {name.lower(): folder for name, folder in folders.items()}
    if len(by_lower) < len(folders):  # cat/ and Cat/
        twins = ", ".join(sorted(name for name in folders if [n.lower() for n in folders].count(name.lower()) > 1))
        raise InputError(f"{src} has folders whose names differ only in letter case ({twins}): "
                         "merge or rename them")
    typed = classes is not None
    if typed and len(classes) < 2:
        raise InputError(f"--classes {','.join(classes)} names one class, a model needs at least two "
                         f"(sub-folders of {src}: {', '.join(sorted(folders)) or 'none'})")
    if not typed:
        classes = sorted(folders, key=lambda name: (name.lower(), name))
    if [c.lower() for c in classes] == [c.lower() for c in CRACK_CLASSES]:
        classes, typed = CRACK_CLASSES, False  # Özgenel's folders in any letter case: the crack model's names
    missing = [name for name in classes if name.lower() not in by_lower]
    if missing or len(classes) < 2:
        inner = [p for p in folders.values() if len([q for q in p.iterdir() if q.is_dir()]) >= 2]
        hint = f"; did you mean --src '{inner[0]}'?" if len(folders) == 1 and inner else ""
        found = ", ".join(sorted(folders)) or "none"
        wanted = f"no {' or '.join(missing)} folder" if missing else "fewer than two class folders"
        raise InputError(f"{src} has {wanted} (sub-folders found: {found}; a class is a sub-folder "
                         f"of images, e.g. Negative/ and Positive/){hint}")
    ignored = sorted(name for name in folders if name.lower() not in {c.lower() for c in classes})
    if ignored:
        print(f"note: {src}: ignoring folder(s) {', '.join(ignored)} (not one of the classes: {', '.join(classes)})")
    # a typed --classes Concrete,BRICK names the classes as the folders spell them
    return {by_lower[name.lower()].name if typed else name: by_lower[name.lower()] for name in classes}


def find_images(sources, classes, out, size):
    """(class names, [[files of each class] per --src], {name: image} of boxes cut from photos, the
    photos of notes files as notes.Reviewed), after checking every source first."""
    files_by_source, cut, reviewed = [], {}, notes.Reviewed()
    for src in sources:
        if src.is_file() and notes.is_notes_file(src):  # the report's verdicts per photo
            classes = classes or CRACK_CLASSES
            tiles = notes.cut_photos(src, classes, size, reviewed)
            print(f"{src}: {len(tiles['Negative'])} tiles of photos called no crack, {len(tiles['Positive'])} of "
                  "photos called crack (each a bag: some tile of it is a crack)")
            cut |= {key: image for found in tiles.values() for key, image in found}
            files_by_source.append([[key for key, _ in tiles[name]] for name in classes])
            continue
        if src.is_file() and labels.is_labels_file(src):
            classes, boxes = labels.cut_boxes(src, classes, size)
            for name, found in boxes.items():
                print(f"{name}: {len(found)} boxes labelled in {src}")
            cut |= {key: image for found in boxes.values() for key, image in found}
            files_by_source.append([[key for key, _ in boxes[name]] for name in classes])
            continue
        folders = find_class_folders(src, classes)
        classes = classes if files_by_source else list(folders)  # the first source's, for every other source
        files_by_class = [list_images(folder) for folder in folders.values()]
        for (name, folder), files in zip(folders.items(), files_by_class):
            if not files:
                raise InputError(f"{folder} has no image files "
                                 f"({', '.join(sorted(IMAGE_EXTENSIONS))}, in any letter case)")
            print(f"{name}: {len(files)} files in {folder} (sub-folders included)")
        if out.resolve().is_relative_to(src.resolve()):  # it would be read back: a class, or training images
            raise InputError(f"--out {out} is inside the image folder {src}; write it elsewhere")
        files_by_source.append(files_by_class)
    for label, name in enumerate(classes):  # e.g. a labels file of crack boxes alone
        if not any(files[label] for files in files_by_source):
            raise InputError(f"no {name} image in any --src: a model needs examples of every class")
    return classes, files_by_source, cut, reviewed


def split_files(files_by_class, fractions, seed, fixed=None):
    """Stratified, seeded split: {split: [(path, label), ...]} with classes mixed in each split; the
    files in fixed ({path: split}: a reviewed photo's tiles) in the split it names."""
    rng, fixed = np.random.default_rng(seed), fixed or {}
    splits = {name: [] for name in SPLITS}
    for label, files in enumerate(files_by_class):
        for f in files:
            if f in fixed:
                splits[fixed[f]].append((f, label))
        files = [f for f in files if f not in fixed]
        files = [files[i] for i in rng.permutation(len(files))]
        n_val = round(len(files) * fractions[1])
        n_test = round(len(files) * fractions[2])
        n_train = len(files) - n_val - n_test
        splits["train"] += [(f, label) for f in files[:n_train]]
        splits["val"] += [(f, label) for f in files[n_train:n_train + n_val]]
        splits["test"] += [(f, label) for f in files[n_train + n_val:]]
    return {name: [rows[i] for i in rng.permutation(len(rows))] for name, rows in splits.items()}


def split_sources(files_by_source, fractions, seed, fixed=None):
    """Split every source on its own, then merge: {split: [(path, label, source index), ...]}.

    Each source keeps its share of every split (a small site folder is not swamped into train
    only), and adding a source never changes how another source is split.
    """
    splits = {name: [] for name in SPLITS}
    for index, files_by_class in enumerate(files_by_source):
        for name, rows in split_files(files_by_class, fractions, seed, fixed).items():
            splits[name] += [(path, label, index) for path, label in rows]
    if len(files_by_source) > 1:
        rng = np.random.default_rng(seed)
        splits = {name: [rows[i] for i in rng.permutation(len(rows))] for name, rows in splits.items()}
    return splits


def main(argv=None):
    args = parse_args(argv)
    classes, files_by_source, cut, reviewed = find_images(args.src, args.classes, args.out, args.size)
    splits = split_sources(files_by_source, args.split, args.seed, fixed=reviewed.split_of(args.split[1], args.seed))

    start = time.time()
    tmp = output_folders.new_folder_beside(args.out, "data_prep cache")
    try:
        splits, skipped = decode_into(tmp, splits, args.size, max(1, args.workers), cut)
        for label, name in enumerate(classes):
            if not any(row[1] == label for rows in splits.values() for row in rows):
                raise InputError(f"no usable image in any {name} folder")
        meta = write_labels_and_meta(tmp, splits, classes, skipped, args, labels.common_tile(cut), reviewed)
        save_examples(tmp, classes, args.seed)
        output_folders.replace_folder(tmp, args.out)
    finally:
        output_folders.remove_folder(tmp)

    seconds = time.time() - start
    cache.warn_about_small_classes(meta)
    total = sum(meta["counts"][name]["total"] for name in SPLITS)
    if skipped:
        print(f"skipped {len(skipped)} unreadable files (listed in meta.json)")
    counts = ", ".join(f"{name} {meta['counts'][name]['total']}" for name in SPLITS)
    print(f"wrote {total} images of {args.size}x{args.size} px in {len(classes)} classes ({', '.join(classes)}) "
          f"to {args.out}/ in {seconds:.1f} s: {counts}")


if __name__ == "__main__":
    runner.run_script(main, "no cache was written")
