"""Time predict.py: one image end to end, a folder's throughput, and a 12 MP photo against the raw model.

    python benchmarks/bench_predict.py                       # sample_data/ and a 4000x3000 test photo
    python benchmarks/bench_predict.py --photo my_wall.jpg --folder ../dataset/Positive

The test photo is a mosaic of sample patches saved as a 4000x3000 JPEG; --photo uses yours.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import REPO, machine, median_seconds, run_measured

import data_prep
import predict


def make_test_photo(path):
    """A 4000x3000 JPEG of one clean sample patch, mirrored so that it has no seams, with five
    cracked sample patches planted in it (README's example figure is predict.py run on it)."""
    clean = data_prep.decode_image(REPO / "sample_data" / "Negative" / "00264.jpg")
    tile = np.vstack([np.hstack([clean, clean[:, ::-1]]), np.hstack([clean[::-1], clean[::-1, ::-1]])])
    image = np.tile(tile, (7, 9, 1))[:3000, :4000].copy()
    cracks = sorted((REPO / "sample_data" / "Positive").glob("*.jpg"))[:5]
    for crack, (column, row) in zip(cracks, [(2, 2), (9, 3), (14, 8), (5, 10), (11, 11)]):
        image[row * 227:(row + 1) * 227, column * 227:(column + 1) * 227] = data_prep.decode_image(crack)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=predict.BUNDLED_MODEL)
    parser.add_argument("--folder", type=Path, default=REPO / "sample_data")
    parser.add_argument("--photo", type=Path, help="a large photo (default: a generated 4000x3000 JPEG)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    if args.photo is None:
        args.photo = work / "photo_4000x3000.jpg"
        make_test_photo(args.photo)
    one_image = next(args.folder.rglob("*.jpg"))
    print(f"{machine()}\nmedian of {args.runs} runs\n")

    # 1. One image, the whole command, and where its time goes.
    command = [sys.executable, str(REPO / "predict.py"), str(one_image), "--model", str(args.model), "--no-figures"]
    seconds = np.median([run_measured(command)[0] for _ in range(args.runs)])
    print(f"python predict.py one.jpg: {seconds:.2f} s end to end")
    start = time.perf_counter()
    from model import tf  # noqa: F401  (the import is what is timed)
    import_seconds = time.perf_counter() - start
    start = time.perf_counter()
    classify, info = predict.load_classifier(args.model)
    size = info["image_size"]
    load_seconds = time.perf_counter() - start
    image = data_prep.load_image(one_image, size)[None]
    start = time.perf_counter()
    classify(image)
    first_call = time.perf_counter() - start
    later_call, _ = median_seconds(lambda: classify(image), 20)
    print(f"  import TensorFlow {import_seconds:.2f} s, load model {load_seconds:.2f} s, "
          f"first call (tracing) {first_call:.3f} s, later calls {later_call * 1000:.1f} ms\n")

    # 2. A folder, the whole command.
    count = sum(1 for p in args.folder.rglob("*") if p.suffix.lower() in data_prep.IMAGE_EXTENSIONS)
    command = [sys.executable, str(REPO / "predict.py"), str(args.folder), "--model", str(args.model),
               "--csv", str(work / "out.csv")]
    seconds = np.median([run_measured(command)[0] for _ in range(args.runs)])
    print(f"python predict.py FOLDER: {count} images in {seconds:.1f} s = {count / seconds:.0f} images/s "
          f"end to end (including {import_seconds + load_seconds:.1f} s of start-up)\n")

    # 3. A large photo after the model is loaded: decoding, tiling, classifying, drawing.
    def whole_photo():
        photo, shrink = predict.read_input(args.photo, size, predict.PATCH_SIZE)
        result, grid, probabilities = predict.classify_photo(photo, shrink, classify, size, predict.PATCH_SIZE,
                                                             predict.PATCH_SIZE // 2, predict.BATCH_SIZE,
                                                             predict.verdict_rule(info))
        figure = predict.draw_figure(photo, shrink, result, grid, probabilities)
        predict.save_figure(figure, work / "photo_prediction.png", show=False)
        return len(grid)

    photo_seconds, tiles = median_seconds(whole_photo, args.runs)
    batches = [np.random.default_rng(0).integers(0, 256, (min(predict.BATCH_SIZE, tiles - i), size, size, 3),
                                                 dtype=np.uint8) for i in range(0, tiles, predict.BATCH_SIZE)]
    model_seconds, _ = median_seconds(lambda: [classify(b) for b in batches], args.runs)
    height, width = cv2.imread(str(args.photo), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape
    print(f"photo {args.photo.name} (about {width * 8}x{height * 8}): {tiles} tiles")
    print(f"  whole-photo pass {photo_seconds:.2f} s, raw model on {tiles} tiles {model_seconds:.2f} s, "
          f"ratio {photo_seconds / model_seconds:.2f}x")


if __name__ == "__main__":
    main()
