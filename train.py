"""Train the crack classifier on the arrays cached by data_prep.py and report on the test split.

    python train.py                               # cache/ -> models/
    python train.py --epochs 5 --tensorboard      # then: tensorboard --logdir models/logs
    python train.py --distribute                  # all local GPUs (or 2 CPU replicas without one)
    python train.py --cache cache_site --init-from pretrained/crack_cnn.keras   # fine-tune on your site

The learning rate falls along a cosine to zero over --epochs, and the weights of the epoch with
the lowest validation loss are kept (--patience also stops early). The test split is used
once, at the end. Training batches are flipped and turned at random, shown in other light
(--capture) and some clean images given a drawn hairline (--thin-cracks); fine-tuning (--init-from)
keeps only the flips and turns. A cache made from several --src folders is balanced: each
source gives half (a third, ...) of every training batch and weighs the same in the validation
loss. With TF_CONFIG set, --distribute trains on several machines (see join_workers).
Written to --out (default models/):
  crack_cnn.keras        the trained model (takes raw RGB uint8 pixels; says what its output
                         means and how sure it can be, see calibrate)
  crack_cnn.tflite       the same model for the LiteRT runtime: predict.py without TensorFlow,
                         phones, a Raspberry Pi
  history.csv            loss and metrics per epoch
  metrics.json           test accuracy, precision, recall, F1, ROC AUC, confusion matrix, timing,
                         and the test accuracy on each source
  training_curves.png, confusion_matrix.png, roc_curve.png,
  test_predictions.png, misclassified.png, augmentation.png (with --augment)
  logs/                  TensorBoard logs (with --tensorboard)
"""

import signal
import sys


FITTING = {}  # "model": the model in model.fit, which Ctrl-C stops between batches (see exit_interrupted)


def exit_interrupted(*_):
    """Ctrl-C or SIGTERM at any moment: one line and status 130; `finally` blocks still clean up.

    During model.fit the model is told to stop after the batch at hand, and main() exits once fit
    has returned: an exception raised in the middle of fit, with tf.data's threads at work, crashed
    the interpreter now and then ("free(): invalid next size", status -6, about 1 run in 6). A
    second Ctrl-C exits at once.
    """
    model = FITTING.pop("model", None)
    if model is not None:
        model.stop_training = True
        FITTING["interrupted"] = True
        return
    print("\ninterrupted: no model was written", file=sys.stderr)
    raise SystemExit(130)


if __name__ == "__main__":  # installed before the slow imports below, so Ctrl-C during them is clean too
    signal.signal(signal.SIGINT, exit_interrupted)
    signal.signal(signal.SIGTERM, exit_interrupted)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from data_prep import CLASS_NAMES, PATCH_SIZE, SPLITS, save_image_grid, surface_texture  # noqa: E402

