"""The machinery behind the four scripts: read data_prep.py, model.py, train.py and predict.py first.

Each module here holds one concern that the scripts use but a reader of the learning path can
take on trust:

    images.py       an image file to RGB pixels, resized so thin cracks stay dark (data_prep and predict);
                    every file sized from its header and refused over the limits before it is decoded
    opencv.py       OpenCV, imported once its own pixel limit is set (every module takes cv2 from it)
    errors.py       InputError: what a user gave cannot be used; the one error the modules raise
    runner.py       a script run as a command: one line and an exit status however it ends (Ctrl-C too)
    atomic_files.py files that are whole or absent: written under a temporary name, then renamed
    output_folders.py  output folders replaced whole, never over a user's, locked while written
    safe_text.py    names shown safely on a terminal, cells in a spreadsheet (no formulas)
    cache.py        the .npy cache: written in parallel by data_prep, read back by train
    tf_import.py    TensorFlow and Keras, imported without their start-up chatter
    model_files.py  what a saved model's output means, its LiteRT copy, and what runs it in predict
    batches.py      training batches: tf.data, balanced sources, augmentation (crack hairlines too)
    distribute.py   GPUs, CPU replicas and several machines for train
    evaluation.py   test-split figures for any number of classes, per source (your site), and the run's summary
    calibration.py  how sure a model can be: its "sure" cut-off and texture floor, saved in its info
    plots.py        train's and data_prep's plots: image grids, training curves, test-split figures
    unfamiliar.py   inputs unlike anything a model learned from: its features' distance to the training images'
    verdicts.py     a model's kind (VerdictRule), an image's verdict (Result): its words and columns
    crack_rules.py  what only a crack model does (its words, straight lines, hairlines), put in place once
    wording.py      probabilities and shares cut, never rounded; how photos reach the model, in words
    photos.py       a photo cut into tiles and classified
    figures.py      the figure predict draws for an image: verdict, heat map, outlines; which outputs an input gets
    html_report.py  the report of a folder of photos (predict --report): header, summary, notes, marks
    run_report.py   predict's run as a report: header options, a row per input (thumbnail, photo, EXIF), the final copy
    labels.py       a labels file of boxes marked in photos, as a data_prep source
    notes.py        the report's notes.csv (a verdict per photo) as a data_prep source
    bags.py         how train learns from those verdicts and keeps the photos called crack crack
    inspection.py   the inspector's notes.csv in the report: read, matched to photos, paths shown
    training_summary.py  what train prints by default; the details with --verbose
    masks.py        a labels file from crack masks, on predict's tile grid (python -m support.masks)
    results.py      predict's records of a model and an input; a line per input, CSV rows, last lines, changes;
                    the files and folders it may write them to
"""

import signal
import sys
from pathlib import Path

# Importing TensorFlow takes seconds. A Ctrl-C meanwhile should end like one at any other moment
# (one line, status 130), not with a traceback, so when one of the scripts is running, a quiet
# handler is in place from its first import of this package until it installs its own
# (runner.run_script).
_main = getattr(sys.modules.get("__main__"), "__file__", None)


def _stop_before_any_work(*_):
    print("\ninterrupted: nothing was written", file=sys.stderr)
    raise SystemExit(130)


if _main and Path(_main).resolve().parent == Path(__file__).resolve().parent.parent:
    signal.signal(signal.SIGINT, _stop_before_any_work)
    signal.signal(signal.SIGTERM, _stop_before_any_work)
