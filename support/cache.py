"""The cache that data_prep.py writes and train.py reads: {train,val,test}_{x,y}.npy and meta.json.

Images are decoded by worker processes that write their rows straight into the .npy files at
their offsets, so memory stays flat however large the data set; train.py maps the arrays and
reads only the batches it needs, so a cache larger than RAM works too.
"""

import datetime
import json
import multiprocessing
import os
import signal
import sys

import numpy as np
from tqdm import tqdm

from support.errors import InputError
from support.images import ImageError, load_image
from support.opencv import cv2
from support.runner import quiet_stderr, stop_at_a_safe_point
from support.safe_text import printable

SPLITS = ["train", "val", "test"]
FEW_IMAGES = 50  # fewer per class, and the validation and test figures rest on a handful of images


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
        if path is None:  # already decoded by the parent (a box cut from a photo): written after
            continue
        try:
            block[i] = load_image(path, _size)
        except ImageError as error:
            errors.append((start + i, str(error)))
    file, offset = _outputs[split]
    file.seek(offset + start * block[0].nbytes)
    file.write(block.tobytes())
    file.flush()  # the pool ends its workers abruptly: nothing may wait in a buffer
    return split, len(paths), errors


def write_images(splits, arrays_dir, size, workers, ready=None, rows_per_task=64):
    """Fill arrays_dir/{split}_x.npy; returns {(split, row): reason} for the rows that failed.

    ready: {file name: image} for rows decoded already (labels.cut_boxes), written as they are.
    """
    ready = ready or {}
    outputs = {}
    for name, rows in splits.items():
        path = arrays_dir / f"{name}_x.npy"
        outputs[name] = (path, new_array_file(path, (len(rows), size, size, 3)))  # where the rows start
    tasks = [(name, start, [None if str(row[0]) in ready else str(row[0]) for row in rows[start:start + rows_per_task]])
             for name, rows in splits.items() for start in range(0, len(rows), rows_per_task)]
    failures = {}
    total = sum(len(rows) for rows in splits.values())
    print(f"decoding {total} images with {workers} process{'es' if workers > 1 else ''}", file=sys.stderr)
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
    # Shown on a pipe too (unlike predict's bar): the log of a long run says how far it got.
    progress = tqdm(total=total, desc="decoding", unit=" images", unit_scale=True, mininterval=0.5, file=sys.stderr,
                    bar_format="{desc} {n}/{total} images ({rate_noinv_fmt}, {remaining} left)")
    try:
        for split, count, errors in pool.imap_unordered(_load_rows, tasks):
            for row, error in errors:
                failures[(split, row)] = error
                progress.write(f"warning: skipping {printable(splits[split][row][0])}: {error}", file=sys.stderr)
            progress.update(count)
    finally:
        # A Ctrl-C in the middle of terminate() left a worker running for ever, and the parent's stderr
        # open with it: the interruption waits until the workers are gone.
        with stop_at_a_safe_point(lambda: None):
            pool.terminate()
    progress.close()
    for name, rows in splits.items():
        done = [(row, ready[str(file)]) for row, (file, *_) in enumerate(rows) if str(file) in ready]
        if done:  # written as the workers write, not through a memory map: 96,000 boxes are not all held
            path, offset = outputs[name]
            with open(path, "r+b") as f:
                for row, image in done:
                    f.seek(offset + row * size * size * 3)
                    f.write(np.asarray(image).tobytes())
    return failures