# The learning rate falls along a cosine from its start to zero over the epochs: big steps first,
# small ones last, so a run ends settled instead of jumping between epochs (see the README's seeds table).
DEFAULT_EPOCHS = 30
TARGET_VAL_ACCURACY = 0.995  # metrics.json says how many seconds training took to first reach it
MODEL_NAME = "crack_cnn.keras"
LITERT_NAME = "crack_cnn.tflite"
# The share of clean training images given a drawn hairline and labelled cracked (--thin-cracks): the
# dataset's cracks are mostly wide, and a model trained on them alone misses other surfaces' fine ones
# (README, "How the defaults were chosen"). Not when fine-tuning, which learns a site's own cracks.
THIN_CRACKS = 0.15
THIN_CRACK_SHAPES = 2048  # drawn once per run; flips, rotations and darkness vary them further
INT8_EXAMPLES = 300  # training images that calibrate --int8-litert
# Fine-tuning starts from weights that already work: a third of the learning rate keeps them from
# being thrown away in the first steps, and a few epochs are enough to adapt (README, "Teach it your
# surface": 1e-4 moved a model trained with drawn hairlines too little).
FINE_TUNE_LEARNING_RATE = 3e-4
FINE_TUNE_EPOCHS = 10
SURE_CANDIDATES = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]  # crack probabilities tried as "sure" (see calibrate)
WAIT_FOR_WORKERS = 300  # seconds; machines of a cluster are rarely started in the same minute
POLL_SECONDS = 5  # between "waiting for" lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("cache"), help="data_prep.py output (default: cache)")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models)")
    parser.add_argument("--epochs", type=int, help=f"epochs; the learning rate reaches zero at the last (default: {DEFAULT_EPOCHS})")
    parser.add_argument("--patience", type=int,
                        help="stop after this many epochs without a better validation loss (default: never; "
                             "the best epoch's weights are kept either way)")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size (default: 64)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help=f"Adam learning rate (default: model.py's; {FINE_TUNE_LEARNING_RATE} with --init-from)")
    parser.add_argument("--init-from", type=Path, metavar="MODEL",
                        help="fine-tune this trained .keras model (e.g. pretrained/crack_cnn.keras) instead of "
                             f"starting from random weights; defaults become --epochs {FINE_TUNE_EPOCHS}")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                        help="random flips and 90-degree rotations of training batches (default: on)")
    parser.add_argument("--capture", action=argparse.BooleanOptionalAction,
                        help="with --augment, also random capture conditions: contrast, brightness, colour, "
                             "white balance, tone curve, noise (default: on; off with --init-from, since a "
                             "site's own camera and light are what fine-tuning learns)")
    parser.add_argument("--thin-cracks", action=argparse.BooleanOptionalAction,
                        help=f"with --augment, draw a hairline crack on {THIN_CRACKS:.0%}% of the clean training "
                             "images and call them cracked, so that fine cracks of other surfaces are found "
                             "(default: on; off with --init-from)")
    parser.add_argument("--seed", type=int, default=42, help="seed for weights, shuffling and augmentation")
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to OUT/logs")
    parser.add_argument("--distribute", action="store_true",
                        help="MirroredStrategy over all local GPUs, or 2 CPU replicas when there is no GPU; "
                             "MultiWorkerMirroredStrategy when TF_CONFIG is set")
    parser.add_argument("--wait-for-workers", type=int, default=WAIT_FOR_WORKERS, metavar="SECONDS",
                        help=f"with TF_CONFIG: how long to wait for the other workers (default: {WAIT_FOR_WORKERS})")
    parser.add_argument("--mixed-precision", action="store_true", help="float16 compute on GPUs (mixed_float16)")
    parser.add_argument("--int8-litert", action="store_true",
                        help=f"quantise {LITERT_NAME} to int8: a quarter of the size, about 3x faster on a CPU, "
                             "probabilities a few hundredths off the .keras model's (default: float32, identical)")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = FINE_TUNE_EPOCHS if args.init_from else DEFAULT_EPOCHS
    if args.capture is None:
        args.capture = not args.init_from
    if args.thin_cracks is None:
        args.thin_cracks = not args.init_from
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be positive")
    if args.init_from and not args.init_from.is_file():
        parser.error(f"--init-from {args.init_from}: no such file")
    return args


