"""Train the classifier on the arrays cached by data_prep.py and report on the test split.

    python train.py                              # cache/ -> models/
    python train.py --epochs 5 --tensorboard     # then: tensorboard --logdir models/logs
    python train.py --cache site_cache --init-from pretrained/crack_cnn.keras   # fine-tune on your site
    python train.py --distribute                 # all local GPUs (support/distribute.py)
    python train.py --verbose                    # also the layers, a line per epoch and the test tables

The classes are the cache's (meta.json). The learning rate falls along a cosine to zero over
--epochs, and the weights of the epoch with the lowest validation loss are kept; the test split is
used once, at the end. Training batches are flipped and turned at random; a crack model's are also
shown in other light (--capture) and some clean ones get a drawn hairline (--thin-cracks), except
when fine-tuning (--init-from). The sources after the first --src (your site) make a fifth of every
batch (--site-share); when fine-tuning, a few marks less, each seen about 30 times (--site-repeats),
and a site of 1,000 images or more trains at the full learning rate for 40 epochs. Photos given a
verdict in the report (data_prep.py --src notes.csv) teach through their telling tiles, and the photos
you called crack stay crack: the epoch kept is the best that keeps the most of them, and any photo it
could not keep is named (support/bags.py).

Written to --out (default models/): model.keras and model.tflite (for the LiteRT runtime), which take
raw RGB uint8 pixels and say what their output means and how they were trained (the recipe),
history.csv, metrics.json, the test split's figures (PNG), and logs/ with --tensorboard.
"""

import argparse
import dataclasses
import datetime
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from model import INPUT_SIZE, LEARNING_RATE, MIN_INPUT_SIZE, THRESHOLD, build_model, compile_model
from support import (atomic_files, bags, batches, cache, distribute, evaluation, output_folders, runner,
                     training_summary, unfamiliar)
from support.errors import InputError
from support.images import check_not_among_images
from model import BATCH_SIZE, EPOCHS, SEED  # the knobs every run turns stand in model.py
from support.calibration import texture_floor
from support.model_files import check_starting_model, export_litert, save_model, tile_for
from support.plots import plot_history, save_test_figures
from support.verdicts import verdict_rule
from support.tf_import import keras

