"""Peak memory of predict.py on a very large JPEG (20000 x 20000 px), alone and three in a folder.

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --side 12000 --repo ../other_checkout   # another version, to compare

A JPEG over the pixel limit (support/images.py, MAX_PIXELS) is decoded at half its size, and nothing
is decoded ahead of an image larger than predict's read-ahead budget, so the peak should stay under
1.5 GB for one such photo and not grow with a folder of them. The peak resident memory is the
kernel's own count for the predict process (getrusage of the child), not a sample.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from common import REPO, machine

from support import runner

MEASURE = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
           "stderr=subprocess.PIPE, text=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
           "code.returncode, repr(code.stderr.strip().splitlines()[-1:]))")


def make_photo(path, side):
    """A side x side JPEG of concrete: a sample patch repeated, mirrored, with noise so it is not flat."""
    patch = cv2.imread(str(REPO / "sample_data" / "Negative" / "00264.jpg"))
    tile = np.vstack([np.hstack([patch, patch[:, ::-1]]), np.hstack([patch[::-1], patch[::-1, ::-1]])])
    reps = -(-side // tile.shape[0])
    image = np.tile(tile, (reps, reps, 1))[:side, :side]
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def peak_mb(command, cwd):
    """(peak resident MB of the command's process, exit status, its last stderr line)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=2)
    return int(out[0]) / 1024, int(out[1]), out[2].strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=20000, help="the photo's side in pixels (default: 20000)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose predict.py runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as work:
        work = Path(work)
        folder = work / "site"
        folder.mkdir()
        photo = folder / "IMG_0001.jpg"
        make_photo(photo, args.side)
        print(f"{machine()}\n{args.side}x{args.side} JPEG, {photo.stat().st_size / 1e6:.1f} MB; "
              f"predict.py of {args.repo} --report\n")
        print(f"{'photos':>7} {'peak RSS MB':>12}  exit  last line")
        for count in (1, 3):
            for i in range(1, count):
                (folder / f"IMG_{i + 1:04d}.jpg").symlink_to(photo)
            command = [sys.executable, str(args.repo / "predict.py"), str(folder),
                       "--report", str(work / f"report_{count}")]
            peak, status, last = peak_mb(command, work)
            print(f"{count:>7} {peak:>12.0f} {status:>5}  {last}", flush=True)


if __name__ == "__main__":
    runner.run_script(main, "nothing more was measured")