def load_cache(folder):
    """The cached splits as (memory-mapped) arrays plus meta.json; exits clearly if incomplete."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise SystemExit(f"error: no complete cache in {folder}/ (no meta.json); "
                         f"run: python data_prep.py --src DATASET --out {folder}")
    again = f"run data_prep.py again to rebuild {folder}/"
    try:
        meta = json.loads(meta_path.read_text())
        counts = {split: meta["counts"][split]["total"] for split in SPLITS}
        image_size, class_names = int(meta["image_size"]), meta["class_names"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"error: {meta_path} is damaged ({type(error).__name__}: {error}); {again}")
    if class_names != CLASS_NAMES:
        raise SystemExit(f"error: {folder}/ has classes {class_names}, this train.py expects {CLASS_NAMES}")
    data = {}
    for split in SPLITS:
        try:
            x = np.load(folder / f"{split}_x.npy", mmap_mode="r")  # paged in as needed, never copied
            y = np.load(folder / f"{split}_y.npy")
        except (OSError, ValueError) as error:
            raise SystemExit(f"error: cache {folder}/ is damaged ({error}); {again}")
        if len(x) != len(y) or len(x) != counts[split] or x.shape[1:] != (image_size, image_size, 3):
            raise SystemExit(f"error: cache {folder}/ is inconsistent ({split}); {again}")
        data[split] = (x, y)
    if len(data["train"][0]) == 0 or len(data["val"][0]) == 0:
        raise SystemExit(f"error: cache {folder}/ has an empty train or validation split")
    return data, meta


def describe_cache(folder, meta):
    """One line on where the cache came from and how old it is: a stale cache is trained on knowingly."""
    sources = ", ".join(meta.get("sources") or [meta.get("source", "an unknown folder")])
    try:
        created = datetime.datetime.fromisoformat(meta["created"])
        minutes = (datetime.datetime.now(datetime.timezone.utc) - created).total_seconds() / 60
        age = (f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.0f} hours" if minutes < 2880
               else f"{minutes / 1440:.0f} days")
        when = f"made {age} ago ({created:%Y-%m-%d %H:%M})"
    except (KeyError, TypeError, ValueError):
        when = "date unknown"
    return f"cache {folder}/ from {sources}, {when}"


def read_tf_config():
    """(this worker's index, [every worker's host:port]) from TF_CONFIG, or a clear error."""
    try:
        config = json.loads(os.environ["TF_CONFIG"])
        workers, index = config["cluster"]["worker"], int(config["task"]["index"])
        assert config["task"]["type"] == "worker" and 0 <= index < len(workers)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise SystemExit('error: TF_CONFIG must look like {"cluster": {"worker": ["host:port", ...]}, '
                         '"task": {"type": "worker", "index": N}} with N one of the workers')
    return index, workers


def join_workers(tf, wait_seconds):
    """MultiWorkerMirroredStrategy once every worker in TF_CONFIG has started, or a clear error.

    TensorFlow waits for missing workers inside C++, silently, for as long as it takes and deaf
    to Ctrl-C. So the workers meet here first: each listens on its own TF_CONFIG address and
    waits, saying for whom, until every other one listens too, then hands the address over to
    TensorFlow, which then finds them all.
    """
    index, workers = read_tf_config()
    port = int(workers[index].rpartition(":")[2])
    try:
        server = socket.create_server(("", port))
    except OSError as error:
        raise SystemExit(f"error: worker {index} cannot listen on port {port} ({error.strerror})")
    server.setblocking(False)
    start = time.time()
    shown = start - POLL_SECONDS
    with server:
        while silent := [address for i, address in enumerate(workers) if i != index and not listening(address)]:
            waited = time.time() - start
            if waited >= wait_seconds:
                raise SystemExit(f"error: no worker listening at {', '.join(silent)} after {wait_seconds} s; "
                                 "start train.py on each machine of TF_CONFIG, or raise --wait-for-workers")
            if time.time() - shown >= POLL_SECONDS:
                print(f"worker {index}: waiting for {', '.join(silent)} ({waited:.0f} of {wait_seconds} s)", flush=True)
                shown = time.time()
            with contextlib.suppress(BlockingIOError):  # the others' probes: accept and hang up
                while True:
                    server.accept()[0].close()
            time.sleep(0.2)
    print(f"worker {index}: all {len(workers)} workers are up", flush=True)
    return tf.distribute.MultiWorkerMirroredStrategy(), index


def listening(address):
    """Whether something accepts TCP connections at host:port."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except (OSError, ValueError):
        return False


def work_around_keras_multi_worker(tf, model, sample_batch):
    """Let model.fit run under MultiWorkerMirroredStrategy, which Keras 3.15 breaks in two places.

    Keras builds the model from a sample batch that it averages across workers, and averages
    each step's metrics along an axis that scalars do not have (keras-team/keras#20585). The
    model is built here from a local batch instead, and metrics become 1-element vectors.
    """
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=sample_batch)
    model._maybe_symbolic_build = lambda **_: None
    for name in ("train_step", "test_step"):
        step = getattr(model, name)
        setattr(model, name, lambda data, step=step: {k: tf.reshape(v, [1]) for k, v in step(data).items()})


def choose_strategy(tf, args):
    """Pick the device(s): must run before TensorFlow creates any tensor. Returns (strategy, is_chief)."""
    gpus = tf.config.list_physical_devices("GPU")
    worker = 0
    if args.distribute and "TF_CONFIG" in os.environ:
        strategy, worker = join_workers(tf, args.wait_for_workers)
    elif args.distribute and not gpus:
        # No GPU: split the CPU into two logical devices, which exercises the same code path.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    elif args.distribute:
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()  # the default: one device, GPU:0 if there is one
    devices = [d.name for d in tf.config.list_physical_devices("GPU")] or ["CPU"]
    print(f"Training on {', '.join(devices)}" + (f" with {strategy.num_replicas_in_sync} replicas"
                                                 if args.distribute else "")
          + ("" if gpus else " (TensorFlow sees no GPU)")
          + (f" as worker {worker} of a multi-worker cluster" if "TF_CONFIG" in os.environ and args.distribute else ""))
    return strategy, worker == 0


