"""A script run as the user's command: one line and an exit status however it ends, never a traceback.

An InputError ends a script with "error: <message>" and status 1; an OSError (disk full, no
permission) the same, naming the file; Ctrl-C (or SIGTERM) at any moment one line and status
130. What the run holds (locks, temporary folders) goes whichever way it ends.
"""

import atexit
import contextlib
import os
import signal
import sys
import threading

from support.errors import InputError
from support.safe_text import printable

_SAFE_POINT = {}  # "stop": what Ctrl-C calls instead of raising, inside stop_at_a_safe_point
_AT_EXIT = []  # what release() undoes: locks taken, temporary folders made
_INTERRUPTED = []  # a Ctrl-C came: the script ends with status 130, whatever caught the SystemExit
_QUIET = {"depth": 0}  # quiet_stderr blocks under way, on any thread, and how to end the silence
_QUIET_LOCK = threading.Lock()


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

    def quiet_if_stopping(unraisable):
        # A Ctrl-C that lands in a finalizer (tqdm's lock, multiprocessing's semaphores) is "ignored" by
        # Python with a traceback; the run still stops, below, with its one line.
        if not (_INTERRUPTED and isinstance(unraisable.exc_value, (SystemExit, KeyboardInterrupt))):
            sys.__unraisablehook__(unraisable)

    sys.unraisablehook = quiet_if_stopping
    stderr_of_its_own()
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
    except InputError as error:  # every line a script ends with, escaped: a file name cannot forge another line
        sys.exit(f"error: {printable(error)}")
    except OSError as failure:
        sys.exit(f"error: {f'{printable(failure.filename)}: ' if failure.filename else ''}"
                 f"{printable(failure.strerror or failure)}")
    except MemoryError:
        sys.exit("error: out of memory: give fewer or smaller images at once (e.g. a smaller --batch-size)")
    except SystemExit as exit_:
        if exit_.code != 130 or not _INTERRUPTED:
            raise
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


def undo_at_exit(undo):
    """Call undo() (remove a lock, a temporary folder) when the script ends, whichever way: release()
    in run_script, or at the interpreter's exit when main() is called from Python."""
    if not _AT_EXIT:
        atexit.register(release)
    _AT_EXIT.append(undo)


def release():
    """Undo what this run holds (locks, temporary folders); run_script calls it at the end."""
    while _AT_EXIT:
        _AT_EXIT.pop()()


def stderr_of_its_own():
    """Point sys.stderr at a copy of file descriptor 2, the same terminal or pipe: quiet_stderr() then
    silences 2 alone, C libraries' chatter, while every line Python prints still shows, whichever thread
    prints it (read_ahead decodes on threads while predict reports). Done once, as the script starts:
    what keeps sys.stderr for later (a progress bar) takes this one."""
    if not writes_to_fd_2(sys.stderr):  # already elsewhere (a notebook, pytest's capture): nothing to part
        return
    sys.stderr.flush()
    sys.stderr = open(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors=sys.stderr.errors)


def writes_to_fd_2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # no stream, or one with no descriptor
        return False


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (C libraries' chatter, child processes started meanwhile).

    Python's own sys.stderr keeps writing to the terminal (run_script gives it a descriptor of its
    own; elsewhere it is pointed at a copy of 2 meanwhile), so an error or a Ctrl-C message raised
    meanwhile is still seen. Safe on threads and nested: 2 comes back when the last block ends
    (images.decode_image decodes under it on read_ahead's threads while the model loads under it).
    """
    with _QUIET_LOCK:
        if not _QUIET["depth"]:
            _QUIET["end"] = silence_fd_2()
        _QUIET["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET["depth"] -= 1
            if not _QUIET["depth"]:
                _QUIET.pop("end")()


def silence_fd_2():
    """Point file descriptor 2 at the null device; returns what puts it back (see quiet_stderr)."""
    sys.stderr.flush()
    python_stderr, saved, devnull = sys.stderr, os.dup(2), os.open(os.devnull, os.O_WRONLY)
    parted = writes_to_fd_2(python_stderr)
    if parted:
        sys.stderr = open(saved, "w", closefd=False)
    os.dup2(devnull, 2)
    os.close(devnull)

    def end():
        if parted:
            sys.stderr.flush()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
    return end
