"""Time data_prep.py against a plain single-process loop, and measure its peak memory.

    python benchmarks/bench_data_prep.py --src ../dataset            # sizes 64 and 128
    python benchmarks/bench_data_prep.py --src sample_data --runs 1

The baseline is the loop most tutorials use (cv2.imread, cv2.resize, list.append, np.array),
timed inside Python; data_prep.py is timed as the whole command, start-up included.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import REPO, machine, median_seconds, run_measured

import data_prep
from support import runner
from support.images import list_images


def plain_loop(files, size):
    images = []
    for path in files:
        image = cv2.imread(str(path))
        images.append(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))
    return np.array(images)


def main():
    start = time.time()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO / "sample_data")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--runs", type=int, default=3, help="runs of each, the median is printed")
    args = parser.parse_args()
    files = [p for folder in data_prep.find_class_folders(args.src).values() for p in list_images(folder)]
    print(f"{machine()}\n{len(files)} images from {args.src}, median of {args.runs} runs\n")
    print(f"{'size':>5} {'loop img/s':>11} {'data_prep img/s':>16} {'speed-up':>9} "
          f"{'peak RSS MB':>12} {'cache MB':>9} {'RSS/cache':>10}")
    for size in args.sizes:
        loop_seconds, _ = median_seconds(lambda: plain_loop(files, size), args.runs)
        runs = []
        for _ in range(args.runs):
            out = Path(tempfile.mkdtemp()) / "cache"
            runs.append(run_measured([sys.executable, str(REPO / "data_prep.py"), "--src", str(args.src),
                                      "--out", str(out), "--size", str(size)]))
            cache_bytes = sum(f.stat().st_size for f in out.glob("*_x.npy"))
            shutil.rmtree(out.parent)
        prep_seconds = float(np.median([s for s, _ in runs]))
        peak = max(p for _, p in runs)
        print(f"{size:>5} {len(files) / loop_seconds:>11.0f} "
              f"{len(files) / prep_seconds:>16.0f} {loop_seconds / prep_seconds:>8.2f}x "
              f"{peak / 2**20:>12.0f} {cache_bytes / 2**20:>9.0f} {peak / cache_bytes:>10.2f}")
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    runner.run_script(main, "nothing more was measured")