def make_dataset(tf, x, y, batch_size, shuffle=False, augment=False, capture=False, seed=None, sources=None,
                 crack_shapes=None):
    """A tf.data pipeline of (uint8 image, float label, weight) batches gathered from numpy arrays.

    Only a batch's rows are read at a time, so a memory-mapped cache larger than RAM works and
    no float copy of the data set is ever made (the model scales pixels itself).

    `sources` (each row's --src index, from a cache of several sources) makes every source weigh
    the same: a shuffled training set draws its rows from each source equally often (a site folder
    of 100 images next to 20,000 dataset images is not drowned), and otherwise each row's weight is
    inversely proportional to its source's size, so the validation loss is the mean of the
    sources' losses and choosing the best epoch weighs all of them.
    """
    image_shape = x.shape[1:]
    weights = np.ones(len(x), np.float32)
    balanced = sources is not None and len(np.unique(sources)) > 1
    if balanced:
        counts = np.bincount(sources)
        weights = (len(x) / (np.count_nonzero(counts) * counts[sources])).astype(np.float32)

    def gather(rows):
        rows = np.sort(rows)  # in file order: sequential reads from a memory map
        return x[rows], y[rows].astype(np.float32), weights[rows]

    def read_batch(rows):
        images, labels, row_weights = tf.numpy_function(gather, [rows], (tf.uint8, tf.float32, tf.float32))
        return (tf.ensure_shape(images, (None, *image_shape)), tf.ensure_shape(labels, (None,)),
                tf.ensure_shape(row_weights, (None,)))

    if shuffle and balanced:
        per_source = [tf.data.Dataset.from_tensor_slices(np.flatnonzero(sources == s)).repeat()
                      .shuffle(np.count_nonzero(sources == s), seed=seed, reshuffle_each_iteration=True)
                      for s in np.unique(sources)]
        dataset = tf.data.Dataset.sample_from_datasets(per_source, seed=seed).take(len(x))
        weights[:] = 1  # the sampling already balances the sources
    else:
        dataset = tf.data.Dataset.range(len(x))
        if shuffle:
            dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(read_batch, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(3, drop_remainder=True)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda batch, s: augment_batch(tf, *batch, s, capture, crack_shapes), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def random_symmetry(tf, images, seeds):
    """Each image flipped and rotated by a random multiple of 90 degrees.

    Cracks have no preferred direction. A random transpose plus random left-right and up-down
    flips gives all eight symmetries of the square (Keras has no 90-degree rotation layer), and
    the stateless ops keep a seeded run repeatable inside a parallel pipeline.
    """
    images = tf.cast(images, tf.float32)  # oneDNN has uint8 kernels only on AVX-512 CPUs
    images = tf.image.stateless_random_flip_left_right(images, seed=seeds[0:2])
    images = tf.image.stateless_random_flip_up_down(images, seed=seeds[1:3])
    transpose = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed=seeds[::2]) < 0.5
    return tf.where(transpose, tf.transpose(images, [0, 2, 1, 3]), images)


def random_capture(tf, images, seed):
    """Each image as if taken by another camera in other light (float 0-255 in and out).

    The data set's patches come from one camera on one campus; users' photos differ in exposure,
    contrast, white balance, colourfulness, tone curve and sensor noise. Varying these (by amounts
    a phone photo plausibly differs) raised validation accuracy and made false alarms on real walls
    and paving fewer (README, "How the defaults were chosen"). Blur is left out: it erases the
    thin cracks a 64 px input still shows; shrinking images (photos from farther away) did not help.
    """
    keys = tf.random.experimental.stateless_split(seed, num=7)
    n = tf.shape(images)[0]

    def per_image(key, low, high, channels=1):
        return tf.random.stateless_uniform([n, 1, 1, channels], seed=key, minval=low, maxval=high)

    x = images / 255.0
    x = x * per_image(keys[0], 0.7, 1.3) + per_image(keys[1], -0.1, 0.1)  # contrast, brightness
    grey = tf.reduce_mean(x, axis=3, keepdims=True)
    x = grey + (x - grey) * per_image(keys[2], 0.3, 1.7)  # colourfulness
    x = x * per_image(keys[3], 0.9, 1.1, channels=3)  # white balance
    x = tf.clip_by_value(x, 1e-3, 1.0) ** per_image(keys[4], 0.7, 1.4)  # tone curve
    x = x + tf.random.stateless_normal(tf.shape(x), seed=keys[5]) * per_image(keys[6], 0.0, 0.03)  # noise
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def thin_crack_shapes(count, size, seed, oversample=4):
    """`count` hairline cracks as darkness masks (float32 0-1, size x size): jagged walks 0.75-1.75 px wide.

    Each crosses the patch in a general direction, wavering at every step and sometimes branching,
    drawn anti-aliased at `oversample` times the size and shrunk, with a darkness that varies along
    it as a real crack opens and closes.
    """
    rng = np.random.default_rng(seed)
    big = size * oversample
    shapes = np.zeros((count, size, size), np.float32)
    for i in range(count):
        canvas = np.zeros((big, big), np.uint8)
        for branch in range(1 + (rng.random() < 0.3)):
            heading = rng.uniform(0, 2 * np.pi)
            direction = np.array([np.cos(heading), np.sin(heading)])
            point = rng.uniform(0.2, 0.8, 2) * big if branch else big / 2 - 0.75 * big * direction
            angle, points = heading, [point]
            for _ in range(int(big * (rng.uniform(0.15, 0.4) if branch else 0.32))):
                angle = heading + 0.7 * (angle - heading) + rng.normal(0, 0.45)
                point = point + rng.uniform(3, 7) * np.array([np.cos(angle), np.sin(angle)])
                points.append(point)
            fixed_point = np.round(np.array(points) * 16).astype(np.int32)  # 4 fractional bits
            cv2.polylines(canvas, [fixed_point], False, 255, thickness=int(rng.integers(3, 8)),
                          lineType=cv2.LINE_AA, shift=4)
        darkness = cv2.resize(rng.uniform(0.4, 1.0, (4, 4)).astype(np.float32), (size, size),
                              interpolation=cv2.INTER_CUBIC)
        shapes[i] = np.clip(cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA) / 255 * darkness, 0, 1)
    return shapes


