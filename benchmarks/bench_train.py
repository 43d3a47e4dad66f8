"""Compare train.py's tf.data pipeline with model.fit on in-memory arrays, and its peak memory.

    python benchmarks/bench_train.py --cache cache            # the cache data_prep.py wrote

Both fit the same model on the same training images at the same batch size; the first epoch
(graph tracing) is left out of the throughput. Peak memory is of a whole `train.py --epochs 1`.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, machine, run_measured

from model import build_model
from support import runner
from support.batches import make_dataset
from support.cache import load_cache
from support.tf_import import keras


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start  # the last epoch's


def images_per_second(fit_data, images, epochs, size, **fit_args):
    keras.utils.set_random_seed(0)
    timer = EpochTimer()
    build_model(size).fit(*fit_data, epochs=epochs, callbacks=[timer], verbose=0, **fit_args)
    return images / timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--images", type=int, default=6400, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs, the first one not counted")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data, meta = load_cache(args.cache)
    x, y = data["train"]
    n = min(args.images, len(x))
    size = meta["image_size"]
    print(f"{machine()}\n{n} training images of {size} px, batch size {args.batch_size}\n")

    in_memory = np.array(x[:n]), y[:n].astype(np.float32)
    baseline = images_per_second(in_memory, n, args.epochs, size, batch_size=args.batch_size)
    print(f"model.fit on in-memory arrays:       {baseline:7.0f} images/s")
    for augment in (False, True):
        pipeline = make_dataset(x[:n], y[:n], args.batch_size, shuffle=True, augment=augment, capture=augment,
                                      seed=0)
        rate = images_per_second((pipeline,), n, args.epochs, size, shuffle=False)
        print(f"train.py pipeline, augment={str(augment):5}:  {rate:7.0f} images/s ({rate / baseline:.2f}x)")

    cache_mb = sum(f.stat().st_size for f in args.cache.glob("*_x.npy")) / 2**20
    _, tensorflow_alone = run_measured([sys.executable, "-c", "import support.tf_import"], cwd=REPO)
    with tempfile.TemporaryDirectory() as out:
        seconds, peak = run_measured([sys.executable, str(REPO / "train.py"), "--cache", str(args.cache),
                                      "--out", out, "--epochs", "1"])
    print(f"\ntrain.py --epochs 1: {seconds:.0f} s, peak RSS {peak / 2**20:.0f} MB = cache {cache_mb:.0f} MB "
          f"+ importing TensorFlow {tensorflow_alone / 2**20:.0f} MB "
          f"+ {(peak - tensorflow_alone) / 2**20 - cache_mb:.0f} MB for training")


if __name__ == "__main__":
    runner.run_script(main, "nothing more was measured")
