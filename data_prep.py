"""Turn a folder of crack / no-crack images into cached numpy arrays for train.py.

The source folder holds one sub-folder per class, named Positive (crack) and Negative (no crack)
in any letter case, as in Özgenel's "Concrete Crack Images for Classification":

    python data_prep.py --src dataset/                 # writes cache/
    python data_prep.py --src sample_data/ --size 64 --out cache/
    python data_prep.py --src dataset/ --src my_site/  # merge your own labelled images

Images are found recursively below each class folder; other folders are ignored (and named).
Every image is decoded to RGB, resized to --size x --size (thin cracks kept dark, see resize()),
kept as uint8 and split (stratified, seeded) into train/val/test, each --src on its own so every
source is split the same way. The cache holds {train,val,test}_{x,y}.npy, meta.json (sizes,
counts, the source file and --src of every row, skipped files) and examples.png (a grid of
labelled samples).

This file also owns the one function that turns an image file into model input, load_image();
predict.py imports it, so training and prediction see pixels made exactly the same way.
"""

import signal
import sys

INTERRUPTED = "interrupted: no cache was written"


def exit_interrupted(*_):
    """Ctrl-C at any moment: one line, status 130; `finally` blocks still remove the partial cache."""
    print(f"\n{INTERRUPTED}", file=sys.stderr)
    raise SystemExit(130)


if __name__ == "__main__":  # installed before the slow imports below, so Ctrl-C during them is clean too
    signal.signal(signal.SIGINT, exit_interrupted)
    signal.signal(signal.SIGTERM, exit_interrupted)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

CLASS_NAMES = ["Negative", "Positive"]  # label 0 = no crack, 1 = crack
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
PATCH_SIZE = 227  # side of the dataset's patches, cut at the photos' native scale
DEFAULT_SIZE = 64
DEFAULT_SPLIT = (0.70, 0.24, 0.06)
SPLITS = ["train", "val", "test"]
MIN_SIDE = 16  # pixels: a smaller image (or a thin strip) holds no surface to judge
OWN_OUTPUTS = ("_prediction.png",)  # predict.py's figures: never taken back in as images

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # we report bad files ourselves


class ImageError(Exception):
    """A file that cannot be used as an image; the message says why."""


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (C libraries' chatter, child processes started meanwhile).

    Python's own sys.stderr keeps writing to the terminal, so an error or a Ctrl-C message
    raised meanwhile is still seen.
    """
    sys.stderr.flush()
    python_stderr, saved, devnull = sys.stderr, os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr = open(saved, "w", closefd=False)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# ----------------------------------------------------------------------------------------------
# Image loading: the single path from a file to model input, shared with predict.py


def decode_image(path):
    """Read an image file as an upright RGB uint8 array, every pixel of it. Raises ImageError.

    Grayscale, RGBA and 16-bit files become 8-bit RGB; EXIF orientation is applied. The JPEG
    decoder's reduced scales (cv2.IMREAD_REDUCED_*, two to four times faster on a 12 MP photo)
    are not used: they blur a hairline crack away before resize() could keep it.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it fails on non-ASCII paths on Windows
    except OSError as error:
        raise ImageError(error.strerror or str(error)) from None
    if data.size == 0:
        raise ImageError("empty file")
    # libjpeg quietly grey-fills a truncated JPEG; refuse it instead of learning from grey.
    if data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in data[-4096:].tobytes():
        raise ImageError("truncated JPEG (no end-of-image marker)")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if image is None:
            raise ImageError("not a readable image")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    except cv2.error as error:  # OpenCV refuses some damaged or exotic files with an exception
        raise ImageError(f"OpenCV cannot decode it ({error.err})") from None
    if min(image.shape[:2]) < MIN_SIDE:
        raise ImageError(f"too small ({image.shape[1]}x{image.shape[0]} px; at least {MIN_SIDE} px a side)")
    return image


def fit_to_model(image, size):
    """Resize an RGB array to size x size (see resize)."""
    return image if image.shape[:2] == (size, size) else resize(image, size, size)


def resize(image, width, height):
    """Resize an RGB array so that a crack thinner than a pixel of the result stays dark.

    Shrinking by a factor k averages k x k pixels into one (INTER_AREA), which alone would fade a
    dark line one pixel wide to 1/k of its contrast: a hairline crack on a wide patch vanishes.
    So each pixel first takes the darkest value of the k x k pixels around it (an erosion, a
    minimum filter): the line becomes k pixels wide and keeps at least half of its contrast,
    still one or two pixels wide after the average. Raises ImageError.
    """
    shrinking = image.shape[0] * image.shape[1] > width * height
    kernel = round(min(image.shape[1] / width, image.shape[0] / height))
    try:
        if kernel > 1:
            image = cv2.erode(image, np.ones((kernel, kernel), np.uint8))
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    except cv2.error as error:
        raise ImageError(f"OpenCV cannot resize it ({error.err})") from None


def load_image(path, size):
    """The model input for an image file: size x size x 3 uint8 RGB. Raises ImageError."""
    return fit_to_model(decode_image(path), size)


def surface_texture(images):
    """The grain of each model input (N x size x size x 3 uint8): the median absolute Laplacian of
    its grey levels. A median, so a crack's or an edge's own pixels do not count, only the surface's.
    Bare concrete has grain at the dataset's scale; a painted wall, or a photo taken far closer
    than the dataset's, is smoother than any training image (train.py stores the floor)."""
    magnitude = laplacian_magnitude(images).reshape(len(images), -1)
    middle = magnitude.shape[1] // 2  # the upper median: no mean of two values, so smoother_than is exact
    return np.partition(magnitude, middle, axis=1)[:, middle]


def smoother_than(images, floor):
    """surface_texture(images) < floor, without sorting: a median lies below the floor exactly
    when more than half the values do. For 910 tiles counting takes 0.5 ms where the partial sort
    takes 38 ms, and predict.py needs only this answer."""
    magnitude = laplacian_magnitude(images)
    return np.count_nonzero(magnitude < floor, axis=(1, 2)) > magnitude[0].size // 2


def laplacian_magnitude(images):
    """|Laplacian| of the grey levels of each image's inner pixels (N x size-2 x size-2, float32)."""
    # The batch as one tall image, so that OpenCV converts and filters it in one call each (train.py
    # measures the whole training split); only each image's inner pixels, untouched by its
    # neighbours in the tall image, count.
    n, height, width, _ = images.shape
    grey = cv2.cvtColor(np.ascontiguousarray(images).reshape(n * height, width, 3).astype(np.float32),
                        cv2.COLOR_RGB2GRAY)
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=1).reshape(n, height, width)[:, 1:-1, 1:-1]
    return np.abs(laplacian)