def add_thin_cracks(tf, images, labels, weights, shapes, seed, share=THIN_CRACKS):
    """A hairline drawn on `share` of a batch's clean images, now labelled cracked (float images).

    Weights keep the two classes' total weight as it was, so the network's notion of how common
    cracks are does not shift with `share`.
    """
    keys = tf.random.experimental.stateless_split(seed, num=3)
    n = tf.shape(images)[0]
    drawn = (tf.random.stateless_uniform([n], seed=keys[0]) < share) & (labels < 0.5)
    shape = tf.gather(shapes, tf.random.stateless_uniform([n], seed=keys[1], maxval=len(shapes), dtype=tf.int32))
    darkness = tf.random.stateless_uniform([n, 1, 1], seed=keys[2], minval=0.3, maxval=0.8)
    images = images * (1 - tf.where(drawn[:, None, None], darkness * shape, 0.0))[..., None]
    labels = tf.where(drawn, 1.0, labels)
    weights = weights * tf.where(labels > 0.5, 1 / (1 + share), 1 / (1 - share))
    return images, labels, weights


def augment_batch(tf, images, labels, weights, seeds, capture=True, crack_shapes=None, crack_share=THIN_CRACKS):
    """A uint8 training batch turned (random symmetry), given hairlines (with crack_shapes) and taken
    in other light (with capture); float images out."""
    images = random_symmetry(tf, images, seeds)
    if crack_shapes is not None:
        images, labels, weights = add_thin_cracks(tf, images, labels, weights, crack_shapes, seeds[1:], crack_share)
    return (random_capture(tf, images, seeds[:2]) if capture else images), labels, weights


def predict_probabilities(model, tf, x, batch_size=256):
    """Crack probability of every row of x, in order.

    The model is called directly rather than through model.predict, which under a multi-worker
    strategy would wait for every worker to predict too.
    """
    dataset = make_dataset(tf, x, np.zeros(len(x), np.uint8), batch_size)
    return np.concatenate([model(images, training=False).numpy().ravel() for images, _, _ in dataset])


# ----------------------------------------------------------------------------------------------
# Test-split report


def binary_report(y_true, prob, threshold):
    """Accuracy, per-class precision/recall/F1, ROC AUC and confusion counts as a dict."""
    y_pred = (prob >= threshold).astype(int)
    matrix = [[int(np.sum((y_true == t) & (y_pred == p))) for p in (0, 1)] for t in (0, 1)]
    per_class = {}
    for label, name in enumerate(CLASS_NAMES):
        tp = matrix[label][label]
        predicted = sum(matrix[t][label] for t in (0, 1))
        actual = sum(matrix[label])
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    fpr, tpr = roc_curve(y_true, prob)
    return {
        "accuracy": float(np.mean(y_pred == y_true)),
        "threshold": threshold,
        "roc_auc": float(np.trapezoid(tpr, fpr)),
        "per_class": per_class,
        "confusion_matrix": {"rows_true_cols_predicted": CLASS_NAMES, "counts": matrix},
    }


def roc_curve(y_true, prob):
    """False- and true-positive rates over all thresholds (ties kept together)."""
    order = np.argsort(-prob, kind="stable")
    prob, y_true = prob[order], y_true[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(prob)), len(prob) - 1]
    tps = np.cumsum(y_true)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.r_[0, tps / max(tps[-1], 1)]
    fpr = np.r_[0, fps / max(fps[-1], 1)]
    return fpr, tpr


