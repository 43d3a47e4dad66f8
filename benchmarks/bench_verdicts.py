"""The correction loop with the inspector's verdicts per photo (and a few marks): what happens to photos
no one reviewed.

    python benchmarks/bench_verdicts.py --dataset ozgenel/ --site sites/drone_uav75/train \\
        --site sites/drone_uav75/val --tile 64 --pieces 2 --seeds 42 1 2
    python benchmarks/bench_verdicts.py --dataset ozgenel/ --site sites/road_cfd --tile 113 --marks 2

A site is a folder with images/ and masks/ (support/masks.py). Each photo is cut into --pieces x
--pieces sub-photos, each a photo of its own: "crack" where its mask holds a crack at least a quarter
of a tile long, "no crack" where it holds none, left out in between. The photos (whole, so that no
sub-photo of a reviewed photo is judged) are split in halves, seeded: the inspector reviews one half
in the report, giving each sub-photo its verdict (notes.csv), and with --marks also marks the flagged
tiles of the N reviewed clean sub-photos with the most of them "no crack" and the cracked tiles of
one reviewed crack sub-photo "crack" (labels.csv), as in the report. --no-verdicts leaves the notes
out (marks only, as before). The bundled model is fine-tuned on them (data_prep.py --src DATASET
--src notes.csv [--src labels.csv]; train.py --init-from; anything after `--` goes to train.py), and
predict.py reads the other half with both models. Printed per seed: the other half's crack sub-photos
still crack (and the names of those lost; * where the bundled model flagged only tiles off the crack,
so that the photo was crack for its joints), its clean sub-photos cleared (crack or uncertain before,
no crack after), the reviewed ones likewise, the dataset's test accuracy, and the times.
"""

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from bench_few_marks import predict_rows
from bench_site_loop import run
from common import machine

from predict import BUNDLED_MODEL
from support import masks
from support.images import decode_image, list_images


