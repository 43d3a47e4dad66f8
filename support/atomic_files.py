"""Files that are whole or absent: each is written under a temporary name beside it and renamed when
complete, so an interrupted or failed run never leaves half a cache, model, CSV or figure. A run killed
outright (SIGKILL, a power cut) leaves its temporary file; the next write to that folder removes it."""

import contextlib
import csv
import json
import os
import re
import shutil
import uuid

from support.safe_text import NeutralWriter

_FINISHED = []  # the files writing() put in place, for the line after a Ctrl-C
_SWEPT = set()  # the folders remove_stale_partials has looked in: once each a run (a folder of 100,000 figures)
PARTIAL_NAME = re.compile(r"\.partial-(\d+)-[0-9a-f]{8}")  # writing()'s temporary names: the writer's process id


@contextlib.contextmanager
def writing(path):
    """Yield a temporary path beside `path` to write to; it becomes `path` only if the block succeeds.

    The temporary name is this run's alone (two runs writing one file never mix their rows) and short
    (a file name near the system's limit of 255 bytes still gets one), with the same suffix (Keras
    wants .keras)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent)
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


def remove_stale_partials(folder):
    """Remove the temporary files of writing() that runs killed outright left in `folder`: those whose
    process no longer runs. A live run's stay (this one's, another's writing beside it), as does any
    other hidden file. Once a run for each folder."""
    if folder in _SWEPT:
        return
    _SWEPT.add(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        found = PARTIAL_NAME.match(entry.name)
        if found and not process_running(int(found[1])):
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:  # gone meanwhile, or not ours to remove: the write goes on all the same
                pass


def process_running(pid):
    """Whether a process of this id runs, any user's. On Windows always: os.kill(pid, 0) there does not
    ask, it ends the process."""
    if os.name == "nt" or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: no process can have that id
        return False
    except OSError:  # another user's process
        return True
    return True


def finished():
    """The files this run has written whole so far (writing()), in order."""
    return list(_FINISHED)


def write_json(data, path):
    with writing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def open_csv(path):
    """A CSV file to write, in UTF-8. A file name that is not UTF-8 (bytes from a Latin-1 zip, which
    Python holds as surrogates) is written as its very bytes, so that the path in a cell still opens
    the file (read it back with errors="surrogateescape", as labels.py does)."""
    return open(path, "w", newline="", encoding="utf-8", errors="surrogateescape")


def write_csv(path, header, rows):
    with csv_lines(path, header) as writer:
        writer.writerows(rows)


@contextlib.contextmanager
def csv_lines(path, header):
    """A csv.writer for rows that come one by one (None when path is None); the file appears, whole,
    when the block ends without an error."""
    if path is None:
        yield None
        return
    with writing(path) as tmp, open_csv(tmp) as f:
        writer = NeutralWriter(csv.writer(f))
        writer.writerow(header)
        yield writer
