"""Peak memory and time of predict.py on an inspector's folder: 8, 64 and 500 phone-sized photos.

    python benchmarks/bench_folder.py                         # --report, the heaviest use
    python benchmarks/bench_folder.py --counts 8 64 --no-report
    python benchmarks/bench_folder.py --photo my_wall.jpg
    python benchmarks/bench_folder.py --counts 40 80 --no-report --patch-first --repo ../other_checkout

Each folder holds links to one 4000x3000 JPEG (bench_predict's test photo, or --photo), named
IMG_0001.jpg, IMG_0002.jpg ...: every photo is decoded, tiled, classified and, with --report,
drawn and thumbnailed, as if they were all different. predict.py decodes ahead of the model only
as many photos as fit in its pixel budget, so memory should not grow with the folder, nor with a
small image sorting first (--patch-first: a 227 px dataset patch, IMG_0000.jpg).
"""

import argparse
import sys
import tempfile
from pathlib import Path

from bench_predict import make_test_photo
from common import REPO, machine, run_measured


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[8, 64, 500], help="photos per run")
    parser.add_argument("--photo", type=Path, help="the photo to repeat (default: a 4000x3000 test photo)")
    parser.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                        help="write the HTML report with a figure per photo (default: on)")
    parser.add_argument("--patch-first", action="store_true", help="a 227 px patch sorting before the photos")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose predict.py runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-folder-") as work:
        work = Path(work)
        photo = args.photo.resolve() if args.photo else work / "photo_4000x3000.jpg"
        if not args.photo:
            make_test_photo(photo)
        print(f"{machine()}\n{photo.name}, repeated; predict.py {'--report' if args.report else '(no figures)'}\n")
        print(f"{'photos':>7} {'seconds':>9} {'s/photo':>8} {'peak RSS MB':>12} {'x the first':>12}")
        first = None
        for count in args.counts:
            folder = work / f"site_{count}"
            folder.mkdir()
            for i in range(count):
                (folder / f"IMG_{i + 1:04d}.jpg").symlink_to(photo)
            if args.patch_first:
                (folder / "IMG_0000.jpg").symlink_to(REPO / "sample_data" / "Negative" / "00264.jpg")
            command = [sys.executable, str(args.repo / "predict.py"), str(folder)]
            if args.report:
                command += ["--report", str(work / f"report_{count}")]
            seconds, peak = run_measured(command, cwd=work)
            first = first or peak
            print(f"{count:>7} {seconds:>9.1f} {seconds / count:>8.2f} {peak / 2**20:>12.0f} {peak / first:>12.2f}",
                  flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted")