def cut_sub_photos(sites, pieces, tile, folder):
    """{sub-photo path: "crack" or "no crack"} and {sub-photo path: its photo}: every photo of the sites
    cut into pieces x pieces PNGs in folder, each judged by its mask; {sub-photo: crack boxes} for marks."""
    verdicts, photo_of, crack_boxes, crack_maps = {}, {}, {}, {}
    for site in sites:
        for photo in list_images(site / "images"):
            image = decode_image(photo)
            cracks = masks.crack_pixels(masks.find_mask(photo, site / "images", site / "masks"), image.shape)
            width = masks.crack_width(cracks) if cracks.any() else 1.0
            height, wide = image.shape[:2]
            for i in range(pieces):
                for j in range(pieces):
                    rows, cols = slice(i * height // pieces, (i + 1) * height // pieces), \
                        slice(j * wide // pieces, (j + 1) * wide // pieces)
                    crack = int(cracks[rows, cols].sum())
                    if 0 < crack < masks.MIN_CRACK_LENGTH * tile * width:
                        continue  # a graze of a crack: neither verdict is clear
                    path = folder / f"{site.name}_{photo.stem}_{i}{j}.png"
                    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image[rows, cols]), cv2.COLOR_RGB2BGR))
                    verdicts[str(path)] = "crack" if crack else "no crack"
                    photo_of[str(path)] = f"{site}/{photo.name}"
                    crack_maps[str(path)] = cracks[rows, cols]
                    if crack:
                        crack_boxes[str(path)] = [(x, y, side) for x, y, side, label in masks.tile_labels(
                            cracks[rows, cols], [(x, y, tile) for y in range(0, rows.stop - rows.start - tile + 1, tile // 2)
                                                 for x in range(0, cols.stop - cols.start - tile + 1, tile // 2)])
                                                  if label == "crack"]
    return verdicts, photo_of, crack_boxes, crack_maps


def seen_before(tiles, crack_maps, threshold=0.5):
    """The crack sub-photos whose crack itself the bundled model flagged (a flagged tile on crack pixels),
    not only tiles beside it: a photo "crack" before for its joints alone is no crack the model knew."""
    seen = set()
    for row in tiles:
        cracks = crack_maps.get(row["image"])
        x, y, w, h = (int(row[key]) for key in ("x", "y", "width", "height"))
        if cracks is not None and float(row["probability"]) >= threshold and cracks[y:y + h, x:x + w].any():
            seen.add(row["image"])
    return seen


def split_by_photo(photo_of, seed):
    """(reviewed sub-photos, held-out sub-photos): the photos in halves, seeded."""
    photos = sorted(set(photo_of.values()))
    reviewed = {photos[i] for i in np.random.default_rng(seed).permutation(len(photos))[:len(photos) // 2]}
    return ([p for p, photo in photo_of.items() if photo in reviewed],
            [p for p, photo in photo_of.items() if photo not in reviewed])


def write_notes(path, reviewed, verdicts, before, tile):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "model_verdict", "inspector_verdict", "note", "marked_tiles", "tile"])
        writer.writerows([[p, before[p]["verdict"], verdicts[p], "", 0, tile] for p in reviewed])


def write_marks(path, reviewed, verdicts, tiles, crack_boxes, count, threshold=0.5):
    """Marks as an inspector makes them: every flagged tile of the `count` reviewed clean sub-photos with
    the most flagged tiles "no crack", and the cracked tiles of the reviewed crack sub-photo with the most
    "crack". Returns (marks, marked sub-photos)."""
    flagged = {}
    for row in tiles:
        if float(row["probability"]) >= threshold:
            flagged.setdefault(row["image"], []).append(row)
    clean = sorted((p for p in reviewed if verdicts[p] == "no crack"), key=lambda p: -len(flagged.get(p, [])))[:count]
    cracked = max((p for p in reviewed if verdicts[p] == "crack"), key=lambda p: len(crack_boxes[p]))
    rows = [[p, r["x"], r["y"], r["width"], r["height"], "no crack"] for p in clean for r in flagged.get(p, [])]
    rows += [[cracked, x, y, side, side, "crack"] for x, y, side in crack_boxes[cracked]]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["path", "x", "y", "width", "height", "label"], *rows])
    return rows, [*clean, cracked]


def count(paths, verdicts, before, after, seen):
    """'crack kept K of N (lost: ...); clean cleared C of F flagged' for these sub-photos; a lost photo
    whose crack the bundled model did not flag (only tiles beside it) is marked *."""
    crack = [p for p in paths if verdicts[p] == "crack" and before[p]["verdict"] == "crack"]
    lost = [Path(p).stem + ("" if p in seen else "*") for p in crack if after[p]["verdict"] != "crack"]
    clean = [p for p in paths if verdicts[p] == "no crack" and before[p]["verdict"] != "no crack"]
    cleared = sum(after[p]["verdict"] == "no crack" for p in clean)
    missed = [p for p in paths if verdicts[p] == "crack" and before[p]["verdict"] != "crack"]
    found = sum(after[p]["verdict"] == "crack" for p in missed)
    all_clean = [p for p in paths if verdicts[p] == "no crack"]
    return (f"crack kept {len(crack) - len(lost)} of {len(crack)}{f' (lost: {chr(44).join(lost)})' if lost else ''}, "
            f"found {found} of {len(missed)} missed before; clean cleared {cleared} of {len(clean)} flagged; "
            f"of all {len(all_clean)} clean, {sum(before[p]['verdict'] == 'no crack' for p in all_clean)} no crack "
            f"before, {sum(after[p]['verdict'] == 'no crack' for p in all_clean)} after"), \
        sum(not name.endswith("*") for name in lost), cleared, len(clean)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset's folder (Negative/, Positive/)")
    parser.add_argument("--site", type=Path, action="append", required=True, help="a site: images/ and masks/")
    parser.add_argument("--tile", type=int, default=227, help="predict.py's --tile, the report's")
    parser.add_argument("--pieces", type=int, default=2, help="sub-photos a side of each photo")
    parser.add_argument("--marks", type=int, default=0, help="mark the flagged tiles of this many clean photos")
    parser.add_argument("--verdicts", action=argparse.BooleanOptionalAction, default=True,
                        help="the reviewed photos' verdicts (notes.csv) join the fine-tuning (default: on)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it (default: a temporary one)")
    parser.add_argument("train_args", nargs="*", help="after --: more options for train.py")
    args = parser.parse_args()
    print(machine())
    print(f"sites {', '.join(map(str, args.site))}, {args.pieces}x{args.pieces} sub-photos, tiles of {args.tile} px, "
          f"verdicts {'on' if args.verdicts else 'off'}, marks on {args.marks} clean photos; "
          f"train.py {' '.join(args.train_args) or '(defaults)'}")
    with tempfile.TemporaryDirectory(prefix="verdicts-") as work:
        work = args.keep or Path(work)
        (work / "photos").mkdir(parents=True)
        verdicts, photo_of, crack_boxes, crack_maps = cut_sub_photos(args.site, args.pieces, args.tile, work / "photos")
        print(f"{len(verdicts)} sub-photos of {len(set(photo_of.values()))} photos: "
              f"{sum(v == 'crack' for v in verdicts.values())} crack, {sum(v == 'no crack' for v in verdicts.values())} clean")
        tile = ["--tile", args.tile]
        before, tiles = predict_rows(work / "photos", BUNDLED_MODEL, work, "before", tile)
        seen = seen_before(tiles, crack_maps)
        totals = []
        for seed in args.seeds:
            reviewed, held_out = split_by_photo(photo_of, seed)
            sources = []
            if args.verdicts:
                write_notes(work / f"notes{seed}.csv", reviewed, verdicts, before, args.tile)
                sources += ["--src", work / f"notes{seed}.csv"]
            if args.marks:
                marks, marked = write_marks(work / f"labels{seed}.csv", reviewed, verdicts, tiles, crack_boxes, args.marks)
                sources += ["--src", work / f"labels{seed}.csv"]
                print(f"seed {seed}: {len(marks)} marks on {len(marked)} photos "
                      f"({sum(m[-1] == 'crack' for m in marks)} crack): {', '.join(Path(p).stem for p in marked)}")
            start = time.time()
            run([sys.executable, "data_prep.py", "--src", args.dataset, *sources, "--out", work / f"cache{seed}",
                 "--seed", seed])
            prepared = time.time()
            output = run([sys.executable, "train.py", "--cache", work / f"cache{seed}", "--init-from", BUNDLED_MODEL,
                          "--out", work / f"model{seed}", "--seed", seed, *args.train_args])
            trained = time.time()
            after, _ = predict_rows(work / "photos", work / f"model{seed}" / "model.keras", work, f"after{seed}", tile)
            metrics = json.loads((work / f"model{seed}" / "metrics.json").read_text())
            dataset = metrics["per_source"][str(args.dataset.resolve())]["accuracy"]
            held, lost, cleared, clean = count(held_out, verdicts, before, after, seen)
            totals.append((lost, cleared, clean))
            guard = "\n  ".join(line for line in output.splitlines() if line.startswith("your verdicts:") and " read as " in line)
            print(f"seed {seed}: {len(reviewed)} reviewed, {len(held_out)} held out; data_prep {prepared - start:.0f} s, "
                  f"train.py {trained - prepared:.0f} s; dataset test accuracy {dataset:.4f}; threshold "
                  f"{metrics['threshold']}\n  held out: {held}\n  reviewed: {count(reviewed, verdicts, before, after, seen)[0]}"
                  f"\n  {guard}", flush=True)
        print("held out, per seed: " + "; ".join(f"lost {lost} (their crack flagged before), cleared {cleared} of {clean}"
                                                 for lost, cleared, clean in totals))


if __name__ == "__main__":
    main()