def print_report(report):
    print(f"\n{'':>10}{'precision':>11}{'recall':>9}{'f1-score':>10}{'support':>9}")
    for name, row in report["per_class"].items():
        print(f"{name:>10}{row['precision']:>11.4f}{row['recall']:>9.4f}{row['f1']:>10.4f}{row['support']:>9}")
    total = sum(row["support"] for row in report["per_class"].values())
    print(f"{'accuracy':>10}{'':>20}{report['accuracy']:>10.4f}{total:>9}")
    print(f"ROC AUC {report['roc_auc']:.4f}, threshold {report['threshold']}")
    (tn, fp), (fn, tp) = report["confusion_matrix"]["counts"]
    print(f"confusion matrix (rows true, columns predicted): [[{tn} {fp}] [{fn} {tp}]]\n")


# ----------------------------------------------------------------------------------------------
# Plots


def plot_history(plt, history, path):
    """Accuracy, loss (log scale: the late epochs' differences are small) and the learning rate per epoch."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ["accuracy", "loss"]):
        ax.plot(epochs, history[key], "o-", label="training")
        ax.plot(epochs, history[f"val_{key}"], "o-", label="validation")
        ax.set(xlabel="epoch", ylabel=key, title=key.capitalize())
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_yscale("log")
    axes[2].plot(epochs, history["learning_rate"], "o-", color="grey")
    axes[2].set(xlabel="epoch", ylabel="learning rate", title="Learning rate (at the end of each epoch)")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(plt, counts, path):
    counts = np.array(counts)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(counts, cmap="Blues")
    for (t, p), n in np.ndenumerate(counts):
        ax.text(p, t, str(n), ha="center", va="center", fontsize=14,
                color="white" if n > counts.max() / 2 else "black")
    ax.set_xticks([0, 1], CLASS_NAMES)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc(plt, y_true, prob, auc, path):
    fpr, tpr = roc_curve(y_true, prob)
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    ax.plot(fpr, tpr, label=f"AUC = {auc:.4f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC curve (test split)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_prediction_grid(x, y, prob, rows, threshold, path, heading):
    """Test images with their true class and predicted crack probability, wrong ones in red."""
    titles = [f"true {CLASS_NAMES[y[r]]}\np(crack) = {prob[r]:.3f}" for r in rows]
    colors = ["seagreen" if (prob[r] >= threshold) == y[r] else "crimson" for r in rows]
    save_image_grid([x[r] for r in rows], titles, path, heading, colors=colors, columns=4)


# ----------------------------------------------------------------------------------------------


def calibrate(model, tf, train_x, val_x, val_y, threshold):
    """What predict.py needs to judge its own evidence, measured on this model's data:

    smooth_below: the texture (data_prep.surface_texture) that 99.5% of training images exceed;
      a photo mostly smoother than that is unlike anything the model learned from.
    sure_threshold: the lowest crack probability from which the validation split's calls are at
      least 99.9% right; between the threshold and it, predict says "uncertain".
    """
    texture = np.concatenate([surface_texture(np.asarray(train_x[i:i + 4096])) for i in range(0, len(train_x), 4096)])
    prob = predict_probabilities(model, tf, val_x)
    sure = next((t for t in SURE_CANDIDATES if np.sum((prob >= t) & (val_y == 1)) >= 0.999 * np.sum(prob >= t)),
                SURE_CANDIDATES[-1])
    return {"smooth_below": round(float(np.percentile(texture, 0.5)), 3), "sure_threshold": max(sure, threshold)}


def load_starting_model(keras, path, image_size):
    """A trained model to fine-tune; it must take the cache's image size."""
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged or foreign file
        raise SystemExit(f"error: cannot load --init-from {path}: {str(exc).splitlines()[0]}")
    if model.input_shape[1:3] != (image_size, image_size):
        raise SystemExit(f"error: {path} takes {model.input_shape[1]} px images but the cache holds {image_size} px; "
                         f"run data_prep.py with --size {model.input_shape[1]}")
    print(f"fine-tuning {path}")
    return model


def save_augmentation_examples(tf, x, y, seed, path, capture=True, crack_shapes=None, count=6):
    """The first training images beside augmented copies of them: what augmentation feeds the model.

    With crack_shapes, half the clean ones get a hairline (training draws on fewer) so the figure shows some.
    """
    originals, labels = np.asarray(x[:count]), np.asarray(y[:count], np.float32)
    seeds = tf.constant([seed, seed + 1, seed + 2], tf.int64)
    augmented, new_labels, _ = augment_batch(tf, tf.constant(originals), tf.constant(labels), tf.ones(count), seeds,
                                             capture, crack_shapes, crack_share=0.5)
    augmented = np.round(augmented.numpy()).astype(np.uint8)
    titles = [title for old, new in zip(labels, new_labels.numpy())
              for title in ("original", "hairline drawn" if new != old else "augmented")]
    save_image_grid([image for pair in zip(originals, augmented) for image in pair], titles, path,
                    "Augmentation: flips, 90-degree rotations" + (", capture conditions" if capture else "")
                    + (", drawn hairlines" if crack_shapes is not None else ""), columns=4)
    return originals, augmented