# Other classes usually come in small folders, where 30 epochs are a few hundred steps: such a model
# trains for at least MIN_STEPS steps, up to MAX_EPOCHS epochs (docs/EXPERIMENTS.md, "Your own classes";
# VerdictRule.small_folders). The knobs every run turns (epochs, batch size, learning rate, seed): model.py.
MIN_STEPS, MAX_EPOCHS = 2400, 200
MODEL_NAME, LITERT_NAME = "model.keras", "model.tflite"
# Fine-tuning starts from weights that already work: a third of the learning rate keeps them, a few
# epochs adapt them; a site labelled whole (LARGE_SITE images or more, e.g. from masks) has cracks of its
# own to learn, at the full rate, for 40 epochs, as SITE_SHARE of every batch (docs/EXPERIMENTS.md).
FINE_TUNE_LEARNING_RATE, FINE_TUNE_EPOCHS = 3e-4, 10
LARGE_SITE, LARGE_SITE_EPOCHS = 1000, 40
# A site's own images (the --src folders or labels after the dataset) make this share of every training
# batch: 0.35 and 0.5 were no better on a road site (docs/EXPERIMENTS.md, "Whole sites").
SITE_SHARE = 0.2
# Fine-tuning shows each site image about this many times (a share under SITE_SHARE if few): marks shown
# hundreds of times are learnt by heart and unlearn cracks elsewhere (EXPERIMENTS.md, "Correcting it on a site").
SITE_REPEATS = 30


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("cache"), help="data_prep.py output (default: cache)")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models)")
    parser.add_argument("--epochs", type=int,
                        help=f"epochs; the learning rate reaches zero at the last (default: {EPOCHS}; with --init-from "
                             "10, 40 for a site of 1,000 images; other classes: enough for 2,400 steps, up to 200)")
    parser.add_argument("--patience", type=int,
                        help="stop after this many epochs (1 or more) without a better validation loss "
                             "(default: never; the best epoch's weights are kept anyway)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"global batch size (default: {BATCH_SIZE})")
    parser.add_argument("--learning-rate", type=float,
                        help="Adam's starting learning rate (default: 1e-3; 3e-4 with --init-from and few site images)")
    parser.add_argument("--init-from", type=Path, metavar="MODEL",
                        help="fine-tune this trained .keras model (e.g. pretrained/crack_cnn.keras) "
                             "instead of starting from random weights")
    parser.add_argument("--site-share", type=float, default=SITE_SHARE,
                        help="in a cache of several --src, the share of every training batch drawn from the "
                             "sources after the first, e.g. your site's tiles, at most (default: 0.2)")
    parser.add_argument("--site-repeats", type=float, default=SITE_REPEATS,
                        help="with --init-from and under 1,000 site images: show each about this many times, "
                             "by a smaller --site-share (default: 30)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                        help="random flips and 90-degree rotations of training batches (default: on)")
    parser.add_argument("--capture", action=argparse.BooleanOptionalAction,
                        help="with --augment, also random contrast, brightness, colour, white balance, tone "
                             "curve and noise (default: on for a crack model trained from scratch)")
    parser.add_argument("--thin-cracks", action=argparse.BooleanOptionalAction,
                        help=f"crack models: draw a hairline on {batches.THIN_CRACKS:.0%}% of the clean training "
                             "images and call them cracked, so that fine cracks of other surfaces are found "
                             "(default: on; off with --init-from)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed for weights, shuffling and augmentation")
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to OUT/logs")
    parser.add_argument("--verbose", action="store_true",
                        help="also print the network's layers, a line per epoch and the test split's tables")
    parser.add_argument("--distribute", action="store_true",
                        help="MirroredStrategy over all local GPUs, or 2 CPU replicas when there is no GPU; "
                             "MultiWorkerMirroredStrategy when TF_CONFIG is set")
    parser.add_argument("--wait-for-workers", type=int, default=distribute.WAIT_FOR_WORKERS, metavar="SECONDS",
                        help="with TF_CONFIG: how long to wait for the other workers (default: 300)")
    parser.add_argument("--mixed-precision", action="store_true", help="float16 compute on GPUs (mixed_float16)")
    parser.add_argument("--int8-litert", action="store_true",
                        help=f"quantise {LITERT_NAME} to int8: a quarter of the size, about 3x faster on a CPU, "
                             "probabilities a few hundredths off the .keras model's (default: float32)")
    args = parser.parse_args(argv)
    if (args.epochs is not None and args.epochs < 1) or args.batch_size < 1 or args.seed < 0:
        parser.error("--epochs and --batch-size must be positive, --seed 0 or more")
    if args.patience is not None and args.patience < 1:  # 0 would fall through to "never stop" in fit
        parser.error("--patience must be 1 or more; leave it out to train every epoch")
    if not 0 < args.site_share < 1 or not args.site_repeats > 0:
        parser.error("--site-share must be between 0 and 1, --site-repeats positive")
    if args.init_from and not args.init_from.is_file():
        parser.error(f"--init-from {args.init_from}: no such file")
    return args


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a run trains, resolved once (choose_recipe), printed and saved in the model's info and metrics.json."""
    epochs: int
    learning_rate: float  # Adam's at the start, falling along a cosine to zero
    batch_size: int
    site_share: float  # of every training batch, drawn from the sources after the first (a site)
    augment: bool
    capture: bool
    thin_cracks: float  # the share of clean training images given a drawn hairline
    patience: int | None
    seed: int
    init_from: str  # the model fine-tuned, or ""


def choose_recipe(args, meta, rule):
    """The run's Recipe: how long to train, how fast, and whether to vary the light.

    Capture conditions help a crack model generalise to other cameras; for other classes, colour
    can be what tells them apart, and they cost 4-13 points on four real classes. A site with few
    images makes a smaller share of each batch (SITE_REPEATS), a large one trains longer (LARGE_SITE).
    The model's kind (`rule`, verdicts.VerdictRule) says whether it draws hairlines and trains at least
    MIN_STEPS steps.
    """
    fine_tuning, train_images = bool(args.init_from), meta["counts"]["train"]["total"]
    site_images = sum(source > 0 for source in meta["file_sources"]["train"])  # of the --src after the first
    steps_per_epoch = -(-train_images // args.batch_size)
    reviewed = sum(photo >= 0 for photo in meta.get("bags", {}).get("train", []))  # tiles of photos given a verdict: weak labels
    large_site = fine_tuning and site_images - reviewed >= LARGE_SITE
    at_least = -(-MIN_STEPS // steps_per_epoch) if rule.small_folders else 0  # epochs
    epochs = args.epochs or (LARGE_SITE_EPOCHS if large_site else FINE_TUNE_EPOCHS if fine_tuning
                             else min(MAX_EPOCHS, max(EPOCHS, at_least)))
    few_marks = fine_tuning and not large_site  # seen about --site-repeats times each, not learnt by heart
    share = min(args.site_share, args.site_repeats * site_images / (epochs * train_images) if few_marks else 1)
    scratch = rule.draws_cracks and not fine_tuning  # capture conditions and drawn hairlines by default
    recipe = Recipe(
        epochs=epochs, learning_rate=args.learning_rate or (FINE_TUNE_LEARNING_RATE if few_marks else LEARNING_RATE),
        batch_size=args.batch_size, site_share=share if site_images else 0.0, augment=args.augment,
        capture=args.augment and (scratch if args.capture is None else args.capture),
        thin_cracks=batches.THIN_CRACKS if args.augment and (scratch if args.thin_cracks is None else args.thin_cracks)
        else 0.0, patience=args.patience, seed=args.seed, init_from=str(args.init_from or ""))
    print("recipe: " + ", ".join(f"{key.replace('_', ' ')} {f'{value:.3g}' if isinstance(value, float) else value}"
                                 for key, value in vars(recipe).items())
          + (f" (each site image seen {share * epochs * train_images / site_images:.0f} times)" if site_images else ""))
    return recipe


def load_starting_model(path):
    """The --init-from model, uncompiled: it chooses the tiles of photos you called crack (bags.choose_tiles),
    then it is the model fine-tuned."""
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged or foreign file
        raise InputError(f"cannot load --init-from {path}: {str(exc).splitlines()[0]}")
    print(f"fine-tuning {path}")
    return model


def build_or_compile_model(starting_model, meta, recipe):
    """A new network, or the starting model (None: train from scratch), compiled with a learning rate
    that falls along a cosine to zero at the last step."""
    steps = recipe.epochs * -(-meta["counts"]["train"]["total"] // recipe.batch_size)
    learning_rate = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, decay_steps=steps)
    if starting_model is None:
        return build_model(meta["image_size"], len(meta["class_names"]), learning_rate)
    policy = keras.mixed_precision.global_policy()
    if policy.compute_dtype != starting_model.layers[0].compute_dtype:  # --mixed-precision: a loaded model
        for layer in starting_model.layers[:-1]:  # keeps the policy it was saved with; the output stays float32
            layer.dtype_policy = policy           # (model.py says why), the weights stay float32 (Keras's rule)
    return compile_model(starting_model, learning_rate)


def check_inputs(args, meta):
    """Refuse, before any work, an --out holding what train.py did not write, a model to fine-tune made
    for other classes or images, and --thin-cracks for classes that are no cracks; then say what the
    cache holds. Returns its VerdictRule: what kind of model (Özgenel's classes)."""
    output_folders.check_ours("--out", args.out, "train.py output")
    check_not_among_images("--out", args.out)
    if args.init_from:
        check_starting_model(args.init_from, meta)
    elif meta["image_size"] < MIN_INPUT_SIZE:  # a cache made for a network with fewer blocks
        raise InputError(f"{args.cache} holds {meta['image_size']} px images but the network takes "
                         f"{MIN_INPUT_SIZE} px or more (model.py); run data_prep.py with --size {INPUT_SIZE}")
    rule = verdict_rule(meta)
    if args.thin_cracks and not rule.draws_cracks:  # only a crack model's images are given hairlines
        raise InputError(f"--thin-cracks draws cracks, but the classes are {', '.join(meta['class_names'])}")
    print(cache.describe_cache(args.cache, meta))
    return rule


def fit(model, train_ds, val_ds, recipe, folder, tensorboard=False, crack_photos=None):
    """(history, seconds) of model.fit, the best epoch's weights kept (with crack_photos, the best of
    those that keep the most of them crack: bags.guard); history.csv written when fit is done."""
    start = time.time()

    def log_learning_rate_and_time(epoch, logs):  # into history.csv, for the curves and the time to accuracy
        logs.update(learning_rate=float(model.optimizer.learning_rate), seconds=round(time.time() - start, 1))

    with atomic_files.writing(folder / "history.csv") as history_csv:
        guard = [bags.guard(model, crack_photos, bags.sure_threshold(recipe.init_from))] if crack_photos else []
        callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=log_learning_rate_and_time), *guard,
                     keras.callbacks.EarlyStopping(monitor="guarded_val_loss" if guard else "val_loss",
                                                   patience=recipe.patience or recipe.epochs,
                                                   mode="min", restore_best_weights=True, verbose=1),
                     keras.callbacks.CSVLogger(str(history_csv))]
        if tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(folder / "logs")))
        # Ctrl-C stops fit after the batch at hand: an exception raised in the middle of fit, with
        # tf.data's threads at work, crashed the interpreter now and then.
        with runner.stop_at_a_safe_point(lambda: setattr(model, "stop_training", True)):
            history = model.fit(train_ds, validation_data=val_ds, epochs=recipe.epochs, callbacks=callbacks,
                                shuffle=False, verbose=2)  # the pipeline shuffles each epoch itself
    return history.history, time.time() - start