# ----------------------------------------------------------------------------------------------
# Finding and splitting the data


def find_class_folders(src):
    """Map each class name to its sub-folder of src, matching names case-insensitively."""
    if src.is_file():
        raise SystemExit(f"error: --src {src} is a file; give the folder that holds "
                         f"{' and '.join(CLASS_NAMES)} sub-folders")
    if not src.is_dir():
        raise SystemExit(f"error: source folder {src} does not exist")
    by_lower = {p.name.lower(): p for p in src.iterdir() if p.is_dir()}
    missing = [name for name in CLASS_NAMES if name.lower() not in by_lower]
    if missing:
        hint = ""
        # The Mendeley zip unpacks to "Concrete Crack Images for Classification/{Positive,Negative}".
        children = sorted(p for p in src.iterdir() if p.is_dir())
        nearby = children + sorted(q for p in children for q in p.iterdir() if q.is_dir())  # two levels, not a deep walk
        inner = [p for p in nearby
                 if {n.lower() for n in CLASS_NAMES} <= {c.name.lower() for c in p.iterdir() if c.is_dir()}]
        if inner:
            hint = f"; did you mean --src '{inner[0]}'?"
        raise SystemExit(f"error: {src} has no {' or '.join(missing)} folder "
                         f"(expected sub-folders {' and '.join(CLASS_NAMES)}){hint}")
    ignored = sorted(name for lower, name in ((p.name.lower(), p.name) for p in by_lower.values())
                     if lower not in {n.lower() for n in CLASS_NAMES} and not name.startswith("."))
    if ignored:
        print(f"note: {src}: ignoring folder(s) {', '.join(ignored)} (only {' and '.join(CLASS_NAMES)} are read)")
    return {name: by_lower[name.lower()] for name in CLASS_NAMES}


def list_images(folder):
    """Image files below folder, recursively, in a stable order (os.walk: fast on 100,000 files).

    Hidden files (such as a temporary .partial- file) and the figures predict.py writes are left
    out, so an output that lands in an input folder is never read back as an image.
    """
    found = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
             if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
             and not name.startswith(".") and not name.endswith(OWN_OUTPUTS)]
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