def seconds_to(accuracy, history):
    """Training seconds until the validation accuracy first reached `accuracy` (None if never)."""
    reached = [t for t, a in zip(history["seconds"], history["val_accuracy"]) if a >= accuracy]
    return reached[0] if reached else None


def write_json(data, path):
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    data, meta = load_cache(args.cache)  # before importing TensorFlow: a bad cache fails fast
    if args.out.exists() and not args.out.is_dir():
        raise SystemExit(f"error: --out {args.out} is a file; give a folder")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # model.py imports TensorFlow quietly
    from model import LEARNING_RATE, THRESHOLD, build_model, compile_model, export_litert, keras, save_model, tf

    strategy, is_chief = choose_strategy(tf, args)
    if not is_chief:  # the other workers of a cluster train alongside; worker 0 writes the results
        args.out = Path(tempfile.mkdtemp(prefix="crack-worker-"))
    args.out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
        if not tf.config.list_physical_devices("GPU"):
            print("note: --mixed-precision speeds up GPUs; on a CPU it is usually slower")

    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (data[s] for s in SPLITS)
    print(describe_cache(args.cache, meta))
    print(f"{len(train_x)} training, {len(val_x)} validation, {len(test_x)} test images of "
          f"{meta['image_size']}x{meta['image_size']} px")
    sources = {split: np.array(meta["file_sources"][split]) if len(meta.get("sources", [])) > 1 else None
               for split in SPLITS}
    if sources["train"] is not None:
        print("every source weighs the same in training and validation: "
              + ", ".join(f"{np.count_nonzero(sources['train'] == i)} training images from {src}"
                          for i, src in enumerate(meta["sources"])))
    crack_shapes = (tf.constant(thin_crack_shapes(THIN_CRACK_SHAPES, meta["image_size"], args.seed))
                    if args.augment and args.thin_cracks else None)
    train_ds = make_dataset(tf, train_x, train_y, args.batch_size, shuffle=True, augment=args.augment,
                            capture=args.capture, seed=args.seed, sources=sources["train"], crack_shapes=crack_shapes)
    val_ds = make_dataset(tf, val_x, val_y, args.batch_size, sources=sources["val"])
    if args.augment:
        save_augmentation_examples(tf, train_x, train_y, args.seed, args.out / "augmentation.png", args.capture,
                                   crack_shapes)

    steps = args.epochs * -(-len(train_x) // args.batch_size)
    learning_rate = keras.optimizers.schedules.CosineDecay(
        args.learning_rate or (FINE_TUNE_LEARNING_RATE if args.init_from else LEARNING_RATE), decay_steps=steps)
    with strategy.scope():
        if args.init_from:
            model = load_starting_model(keras, args.init_from, meta["image_size"])
            compile_model(model, learning_rate)
        else:
            model = build_model(meta["image_size"], learning_rate)
    model.summary()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        work_around_keras_multi_worker(tf, model, next(iter(train_ds)))

    history_tmp = args.out / ".partial-history.csv"  # renamed when training is over
    start = time.time()

    def log_learning_rate_and_time(epoch, logs):  # into history.csv, for the curves and the time to accuracy
        logs.update(learning_rate=float(model.optimizer.learning_rate), seconds=round(time.time() - start, 1))

    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=log_learning_rate_and_time),
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience or args.epochs,
                                               restore_best_weights=True, verbose=1),
                 keras.callbacks.CSVLogger(str(history_tmp))]
    if args.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(args.out / "logs")))
    FITTING["model"] = model
    try:
        history = model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, callbacks=callbacks,
                            shuffle=False, verbose=2)  # the pipeline shuffles each epoch itself
    except BaseException:  # a second Ctrl-C included: no half-written history is left behind
        history_tmp.unlink(missing_ok=True)
        raise
    finally:
        FITTING.pop("model", None)
    if FITTING.pop("interrupted", False):  # Ctrl-C stopped fit
        history_tmp.unlink(missing_ok=True)
        exit_interrupted()
    train_seconds = time.time() - start
    epochs_run = len(history.history["loss"])

    os.replace(history_tmp, args.out / "history.csv")
    info = {"class_names": CLASS_NAMES, "image_size": meta["image_size"], "threshold": THRESHOLD,
            **calibrate(model, tf, train_x, val_x, val_y, THRESHOLD),
            "patch_size": PATCH_SIZE, "trained_on": meta.get("sources"), "init_from": str(args.init_from or ""),
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "litert_int8": args.int8_litert}
    save_model(model, args.out / MODEL_NAME, info)
    int8_examples = None
    if args.int8_litert:  # a few hundred training images set the ranges of the int8 activations
        int8_examples = np.asarray(train_x[np.sort(np.random.default_rng(args.seed).choice(
            len(train_x), min(INT8_EXAMPLES, len(train_x)), replace=False))])
    # The same model, for predicting without TensorFlow
    export_litert(model, args.out / LITERT_NAME, info, int8_examples)

    report = {"split": "test", "images": int(len(test_x))}
    if len(test_x):
        prob = predict_probabilities(model, tf, test_x)
        report.update(binary_report(test_y, prob, THRESHOLD))
        print_report(report)
        if sources["test"] is not None:  # how the model does on each source, e.g. your site
            report["per_source"] = {}
            for i, src in enumerate(meta["sources"]):
                rows = sources["test"] == i
                correct = (prob[rows] >= THRESHOLD) == test_y[rows]
                cracks = test_y[rows] == 1
                report["per_source"][src] = {"images": int(rows.sum()), "accuracy": float(correct.mean()),
                                             "crack_recall": float(correct[cracks].mean()) if cracks.any() else None}
                print(f"test accuracy {correct.mean():.4f} on {rows.sum()} images from {src}")
        plot_confusion_matrix(plt, report["confusion_matrix"]["counts"], args.out / "confusion_matrix.png")
        plot_roc(plt, test_y, prob, report["roc_auc"], args.out / "roc_curve.png")
        rng = np.random.default_rng(args.seed)
        sample = rng.choice(len(test_x), size=min(16, len(test_x)), replace=False)
        save_prediction_grid(test_x, test_y, prob, sample, THRESHOLD, args.out / "test_predictions.png",
                             "Sample test predictions")
        wrong = np.flatnonzero((prob >= THRESHOLD) != test_y)
        save_prediction_grid(test_x, test_y, prob, wrong[:16], THRESHOLD, args.out / "misclassified.png",
                             f"Misclassified test images ({len(wrong)} of {len(test_x)}"
                             + (", first 16)" if len(wrong) > 16 else ")"))
    plot_history(plt, history.history, args.out / "training_curves.png")
    best = int(np.argmin(history.history["val_loss"]))
    report.update({
        "image_size": meta["image_size"],
        "epochs_run": epochs_run,
        "best_epoch": best + 1,
        "best_val_loss": float(history.history["val_loss"][best]),
        "best_val_accuracy": float(history.history["val_accuracy"][best]),
        "training_seconds": round(train_seconds, 1),
        f"seconds_to_val_accuracy_{TARGET_VAL_ACCURACY}": seconds_to(TARGET_VAL_ACCURACY, history.history),
        "seconds_per_epoch": round(train_seconds / epochs_run, 1),
        "batch_size": args.batch_size,
        "augment": args.augment,
        "capture": args.augment and args.capture,
        "thin_cracks": THIN_CRACKS if args.augment and args.thin_cracks else 0.0,
        "seed": args.seed,
        "replicas": strategy.num_replicas_in_sync,
        "mixed_precision": args.mixed_precision,
    })
    write_json(report, args.out / "metrics.json")
    if not is_chief:
        shutil.rmtree(args.out)
        print(f"trained {epochs_run} epochs; worker 0 wrote the model")
        return
    print(f"trained {epochs_run} epochs in {train_seconds:.0f} s ({train_seconds / epochs_run:.1f} s/epoch); "
          f"best epoch {best + 1}; wrote {args.out / MODEL_NAME} and reports to {args.out}/\n"
          f"use it: python predict.py PHOTO --model {args.out / MODEL_NAME}")


if __name__ == "__main__":
    try:
        main()
    except OSError as failure:  # disk full, no permission, a file where a folder should be: one line
        sys.exit(f"error: {failure.filename or ''}: {failure.strerror or failure}")
    except SystemExit as stop:
        if stop.code != 130:
            raise
        # Interrupted mid-training, tf.data's threads are still at work, and tearing the interpreter
        # down under them crashed it now and then ("free(): invalid next size", status -6 instead of
        # 130, about 1 run in 6). Everything worth cleaning up is done: leave without the teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