def save_models(model, data, meta, rule, recipe, folder, int8_litert=False, crack_highest=None):
    """The .keras and .tflite files, each carrying what the model's output means and how it was made
    (its info); returns the calibration: how sure it can be (VerdictRule.calibrate), and the texture
    below which an image is unlike its training images (calibration.texture_floor). crack_highest:
    the highest crack probability of each photo you called crack (bags.CrackPhotos.read), or None."""
    (train_x, _), (val_x, val_y) = data["train"], data["val"]
    val_probs = batches.predict_probabilities(model, val_x)
    calibration = {**rule.calibrate(val_probs, val_y, THRESHOLD, meta["file_sources"]["val"] if recipe.init_from
                                    else None), "smooth_below": texture_floor(train_x)}
    if crack_highest is not None:  # a tile as crack-like as those of photos you called crack is no weak evidence
        calibration = bags.sure_for_crack_photos(crack_highest, calibration)
    info = {"class_names": meta["class_names"], "image_size": meta["image_size"], "crack_model": rule.crack_model,
            **calibration, "patch_size": tile_for(meta, recipe.init_from, rule.tile), "init_from": recipe.init_from,
            "trained_on": meta.get("sources"), "recipe": dataclasses.asdict(recipe), "litert_int8": int8_litert,
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if rule.feature_statistics:  # inputs of none of its classes (support/unfamiliar.py)
        info["features"] = unfamiliar.feature_statistics(batches.predict_features(model, train_x), data["train"][1],
                                                         batches.predict_features(model, val_x))
        print(unfamiliar.describe(info["features"]))
    save_model(model, folder / MODEL_NAME, info)
    export_litert(model, folder / LITERT_NAME, info, train_x if int8_litert else None, recipe.seed)
    return calibration


def report_on_test_split(model, data, meta, history, threshold, folder, seed):
    """The test split's figures (printed, and returned for metrics.json) and the plots, in folder."""
    plot_history(history, folder / "training_curves.png")
    test_x, test_y = data["test"]
    report = {"split": "test", "images": int(len(test_x))}
    if len(test_x):
        probs = batches.predict_probabilities(model, test_x)
        report.update(evaluation.test_report(test_y, probs, meta["class_names"], threshold))
        evaluation.print_report(report)
        if len(meta.get("sources", [])) > 1:  # how the model does on each source, e.g. your site
            report["per_source"] = evaluation.per_source_report(
                test_y, probs, np.array(meta["file_sources"]["test"]), meta["sources"], threshold)
        save_test_figures(folder, test_x, test_y, probs, report, meta["class_names"], seed)
    return report


def main(argv=None):
    args = parse_args(argv)
    data, meta = cache.load_cache(args.cache)
    rule = check_inputs(args, meta)
    # The strategy comes before TensorFlow makes any tensor (support/distribute.py), so the starting model,
    # loaded once within it, can choose the tiles of the photos you called crack and then be fine-tuned.
    strategy, is_chief = distribute.choose_strategy(args.distribute, args.wait_for_workers)
    with strategy.scope():
        starting_model = load_starting_model(args.init_from) if args.init_from else None
    data, meta, crack_photos = bags.choose_tiles(data, meta, starting_model, args.init_from)
    recipe = choose_recipe(args, meta, rule)
    # Everything is written aside and swapped in whole at the end: model and reports of one run.
    work = (output_folders.new_folder_beside(args.out, "train.py output") if is_chief
            else Path(tempfile.mkdtemp(prefix="crack-worker-")))  # worker 0 writes the results
    keras.utils.set_random_seed(recipe.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")

    train_ds, val_ds = batches.make_datasets(data, meta, recipe, work)
    with strategy.scope():
        model = build_or_compile_model(starting_model, meta, recipe)
    held = training_summary.hold_details(args.verbose)  # layers, epochs and tables: --verbose; then a summary
    model.summary()
    if distribute.is_multi_worker(strategy):
        distribute.work_around_keras_multi_worker(model, next(iter(train_ds)))
    marks = args.init_from and evaluation.site_training_images(data, meta)  # your site's, to read before and after
    before = marks and batches.predict_probabilities(model, marks[0])
    clean_photos = bags.clean_photos_set_aside(data, meta, starting_model, args.init_from)  # read before and after

    history, seconds = fit(model, train_ds, val_ds, recipe, work, args.tensorboard, crack_photos)
    # the photos you called crack, read once by the model trained: for its sure threshold, then to say which it keeps
    crack_highest = crack_photos.read(model) if crack_photos else None
    calibration = save_models(model, data, meta, rule, recipe, work, args.int8_litert, crack_highest)
    report = (report_on_test_split(model, data, meta, history, calibration["threshold"], work, recipe.seed)
              | calibration | evaluation.run_summary(history, seconds, recipe, meta, strategy.num_replicas_in_sync,
                                                     args.mixed_precision))
    if marks:  # how the site's images (your marks) read now, at the threshold chosen
        after = batches.predict_probabilities(model, marks[0])
        report["marks"] = evaluation.how_marks_read(marks[1], before, after, meta, report["threshold"], args.init_from)
    if crack_photos:  # still crack at the thresholds chosen, or named
        report["crack_photos"] = bags.check_kept(crack_photos, crack_highest, report["threshold"],
                                                 report["sure_threshold"])
    if clean_photos:  # what to expect of the false alarms no one reviewed
        report["clean_photos"] = bags.check_cleared(model, clean_photos, report["threshold"])
    atomic_files.write_json(report, work / "metrics.json")
    training_summary.print_summary(held, report, data, meta)
    if not is_chief:
        shutil.rmtree(work)
        return print(f"trained {report['epochs_run']} epochs; worker 0 wrote the model")
    output_folders.replace_folder(work, args.out)
    print(f"trained {report['epochs_run']} epochs in {seconds:.0f} s; best epoch {report['best_epoch']}; "
          f"wrote {args.out / MODEL_NAME} and reports to {args.out}/\n"
          f"use it: python predict.py PHOTO --model {args.out / MODEL_NAME}")


if __name__ == "__main__":
    runner.run_script(main, "no model was written; --out is as it was")