def new_array_file(path, shape):
    """Make an .npy file of uint8 rows with every block of it allocated on disk now, and return where its
    rows start. A file made sparse gets its blocks when written: through a memory map, a full disk is
    then a SIGBUS that kills the process with no line; allocated first, it is an OSError here, one line."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    offset = array.offset
    del array
    with open(path, "r+b") as f:
        length = os.fstat(f.fileno()).st_size
        if hasattr(os, "posix_fallocate") and length:  # not on macOS or Windows
            try:
                os.posix_fallocate(f.fileno(), 0, length)
            except OSError as error:
                raise OSError(error.errno, os.strerror(error.errno), str(path)) from None
    return offset


def drop_failed_rows(arrays_dir, split, keep):
    """Rewrite split_x.npy with only the rows in `keep`, in chunks so memory stays flat."""
    old_path, new_path = arrays_dir / f"{split}_x.npy", arrays_dir / f"{split}_x.kept.npy"
    old = np.load(old_path, mmap_mode="r")
    new_array_file(new_path, (len(keep),) + old.shape[1:])
    new = np.load(new_path, mmap_mode="r+")
    for start in range(0, len(keep), 1024):
        new[start:start + 1024] = old[keep[start:start + 1024]]
    new.flush()
    del old, new
    os.replace(new_path, old_path)


def load_cache(folder):
    """The cached splits as (memory-mapped) arrays plus meta.json; InputError if incomplete or damaged."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise InputError(f"no complete cache in {folder}/ (no meta.json); "
                         f"run: python data_prep.py --src DATASET --out {folder}")
    again = f"run data_prep.py again to rebuild {folder}/"
    try:
        meta = json.loads(meta_path.read_text())
        counts = {split: meta["counts"][split]["total"] for split in SPLITS}
        image_size, class_names = meta["image_size"], meta["class_names"]
        check_meta(meta, counts)
    except InputError as problem:
        raise InputError(f"{meta_path} is damaged ({problem}); {again}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"{meta_path} is damaged ({type(error).__name__}: {error}); {again}")
    data = {}
    for split in SPLITS:
        try:
            x = np.load(folder / f"{split}_x.npy", mmap_mode="r")  # paged in as needed, never copied
            y = np.load(folder / f"{split}_y.npy")
        except (OSError, ValueError) as error:
            raise InputError(f"cache {folder}/ is damaged ({error}); {again}")
        if (len(x) != len(y) or len(x) != counts[split] or x.shape[1:] != (image_size, image_size, 3)
                or y.dtype.kind not in "iu" or (len(y) and (y.min() < 0 or y.max() >= len(class_names)))):
            raise InputError(f"cache {folder}/ is inconsistent ({split}); {again}")
        data[split] = (x, y)
    if len(data["train"][0]) == 0 or len(data["val"][0]) == 0:
        raise InputError(f"cache {folder}/ has an empty train or validation split")
    return data, meta


def check_meta(meta, counts):
    """Raise InputError naming what is wrong in a parsed meta.json: the names, size and sources train relies on."""
    names = meta["class_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise InputError(f"class_names must be a list of names, not {names!r:.80}")
    if len(names) < 2 or len({n.lower() for n in names}) < len(names):
        raise InputError("class_names must name two classes or more, each once")
    size = meta["image_size"]
    if type(size) is not int or size < 1:  # train.py checks it against what the network accepts
        raise InputError(f"image_size must be a whole number of pixels, not {size!r:.80}")
    if len(meta.get("sources") or []) > 1 and any(len(meta["file_sources"][s]) != counts[s] for s in SPLITS):
        raise InputError("file_sources does not match the counts")
    bags = meta.get("bags")
    if bags is not None and (not isinstance(bags, dict) or any(
            len(bags.get(s, [])) != counts[s] or max(bags.get(s, []), default=-1) >= len(meta.get("bag_photos", []))
            for s in ("train", "val"))):  # a cache of an older data_prep listed the training rows' alone
        raise InputError("bags does not match the training and validation splits")


def describe_cache(folder, meta):
    """Where the cache came from and how old it is (a stale cache is trained on knowingly), and what it holds."""
    sources = ", ".join(meta.get("sources") or [meta.get("source", "an unknown folder")])
    try:
        created = datetime.datetime.fromisoformat(meta["created"])
        minutes = (datetime.datetime.now(datetime.timezone.utc) - created).total_seconds() / 60
        age = (f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.0f} hours" if minutes < 2880
               else f"{minutes / 1440:.0f} days")
        when = f"made {age} ago ({created:%Y-%m-%d %H:%M})"
    except (KeyError, TypeError, ValueError):
        when = "date unknown"
    sizes = ", ".join(f"{meta['counts'][split]['total']} {split}" for split in SPLITS)
    lines = [f"cache {folder}/ from {sources}, {when}",
             f"{sizes} images of {meta['image_size']} px, classes {', '.join(meta['class_names'])}"]
    if len(meta.get("sources") or []) > 1:  # each source weighs the same in validation (batches.make_dataset)
        by_source = np.bincount(meta["file_sources"]["train"], minlength=len(meta["sources"]))
        lines.append("every source weighs the same in validation; training images: " + ", ".join(
            f"{n} from {src}" for n, src in zip(by_source, meta["sources"])))
    return "\n".join(lines)


def warn_about_small_classes(meta):
    """data_prep.py: a class of a few images trains, but its share of the test split may be empty: say so."""
    for name in meta["class_names"]:
        counts = [meta["counts"][split][name] for split in SPLITS]
        if sum(counts) < FEW_IMAGES:
            empty = [split for split, count in zip(SPLITS, counts) if not count]
            print(f"warning: {name} has only {sum(counts)} images" + (f", none in the {' or '.join(empty)} split"
                  f"{'s' if len(empty) > 1 else ''}: the figures there say nothing about it" if empty else "") +
                  f"; aim for {FEW_IMAGES} or more per class", file=sys.stderr)


def decode_into(folder, splits, size, workers, cut):
    """Decode every image into folder/{split}_x.npy; returns the splits without the unreadable
    files, and those files with the reason."""
    failures = write_images(splits, folder, size, workers, ready=cut)
    skipped = [{"file": str(splits[name][row][0]), "reason": reason}
               for (name, row), reason in sorted(failures.items())]
    for name in SPLITS:
        keep = [row for row in range(len(splits[name])) if (name, row) not in failures]
        if len(keep) < len(splits[name]):
            drop_failed_rows(folder, name, keep)
        splits[name] = [splits[name][row] for row in keep]
    return splits, skipped


def write_labels_and_meta(folder, splits, classes, skipped, args, tile, reviewed):
    """Write the label arrays and meta.json, which says what the arrays hold (classes, sources, size,
    the crack photos' bags); args: data_prep.py's."""
    for name, rows in splits.items():
        np.save(folder / f"{name}_y.npy", np.array([row[1] for row in rows], dtype=np.uint8))
    meta = {
        "image_size": args.size,
        "class_names": classes,
        "seed": args.seed,
        "split_fractions": dict(zip(SPLITS, args.split)),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sources": [str(src.resolve()) for src in args.src],
        "counts": {name: {"total": len(rows),
                          **{c: sum(row[1] == i for row in rows) for i, c in enumerate(classes)}}
                   for name, rows in splits.items()},
        "files": {name: [str(row[0]) for row in rows] for name, rows in splits.items()},
        "file_sources": {name: [row[2] for row in rows] for name, rows in splits.items()},  # indices of sources
        "skipped": skipped,
        "tile": tile,  # the side of the boxes of labels files, in photo pixels, when they share one
    }
    if reviewed.photos:  # each training and validation row's reviewed photo (an index into bag_photos), or -1
        meta |= {"bag_photos": reviewed.photos, "bags": {name: [reviewed.photo_of.get(str(row[0]), -1)
                                                                 for row in splits[name]] for name in ("train", "val")}}
    with open(folder / "meta.json", "w") as f:
        json.dump(meta, f, indent=1)
    return meta
