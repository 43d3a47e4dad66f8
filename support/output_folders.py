"""Output folders: replaced whole, never over a folder of the user's, locked while a run writes them.

A folder data_prep or train writes is made under a temporary name beside it and renamed when
complete; MARKER in it says what the run put there, so a later run replaces exactly that. What a
run holds (its locks, its temporary folders) goes when it ends, whichever way (runner.undo_at_exit).
"""

import glob
import json
import os
import shutil
from pathlib import Path

from support.atomic_files import process_running
from support.errors import InputError
from support.runner import no_interrupts, undo_at_exit
from support.safe_text import printable

MARKER = ".crack-classifier.json"  # in each folder data_prep or train wrote whole: what it wrote there


def check_output_folder(option, path):
    """An output folder may not exist yet, but may not be a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file; give a folder")


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
        raise InputError(f"{option} {out} exists and is not a {kind} (it holds {shown}, which no "
                         f"{kind} of this project wrote); choose another {option}")


def new_folder_beside(out, kind):
    """A fresh temporary folder beside `out`, to become `out` with replace_folder.

    Refuses to replace a folder that is not one of ours (check_ours), locks `out` against a second
    run at once, and removes what a killed run left behind. The temporary folder and the lock go
    when the script ends, whichever way (runner.run_script).
    """
    check_ours("--out", out, kind)
    out = followed(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock(out)
    for stale in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):  # the lock is ours: a killed run's
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir()
    undo_at_exit(lambda: remove_folder(tmp))
    (tmp / MARKER).write_text(json.dumps({"kind": kind}))
    return tmp


def followed(out):
    """The folder a symbolic link `out` names (through every link): that folder is replaced, never the
    user's link, which still names it afterwards."""
    return Path(os.path.realpath(out)) if out.is_symlink() else out


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
    this process's id; it goes when the script ends (runner.run_script), and a killed run's lock is taken over."""
    # The holder's id, not fcntl.flock (none on Windows): the line a second run stops with names it.
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
            if holder and holder != os.getpid() and process_running(holder):
                raise InputError(f"{folder} is being written by another run (process {holder}); wait for "
                                 f"it, or choose another folder (if no run is going, remove {path})") from None
            path.unlink(missing_ok=True)  # its run was killed
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        undo_at_exit(lambda: path.unlink(missing_ok=True))
        return
    raise InputError(f"cannot lock {folder}: remove {path}")


def folders_not_ours(src):
    """{name: folder} of src's visible sub-folders, without the ones this project wrote (a MARKER in them)."""
    folders = {p.name: p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")}
    ours = sorted(name for name, folder in folders.items() if (folder / MARKER).is_file())
    if ours:
        print(f"note: {src}: ignoring folder(s) {', '.join(ours)} (written by data_prep.py or train.py)")
    return {name: folder for name, folder in folders.items() if name not in ours}
