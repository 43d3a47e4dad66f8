"""Turn a folder of crack / no-crack images into cached numpy arrays for train.py.

The source folder holds one sub-folder per class, named Positive (crack) and Negative (no crack)
in any letter case, as in Özgenel's "Concrete Crack Images for Classification":

    python data_prep.py --src dataset/                 # writes cache/
    python data_prep.py --src sample_data/ --size 64 --out cache/

Every image is decoded to RGB, resized to --size x --size, kept as uint8 and split (stratified,
seeded) into train/val/test. The cache holds {train,val,test}_{x,y}.npy, meta.json (sizes, counts,
the source file of every row, skipped files) and examples.png (a grid of labelled samples).

This file also owns the one function that turns an image file into model input, load_image();
predict.py imports it, so training and prediction see pixels made exactly the same way.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES = ["Negative", "Positive"]  # label 0 = no crack, 1 = crack
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
PATCH_SIZE = 227  # side of the dataset's patches, cut at the photos' native scale
DEFAULT_SIZE = 64
DEFAULT_SPLIT = (0.70, 0.24, 0.06)
SPLITS = ["train", "val", "test"]

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # we report bad files ourselves


class ImageError(Exception):
    """A file that cannot be used as an image; the message says why."""


# ----------------------------------------------------------------------------------------------
# Image loading: the single path from a file to model input, shared with predict.py


def decode_image(path, shrink=1):
    """Read an image file as an upright RGB uint8 array, decoded at 1/shrink of its size.

    Grayscale, RGBA and 16-bit files become 8-bit RGB; EXIF orientation is applied. With shrink
    2, 4 or 8 a JPEG is decoded at reduced scale inside the decoder, which is several times
    faster than decoding every pixel and resizing afterwards.
    """
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
             4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[shrink]
    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it fails on non-ASCII paths on Windows
    except OSError as error:
        raise ImageError(error.strerror or str(error)) from None
    if data.size == 0:
        raise ImageError("empty file")
    # libjpeg quietly grey-fills a truncated JPEG; refuse it instead of learning from grey.
    if data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in data[-4096:].tobytes():
        raise ImageError("truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(data, flags)
    if image is None:
        raise ImageError("not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def shrink_factor(patch_px, size):
    """The coarsest JPEG reduction (1, 2, 4 or 8) that keeps a patch_px patch at least size px."""
    shrink = 1
    while shrink < 8 and patch_px / (shrink * 2) >= size:
        shrink *= 2
    return shrink


def read_scaled(path, size, patch_px=PATCH_SIZE):
    """Decode `path` at the scale load_image uses; returns (image, shrink).

    An image smaller than a patch is decoded at full scale, so that it is never shrunk below
    the model's input size and blown up again.
    """
    shrink = shrink_factor(patch_px, size)
    image = decode_image(path, shrink)
    if shrink > 1 and min(image.shape[:2]) < size:
        image, shrink = decode_image(path), 1
    return image, shrink


def fit_to_model(image, size):
    """Resize an RGB array to size x size; INTER_AREA keeps thin cracks when shrinking."""
    if image.shape[:2] == (size, size):
        return image
    shrinking = image.shape[0] * image.shape[1] > size * size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def load_image(path, size):
    """The model input for an image file: size x size x 3 uint8 RGB. Raises ImageError."""
    return fit_to_model(read_scaled(path, size)[0], size)


# ----------------------------------------------------------------------------------------------
# Finding and splitting the data


def find_class_folders(src):
    """Map each class name to its sub-folder of src, matching names case-insensitively."""
    if not src.is_dir():
        raise SystemExit(f"error: source folder {src} does not exist")
    by_lower = {p.name.lower(): p for p in src.iterdir() if p.is_dir()}
    missing = [name for name in CLASS_NAMES if name.lower() not in by_lower]
    if missing:
        raise SystemExit(f"error: {src} has no {' or '.join(missing)} folder "
                         f"(expected sub-folders {' and '.join(CLASS_NAMES)})")
    return {name: by_lower[name.lower()] for name in CLASS_NAMES}


def list_images(folder):
    """Image files below folder, recursively, in a stable order (os.walk: fast on 100,000 files)."""
    found = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
             if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS]
    return [Path(path) for path in sorted(found)]


def split_files(files_by_class, fractions, seed):
    """Stratified, seeded split: {split: [(path, label), ...]} with classes mixed in each split."""
    rng = np.random.default_rng(seed)
    splits = {name: [] for name in SPLITS}
    for label, files in enumerate(files_by_class):
        files = [files[i] for i in rng.permutation(len(files))]
        n_val = round(len(files) * fractions[1])
        n_test = round(len(files) * fractions[2])
        n_train = len(files) - n_val - n_test
        splits["train"] += [(f, label) for f in files[:n_train]]
        splits["val"] += [(f, label) for f in files[n_train:n_train + n_val]]
        splits["test"] += [(f, label) for f in files[n_train + n_val:]]
    return {name: [rows[i] for i in rng.permutation(len(rows))] for name, rows in splits.items()}


# ----------------------------------------------------------------------------------------------
# Decoding in parallel straight into the output arrays


def _init_worker(outputs, size):
    # Rows are written with plain file writes at their offsets: no pickled arrays travel back,
    # and no worker maps the output, so memory stays near the processes' own size.
    global _outputs, _size
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle, cleanly
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe
    _outputs = {split: (open(path, "r+b"), offset) for split, (path, offset) in outputs.items()}
    _size = size


def _load_rows(task):
    """Decode a run of consecutive rows and write them with one file write."""
    split, start, paths = task
    block = np.zeros((len(paths), _size, _size, 3), np.uint8)  # a failed row stays blank, then is dropped
    errors = []
    for i, path in enumerate(paths):
        try:
            block[i] = load_image(path, _size)
        except ImageError as error:
            errors.append((start + i, str(error)))
    file, offset = _outputs[split]
    file.seek(offset + start * block[0].nbytes)
    file.write(block.tobytes())
    file.flush()  # the pool ends its workers abruptly: nothing may wait in a buffer
    return split, len(paths), errors


def decode_all(splits, arrays_dir, size, workers, rows_per_task=64):
    """Fill arrays_dir/{split}_x.npy; returns {(split, row): reason} for the rows that failed."""
    outputs = {}
    for name, rows in splits.items():
        path = arrays_dir / f"{name}_x.npy"
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(rows), size, size, 3))
        outputs[name] = (path, array.offset)  # where the rows start, after the .npy header
        del array
    tasks = [(name, start, [str(path) for path, _ in rows[start:start + rows_per_task]])
             for name, rows in splits.items() for start in range(0, len(rows), rows_per_task)]
    failures = {}
    progress = Progress(sum(len(rows) for rows in splits.values()), "decoding")
    # "spawn": a forked copy of a parent that has TensorFlow's threads running (as in a test or a
    # notebook) can deadlock; spawned workers start clean, on every operating system alike.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (outputs, size)) as pool:
        for split, count, errors in pool.imap_unordered(_load_rows, tasks):
            for row, error in errors:
                failures[(split, row)] = error
                print(f"\nwarning: skipping {splits[split][row][0]}: {error}", file=sys.stderr)
            progress.update(count)
    progress.done()
    return failures


def drop_failed_rows(arrays_dir, split, keep):
    """Rewrite split_x.npy with only the rows in `keep`, in chunks so memory stays flat."""
    old_path, new_path = arrays_dir / f"{split}_x.npy", arrays_dir / f"{split}_x.kept.npy"
    old = np.load(old_path, mmap_mode="r")
    new = np.lib.format.open_memmap(new_path, mode="w+", dtype=np.uint8, shape=(len(keep),) + old.shape[1:])
    for start in range(0, len(keep), 1024):
        new[start:start + 1024] = old[keep[start:start + 1024]]
    new.flush()
    del old, new
    os.replace(new_path, old_path)


class Progress:
    """A one-line progress counter on stderr (data_prep does not load TensorFlow for Keras' Progbar)."""

    def __init__(self, total, what):
        self.total, self.what, self.count, self.start, self.shown = total, what, 0, time.time(), 0.0

    def update(self, n=1):
        self.count += n
        now = time.time()
        if now - self.shown > 0.5 or self.count == self.total:
            rate = self.count / max(now - self.start, 1e-9)
            print(f"\r{self.what} {self.count}/{self.total} images ({rate:.0f}/s)", end="", file=sys.stderr)
            self.shown = now

    def done(self):
        print(file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# Writing the cache


def save_image_grid(images, titles, path, heading, colors=None, columns=3):
    """Save labelled images as a grid PNG (also used by train.py for its prediction grids)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.5 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image, title) in enumerate(zip(axes.flat, images, titles)):
        ax.imshow(image)
        ax.set_title(title, fontsize=9, color=colors[i] if colors else "black")
    fig.suptitle(heading)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_examples(x, y, path, seed):
    """A 3x3 grid of labelled training images, so the user sees what the model will see."""
    rows = np.random.default_rng(seed).choice(len(x), size=min(9, len(x)), replace=False)
    save_image_grid([x[row] for row in rows], [CLASS_NAMES[y[row]] for row in rows], path,
                    f"Training examples ({x.shape[1]}x{x.shape[2]} px)",
                    colors=["crimson" if y[row] else "seagreen" for row in rows])


def prepare_output_folder(out):
    """A fresh temporary folder beside `out`; refuses to replace a folder that is not a cache."""
    if out.exists() and not (out / "meta.json").is_file() and any(out.iterdir()):
        raise SystemExit(f"error: {out} exists and is not a data_prep cache; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir()
    return tmp


def publish(tmp, out):
    """Move the finished cache into place in one rename, so a cache is either whole or absent."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


def parse_split(text):
    parts = [float(p) for p in text.split(":")]
    if len(parts) != 3 or min(parts) < 0 or parts[0] <= 0:
        raise argparse.ArgumentTypeError("expected three non-negative numbers like 70:24:6")
    return tuple(p / sum(parts) for p in parts)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="folder with Positive/ and Negative/ sub-folders")
    parser.add_argument("--out", type=Path, default=Path("cache"), help="cache folder to write (default: cache)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"image side in pixels (default: {DEFAULT_SIZE})")
    parser.add_argument("--split", type=parse_split, default=DEFAULT_SPLIT, help="train:val:test ratio (default: 70:24:6)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the split (default: 42)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="decoding processes (default: all cores)")
    args = parser.parse_args(argv)
    if args.size < 8:
        parser.error("--size must be at least 8")
    return args


def write_labels_and_meta(folder, splits, skipped, args):
    """Write the label arrays and meta.json (written last: its presence marks a complete cache)."""
    for name, rows in splits.items():
        np.save(folder / f"{name}_y.npy", np.array([label for _, label in rows], dtype=np.uint8))
    meta = {
        "image_size": args.size,
        "class_names": CLASS_NAMES,
        "seed": args.seed,
        "split_fractions": dict(zip(SPLITS, args.split)),
        "source": str(args.src.resolve()),
        "counts": {name: {"total": len(rows),
                          **{c: sum(1 for _, lab in rows if lab == i) for i, c in enumerate(CLASS_NAMES)}}
                   for name, rows in splits.items()},
        "files": {name: [str(path) for path, _ in rows] for name, rows in splits.items()},
        "skipped": skipped,
    }
    with open(folder / "meta.json", "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def main(argv=None):
    args = parse_args(argv)
    folders = find_class_folders(args.src)
    files_by_class = [list_images(folders[name]) for name in CLASS_NAMES]
    for name, files in zip(CLASS_NAMES, files_by_class):
        if not files:
            raise SystemExit(f"error: {folders[name]} has no image files")
        print(f"{name}: {len(files)} files in {folders[name]}")
    splits = split_files(files_by_class, args.split, args.seed)

    tmp = prepare_output_folder(args.out)
    try:
        start = time.time()
        failures = decode_all(splits, tmp, args.size, max(1, args.workers))
        skipped = [{"file": str(splits[name][row][0]), "reason": reason}
                   for (name, row), reason in sorted(failures.items())]
        for name in SPLITS:
            keep = [row for row in range(len(splits[name])) if (name, row) not in failures]
            if len(keep) < len(splits[name]):
                drop_failed_rows(tmp, name, keep)
            splits[name] = [splits[name][row] for row in keep]
        for label, class_name in enumerate(CLASS_NAMES):
            if not any(lab == label for rows in splits.values() for _, lab in rows):
                raise SystemExit(f"error: no usable image in {folders[class_name]}")
        meta = write_labels_and_meta(tmp, splits, skipped, args)
        train_x = np.load(tmp / "train_x.npy", mmap_mode="r")
        save_examples(train_x, np.load(tmp / "train_y.npy"), tmp / "examples.png", args.seed)
        del train_x
        publish(tmp, args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    seconds = time.time() - start
    total = sum(meta["counts"][name]["total"] for name in SPLITS)
    if skipped:
        print(f"skipped {len(skipped)} unreadable files (listed in meta.json)")
    print(f"wrote {total} images of {args.size}x{args.size} px to {args.out}/ in {seconds:.1f} s "
          f"({total / seconds:.0f} images/s): " +
          ", ".join(f"{name} {meta['counts'][name]['total']}" for name in SPLITS))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: no cache was written")
