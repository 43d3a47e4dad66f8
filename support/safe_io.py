"""Outputs that are whole or absent, and a clean stop at any moment.

Every file the scripts write is written under a temporary name beside it and renamed when
complete, so an interrupted or failed run never leaves half a cache, model, CSV or figure. Ctrl-C
(or SIGTERM) at any moment ends a script with one line and status 130; an OSError (disk full,
no permission) with one line and status 1; never a traceback.
"""

import atexit
import contextlib
import csv
import glob
import json
import os
import shutil
import signal
import sys
import uuid
from pathlib import Path

_SAFE_POINT = {}  # "stop": what Ctrl-C calls instead of raising, inside stop_at_a_safe_point
_AT_EXIT = []  # what release() undoes: locks taken, temporary folders made
_INTERRUPTED = []  # a Ctrl-C came: the script ends with status 130, whatever caught the SystemExit
_FINISHED = []  # the files writing() put in place, for the line after a Ctrl-C
MARKER = ".crack-classifier.json"  # in each folder data_prep or train wrote whole: what it wrote there


def run_script(main, interrupted):
    """Run a script's main() as the user's command: exit status from main, one line on failure.

    interrupted: what the line after Ctrl-C says happened, e.g. "no cache was written"; or a function
    that tells it when the script stops (predict: which of its files were written by then). The line is
    printed once, as the script ends: a Ctrl-C that a library swallowed (raised inside a __del__, say)
    still ends the run with it and status 130.
    """
    def stop(*_):
        if "stop" in _SAFE_POINT:  # inside stop_at_a_safe_point: let the work stop itself
            _SAFE_POINT.pop("stop")()
            _SAFE_POINT["interrupted"] = True
            return
        ignore_interrupts()  # a second Ctrl-C while stopping: still one line
        _INTERRUPTED.append(True)
        raise SystemExit(130)

    # A name that is not UTF-8 (held as surrogates) printed anywhere is its escape, not a traceback.
    for stream in (sys.stdout, sys.stderr):
        getattr(stream, "reconfigure", lambda **_: None)(errors="backslashreplace")
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        status = main()
        ignore_interrupts()  # all is written: a Ctrl-C now would end it with no line (or an untrue one)
        if _INTERRUPTED:
            raise SystemExit(130)
    except OSError as failure:
        sys.exit(f"error: {f'{printable(failure.filename)}: ' if failure.filename else ''}"
                 f"{printable(failure.strerror or failure)}")
    except MemoryError:
        sys.exit("error: out of memory: give fewer or smaller images at once (e.g. a smaller --batch-size)")
    except SystemExit as exit_:
        if exit_.code != 130 or not _INTERRUPTED:
            # every line a script ends with, escaped: a file name cannot forge another line
            raise SystemExit(printable(exit_.code) if isinstance(exit_.code, str) else exit_.code) from None
        ignore_interrupts()
        print(f"\ninterrupted: {interrupted() if callable(interrupted) else interrupted}", file=sys.stderr)
        release()
        # Interrupted with tf.data's threads still at work, the interpreter's teardown crashed now and
        # then ("free(): invalid next size", status -6, about 1 run in 6). The `finally` blocks have
        # run by now: leave without the teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(status or 0)


def ignore_interrupts():
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)


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
    """Hold Ctrl-C (and SIGTERM) off for a step that must not stop half-way (e.g. two renames)."""
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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
    """Yield a temporary path beside `path` to write to; it becomes `path` only if the block succeeds.

    The temporary name is this run's alone (two runs writing one file never mix their rows) and short
    (a file name near the system's limit of 255 bytes still gets one), with the same suffix (Keras
    wants .keras)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix[:16]}")
    try:
        yield tmp
        os.replace(tmp, path)
        _FINISHED.append(path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_json(data, path):
    with writing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def open_csv(path):
    """A CSV file to write, in UTF-8. A file name that is not UTF-8 (bytes from a Latin-1 zip, which
    Python holds as surrogates) is written as its very bytes, so that the path in a cell still opens
    the file (read it back with errors="surrogateescape", as labels.py does)."""
    return open(path, "w", newline="", encoding="utf-8", errors="surrogateescape")


def write_csv(path, header, rows):
    with writing(path) as tmp, open_csv(tmp) as f:
        writer = _NeutralWriter(csv.writer(f))
        writer.writerow(header)
        writer.writerows(rows)


@contextlib.contextmanager
def csv_lines(path, header):
    """A csv.writer for rows that come one by one (None when path is None); the file appears, whole,
    when the block ends without an error."""
    if path is None:
        yield None
        return
    with writing(path) as tmp, open_csv(tmp) as f:
        writer = _NeutralWriter(csv.writer(f))
        writer.writerow(header)
        yield writer


def check_output_folder(option, path):
    """An output folder may not exist yet, but may not be a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise SystemExit(f"error: {option} {path} is a file; give a folder")


