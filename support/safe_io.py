"""Outputs that are whole or absent, and a clean stop at any moment.

Every file the scripts write is written under a temporary name beside it and renamed when
complete, so an interrupted or failed run never leaves half a cache, model, CSV or figure. Ctrl-C
(or SIGTERM) at any moment ends a script with one line and status 130; an OSError (disk full,
no permission) with one line and status 1; never a traceback.
"""

import contextlib
import csv
import json
import os
import shutil
import signal
import sys

_SAFE_POINT = {}  # "stop": what Ctrl-C calls instead of raising, inside stop_at_a_safe_point


def run_script(main, interrupted):
    """Run a script's main() as the user's command: exit status from main, one line on failure.

    interrupted: what the line after Ctrl-C says happened, e.g. "no cache was written".
    """
    def stop(*_):
        if "stop" in _SAFE_POINT:  # inside stop_at_a_safe_point: let the work stop itself
            _SAFE_POINT.pop("stop")()
            _SAFE_POINT["interrupted"] = True
            return
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        raise SystemExit(130)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        status = main()
    except OSError as failure:
        sys.exit(f"error: {failure.filename or ''}: {failure.strerror or failure}")
    except SystemExit as exit_:
        if exit_.code != 130:
            raise
        # Interrupted with tf.data's threads still at work, the interpreter's teardown crashed now and
        # then ("free(): invalid next size", status -6, about 1 run in 6). The `finally` blocks have
        # run by now: leave without the teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(status or 0)


@contextlib.contextmanager
def stop_at_a_safe_point(stop):
    """Within the block, Ctrl-C calls stop() (e.g. tells model.fit to stop after its batch) instead of
    raising in the middle of the work; the interruption is raised when the block ends. A second
    Ctrl-C raises at once."""
    _SAFE_POINT["stop"] = stop
    try:
        yield
    finally:
        _SAFE_POINT.pop("stop", None)
    if _SAFE_POINT.pop("interrupted", False):
        signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def no_interrupts():
    """Hold Ctrl-C off for a step that must not stop half-way (e.g. two renames)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (C libraries' chatter, child processes started meanwhile).

    Python's own sys.stderr keeps writing to the terminal, so an error or a Ctrl-C message
    raised meanwhile is still seen.
    """
    sys.stderr.flush()
    python_stderr, saved, devnull = sys.stderr, os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr = open(saved, "w", closefd=False)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def writing(path):
    """Yield a temporary path beside `path` to write to; it becomes `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_json(data, path):
    with writing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def write_csv(path, header, rows):
    with writing(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@contextlib.contextmanager
def csv_lines(path, header):
    """A csv.writer for rows that come one by one (None when path is None); the file appears, whole,
    when the block ends without an error."""
    if path is None:
        yield None
        return
    with writing(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        yield writer


def check_output_folder(option, path):
    """An output folder may not exist yet, but may not be a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise SystemExit(f"error: {option} {path} is a file; give a folder")


def new_folder_beside(out, kind="data_prep cache", marker="meta.json"):
    """A fresh temporary folder beside `out`, to become `out` with replace_folder.

    Refuses to replace a folder that is not one of ours (no `marker` in it), and removes what a
    killed run left behind.
    """
    check_output_folder("--out", out)
    if out.exists() and not (out / marker).is_file() and any(out.iterdir()):
        raise SystemExit(f"error: {out} exists and is not a {kind}; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir()
    return tmp


def remove_folder(folder):
    shutil.rmtree(folder, ignore_errors=True)


def replace_folder(tmp, out):
    """Move a finished folder into place, so that `out` is either the old one whole or the new one."""
    with no_interrupts():  # between the two renames, "nothing was written" would be untrue
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