def split_sources(files_by_source, fractions, seed):
    """Split every source on its own, then merge: {split: [(path, label, source index), ...]}.

    Each source keeps its share of every split (a small site folder is not swamped into train
    only), and adding a source never changes how another source is split.
    """
    splits = {name: [] for name in SPLITS}
    for index, files_by_class in enumerate(files_by_source):
        for name, rows in split_files(files_by_class, fractions, seed).items():
            splits[name] += [(path, label, index) for path, label in rows]
    if len(files_by_source) > 1:
        rng = np.random.default_rng(seed)
        splits = {name: [rows[i] for i in rng.permutation(len(rows))] for name, rows in splits.items()}
    return splits


# ----------------------------------------------------------------------------------------------
# Decoding in parallel straight into the output arrays


def _init_worker(outputs, size):
    # Rows are written with plain file writes at their offsets: no pickled arrays travel back,
    # and no worker maps the output, so memory stays near the processes' own size.
    global _outputs, _size
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # again: the parent may be another script than data_prep
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
    tasks = [(name, start, [str(row[0]) for row in rows[start:start + rows_per_task]])
             for name, rows in splits.items() for start in range(0, len(rows), rows_per_task)]
    failures = {}
    total = sum(len(rows) for rows in splits.values())
    print(f"decoding {total} images with {workers} process{'es' if workers > 1 else ''}", file=sys.stderr)
    progress = Progress(total, "decoding")
    # "spawn": a forked copy of a parent that has TensorFlow's threads running (as in a test or a
    # notebook) can deadlock; spawned workers start clean, on every operating system alike.
    # The workers are started with stderr pointed at /dev/null: they report through their results,
    # and a Ctrl-C in the terminal reaches them too, which while Python starts up means a traceback.
    # A Ctrl-C meanwhile is held until they are all started: stopping half-way leaves one without
    # its start-up data.
    held = []
    previous = signal.signal(signal.SIGINT, lambda *_: held.append(True))
    try:
        with quiet_stderr():
            pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker, (outputs, size))
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        signal.raise_signal(signal.SIGINT)
    with pool:
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
    if out.exists() and not out.is_dir():
        raise SystemExit(f"error: --out {out} is a file; give a folder")
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
    parser.add_argument("--src", type=Path, required=True, action="append",
                        help="folder with Positive/ and Negative/ sub-folders; repeat to merge several")
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
        np.save(folder / f"{name}_y.npy", np.array([row[1] for row in rows], dtype=np.uint8))
    meta = {
        "image_size": args.size,
        "class_names": CLASS_NAMES,
        "seed": args.seed,
        "split_fractions": dict(zip(SPLITS, args.split)),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sources": [str(src.resolve()) for src in args.src],
        "counts": {name: {"total": len(rows),
                          **{c: sum(1 for row in rows if row[1] == i) for i, c in enumerate(CLASS_NAMES)}}
                   for name, rows in splits.items()},
        "files": {name: [str(row[0]) for row in rows] for name, rows in splits.items()},
        "file_sources": {name: [row[2] for row in rows] for name, rows in splits.items()},  # index into sources
        "skipped": skipped,
    }
    with open(folder / "meta.json", "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def find_sources(sources, out):
    """[[Negative files, Positive files] per --src], after checking every folder first."""
    files_by_source = []
    for src in sources:
        folders = find_class_folders(src)
        for folder in folders.values():  # examples.png would be read back as a training image
            if out.resolve().is_relative_to(folder.resolve()):
                raise SystemExit(f"error: --out {out} is inside the image folder {folder}; write the cache elsewhere")
        files_by_class = [list_images(folders[name]) for name in CLASS_NAMES]
        for name, files in zip(CLASS_NAMES, files_by_class):
            if not files:
                raise SystemExit(f"error: {folders[name]} has no image files")
            print(f"{name}: {len(files)} files in {folders[name]} (sub-folders included)")
        files_by_source.append(files_by_class)
    return files_by_source


def main(argv=None):
    args = parse_args(argv)
    splits = split_sources(find_sources(args.src, args.out), args.split, args.seed)

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
            if not any(row[1] == label for rows in splits.values() for row in rows):
                raise SystemExit(f"error: no usable image in any {class_name} folder")
        meta = write_labels_and_meta(tmp, splits, skipped, args)
        train_x = np.load(tmp / "train_x.npy", mmap_mode="r")
        save_examples(train_x, np.load(tmp / "train_y.npy"), tmp / "examples.png", args.seed)
        del train_x
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # past this point "no cache" would be untrue
        try:
            publish(tmp, args.out)
        finally:
            signal.signal(signal.SIGINT, previous)
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
    except OSError as failure:  # disk full, no permission, a file where a folder should be: one line
        sys.exit(f"error: {failure.filename or ''}: {failure.strerror or failure}")