def check_ours(option, out, kind):
    """Refuse an existing `out` unless it is empty or a `kind` this project wrote whole: its MARKER
    says so and lists what the run put there, and it holds nothing else. So a user's file in it,
    or a folder of theirs that happens to hold a metrics.json, is never replaced with the folder."""
    check_output_folder(option, out)
    if out is None or not out.exists():
        return
    try:
        marker = json.loads((out / MARKER).read_text())
        written = marker["written"] if marker["kind"] == kind else []
    except (OSError, ValueError, KeyError, TypeError):
        written = []
    foreign = sorted(p.name for p in out.iterdir() if p.name not in (*written, MARKER))
    if foreign:
        shown = ", ".join(printable(name) for name in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise SystemExit(f"error: {option} {out} exists and is not a {kind} (it holds {shown}, which no "
                         f"{kind} of this project wrote); choose another {option}")


def new_folder_beside(out, kind):
    """A fresh temporary folder beside `out`, to become `out` with replace_folder.

    Refuses to replace a folder that is not one of ours (check_ours), locks `out` against a second
    run at once, and removes what a killed run left behind. The temporary folder and the lock go
    when the script ends, whichever way (run_script).
    """
    check_ours("--out", out, kind)
    out = followed(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock(out)
    for stale in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):  # the lock is ours: a killed run's
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir()
    _AT_EXIT.append(lambda: remove_folder(tmp))
    (tmp / MARKER).write_text(json.dumps({"kind": kind}))
    return tmp


def followed(out):
    """The folder a symbolic link `out` names (through every link): that folder is replaced, never the
    user's link, which still names it afterwards."""
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def finished():
    """The files this run has written whole so far (writing()), in order."""
    return list(_FINISHED)


def remove_folder(folder):
    shutil.rmtree(folder, ignore_errors=True)


def replace_folder(tmp, out):
    """Move a finished folder into place, so that `out` is either the old one whole or the new one.

    MARKER in it lists what was written, so that a later run replaces exactly that (check_ours).
    """
    out = followed(out)
    marker = json.loads((tmp / MARKER).read_text())
    marker["written"] = sorted(p.name for p in tmp.iterdir() if p.name != MARKER)
    (tmp / MARKER).write_text(json.dumps(marker))
    with no_interrupts():  # between the two renames, "nothing was written" would be untrue
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)


def lock(folder):
    """Hold `folder` for this run: a second run writing there at once stops with one line instead of
    mixing its files in. The lock is a file beside the folder, made with O_EXCL (atomic), holding
    this process's id; it goes when the script ends (run_script), and a killed run's lock is taken over."""
    path = folder.parent / f".{folder.name}.lock"
    folder.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = int(path.read_text() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder and holder != os.getpid() and _running(holder):
                raise SystemExit(f"error: {folder} is being written by another run (process {holder}); wait for "
                                 f"it, or choose another folder (if no run is going, remove {path})") from None
            path.unlink(missing_ok=True)  # its run was killed
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _AT_EXIT.append(lambda: path.unlink(missing_ok=True))
        atexit.register(release)  # also when main() is called from Python rather than run_script
        return
    raise SystemExit(f"error: cannot lock {folder}: remove {path}")


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def release():
    """Remove what this run holds (locks, temporary folders); run_script calls it at the end."""
    while _AT_EXIT:
        _AT_EXIT.pop()()


def printable(text):
    """A name as the terminal should show it: control characters (a newline, ANSI escapes) escaped,
    so a file name cannot forge a line of output."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def neutral_cell(cell):
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (OWASP's CSV injection
    advice): text beginning with = + - @ tab or CR gets a leading single quote."""
    return f"'{cell}" if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


class _NeutralWriter:
    def __init__(self, writer):
        self.writer = writer

    def writerow(self, row):
        self.writer.writerow([neutral_cell(cell) for cell in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def check_output_file(option, path, taken, ours):
    """Refuse to write `path` over a file of `taken` ({path: what it is}, e.g. an input or the model) or
    over any file that is not empty and whose header `ours(header)` does not know for its own (predict:
    verdicts.is_predict_header, the exact columns it writes)."""
    if path is None:
        return
    if path.is_dir():
        raise SystemExit(f"error: {option} {path} is a folder; give a file name")
    for other, what in taken.items():
        if other is not None and path.resolve() == other.resolve():
            raise SystemExit(f"error: {option} {path} is {what}: it would be overwritten; give another file name")
    if path.exists() or path.is_symlink():
        if not path.is_file():  # a FIFO: opening it would wait for a reader
            raise SystemExit(f"error: {option} {path} is not a regular file; give another file name")
        if not replaceable(path, ours):
            raise SystemExit(f"error: {option} {path} exists and is not a CSV that predict wrote; give another "
                             "file name")


def replaceable(path, ours):
    """Whether a file is empty, or a CSV whose header `ours` knows for exactly one it writes."""
    return path.stat().st_size == 0 or ours(csv_header(path))


def csv_header(path):
    """The cells of a CSV file's first line ([] when it is blank, or longer than any header)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        line = f.readline(65536)
    if not line.endswith("\n"):
        return []
    return next(csv.reader([line.rstrip("\r\n")]), [])


def check_output_folders(inputs, folders):
    """Refuse predict's output folders ({option: folder or None}) of the wrong kind, a report folder that
    holds a report already (two runs' rows and figures would mix), and folders inside an input folder
    (their images would be read back); then lock them against a second run at once."""
    for option, folder in folders.items():
        check_output_folder(option, folder)
    report = folders.get("--report")
    if report and (report / "index.html").exists():
        raise SystemExit(f"error: --report {report} already holds a report (index.html); choose another folder, "
                         "or remove it to replace that report")
    for path in inputs:
        source = path if path.is_dir() else path.parent  # a named photo's folder is an input folder too
        for option, out in folders.items():
            if option != "--out" and out and out.resolve().is_relative_to(source.resolve()):
                raise SystemExit(f"error: {option} {out} is inside the input folder {source}; choose another")
    for folder in folders.values():
        if folder:
            lock(folder)


def folders_not_ours(src):
    """{name: folder} of src's visible sub-folders, without the ones this project wrote (a MARKER in them)."""
    folders = {p.name: p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")}
    ours = sorted(name for name, folder in folders.items() if (folder / MARKER).is_file())
    if ours:
        print(f"note: {src}: ignoring folder(s) {', '.join(ours)} (written by data_prep.py or train.py)")
    return {name: folder for name, folder in folders.items() if name not in ours}
