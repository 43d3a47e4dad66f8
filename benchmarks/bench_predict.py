"""Time predict.py with each backend, TensorFlow and LiteRT, side by side.

    python benchmarks/bench_predict.py                       # sample_data/ and a 4000x3000 test photo
    python benchmarks/bench_predict.py --photo my_wall.jpg --folder ../dataset/Positive

For each backend: one photo end to end (the whole command, figure included) and its peak memory,
importing the runtime, a folder's images/s end to end, and the whole-photo pass once the model
is loaded (decoding, tiling, classifying, judging; then also drawing and writing the figure)
against the model alone on the same tiles. The test photo is a mosaic of sample patches saved as
a 4000x3000 JPEG; --photo uses yours. LiteRT needs the ai-edge-litert package and a .tflite
beside the model.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import REPO, machine, run_measured

import predict
from support import figures, photos, runner, verdicts
from support.images import IMAGE_EXTENSIONS, decode_image
from support.model_files import choose_backend, litert_installed, load_classifier


def make_test_photo(path):
    """A 4000x3000 JPEG of one clean sample patch, mirrored so that it has no seams, with five
    cracked sample patches planted in it (README's example figure is predict.py run on it)."""
    clean = decode_image(REPO / "sample_data" / "Negative" / "00264.jpg")
    tile = np.vstack([np.hstack([clean, clean[:, ::-1]]), np.hstack([clean[::-1], clean[::-1, ::-1]])])
    image = np.tile(tile, (7, 9, 1))[:3000, :4000].copy()
    cracks = sorted((REPO / "sample_data" / "Positive").glob("*.jpg"))[:5]
    for crack, (column, row) in zip(cracks, [(2, 2), (9, 3), (14, 8), (5, 10), (11, 11)]):
        image[row * 227:(row + 1) * 227, column * 227:(column + 1) * 227] = decode_image(crack)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])


def import_seconds(backend):
    """Seconds to import what runs the model, in a fresh interpreter (nothing cached)."""
    module = "ai_edge_litert.interpreter" if backend == "litert" else "support.tf_import"
    code = f"import time; start = time.perf_counter(); import {module}; print(time.perf_counter() - start)"
    return float(subprocess.check_output([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.DEVNULL))


def seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def whole_photo_and_model(photo, backend, model, runs, work):
    """Seconds for the whole-photo pass with and without the figure, and for the model alone on its
    tiles; and the number of tiles."""
    path, backend, _ = choose_backend(model, backend)
    classify, info = load_classifier(path, backend)
    size = info["image_size"]

    def whole_photo(figure=True):
        image = decode_image(photo)
        result, grid, probabilities, _, lines = photos.classify_photo(
            image, classify, size, predict.PATCH_SIZE, predict.PATCH_SIZE // 2, predict.BATCH_SIZE,
            verdicts.verdict_rule(info))
        if figure:
            banner = [result.verdict.upper(), *result.summary[1]]
            drawn = figures.draw_figure(image, banner, figures.verdict_colour(result.verdict, []), grid,
                                        probabilities[:, 1], lines=lines)
            figures.save_figure(drawn, work / "photo_prediction.png", photo)
        return len(grid)

    tiles = whole_photo(figure=False)  # warm-up, and the tile count
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (min(predict.BATCH_SIZE, tiles - i), size, size, 3), dtype=np.uint8)
               for i in range(0, tiles, predict.BATCH_SIZE)]
    # Interleaved, run by run, so that the ratios compare times taken under the same load: on a
    # shared machine the model alone can vary by half from one minute to the next.
    tasks = [whole_photo, lambda: whole_photo(figure=False), lambda: [classify(b) for b in batches]]
    timings = [[seconds(task) for task in tasks] for _ in range(runs)]
    photo_seconds, verdict_seconds, model_seconds = np.median(timings, axis=0)
    return photo_seconds, verdict_seconds, model_seconds, tiles


def measure(args, work):
    """Time both backends on args.photo and args.folder, writing into work/; print the table."""
    if args.photo is None:
        args.photo = work / "photo_4000x3000.jpg"
        make_test_photo(args.photo)
    backends = ["tensorflow"] + (["litert"] if litert_installed() else [])
    count = sum(1 for p in args.folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    height, width = cv2.imread(str(args.photo), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape
    print(f"{machine()}\nmedian of {args.runs} runs; photo {args.photo.name} (about {width * 8}x{height * 8}), "
          f"folder {args.folder} ({count} images)\n")

    rows = {}
    for backend in backends:
        predict_command = [sys.executable, str(REPO / "predict.py"), "--model", str(args.model), "--backend", backend]
        photo_runs = [run_measured(predict_command + [str(args.photo), "--out", str(work)]) for _ in range(args.runs)]
        folder_seconds = np.median([run_measured(predict_command + [str(args.folder), "--csv", str(work / "out.csv")])[0]
                                    for _ in range(args.runs)])
        whole, verdict, alone, tiles = whole_photo_and_model(args.photo, backend, args.model, args.runs, work)
        rows[backend] = [
            f"{np.median([s for s, _ in photo_runs]):.2f} s",
            f"{max(m for _, m in photo_runs) / 2**20:.0f} MB",
            f"{import_seconds(backend):.2f} s",
            f"{count / folder_seconds:.0f} images/s",
            f"{verdict:.3f} s ({verdict / alone:.2f}x)",
            f"{whole:.3f} s ({whole / alone:.2f}x)",
            f"{alone:.3f} s ({tiles} tiles)",
        ]
    labels = ["one photo, end to end", "  peak memory", "import the runtime", "folder, end to end",
              "photo pass to the verdict (x model)", "  and with the figure", "model alone on its tiles"]
    print(f"{'':34}" + "".join(f"{b:>22}" for b in backends))
    for i, label in enumerate(labels):
        print(f"{label:34}" + "".join(f"{rows[b][i]:>22}" for b in backends))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=predict.BUNDLED_MODEL)
    parser.add_argument("--folder", type=Path, default=REPO / "sample_data")
    parser.add_argument("--photo", type=Path, help="a large photo (default: a generated 4000x3000 JPEG)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:  # the generated photo, figures and CSVs go with it
        measure(args, Path(work))


if __name__ == "__main__":
    runner.run_script(main, "nothing more was measured")
