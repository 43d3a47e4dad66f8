"""The inspector's word on a report: the notes.csv the page saves, read back into a final copy
(predict --final-copy), and the paths a report shows and exports.

notes.csv (the report's Save notes.csv) has a row per photo:

    path,model_verdict,inspector_verdict,note,marked_tiles,tile
    /data/site/day1/IMG_0001.jpg,crack,no crack,paving joint,3,227

path is absolute or relative to the CSV's folder, as in a labels file; inspector_verdict is one of
the report's labels ("crack", "no crack" for a crack model) or empty. A row is matched to a photo of
the report by its path, else (a notes.csv from another computer) by the path shown in the report,
the photo's path below the folder given.
"""

import csv
import os
import re
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from support.errors import InputError

NOTES_COLUMNS = ["path", "model_verdict", "inspector_verdict", "note", "marked_tiles", "tile"]
NEEDED = ["path", "inspector_verdict", "note"]  # what a final copy reads; the others are for data_prep and people
FORMULA_START = tuple("=+-@\t\r")  # a cell saved with a leading ' so that a spreadsheet shows it as text


def read_notes(path):
    """[(photo path as written, inspector verdict, note)] of a notes.csv; InputError if it is bad."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [column for column in NEEDED if column not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"--final-copy {path} is not a notes.csv (Save notes.csv in the report): "
                                 f"it has no {', '.join(missing)} column")
            rows = [(row["path"] or "", unquoted(row["inspector_verdict"]).strip(), unquoted(row["note"]))
                    for row in reader]
    except UnicodeDecodeError:
        raise InputError(f"--final-copy {path} is not a notes.csv: not UTF-8 text") from None
    except (OSError, csv.Error) as error:
        raise InputError(f"--final-copy {path}: {getattr(error, 'strerror', None) or error}")
    return [(unquoted(photo), verdict, note) for photo, verdict, note in rows]


def unquoted(cell):
    """A cell as typed: without the ' put before one that a spreadsheet would run as a formula."""
    cell = cell or ""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def check_verdicts(notes, labels, path):
    """Raise InputError if a verdict of notes.csv is none of the report's labels (another model's file)."""
    for photo, verdict, _ in notes:
        if verdict and verdict not in labels:
            raise InputError(f"--final-copy {path}: {photo}: the inspector's verdict {verdict!r} is not one "
                             f"of this model's ({', '.join(labels)})")


def match_notes(notes, rows, notes_file):
    """({row index: {"verdict", "note"}}, [notes.csv paths that match no photo]) for report rows with
    "source" (the photo's full path) and "path" (as shown): by full path, else by the longest shown
    path it ends with."""
    by_source = {str(row["source"]): i for i, row in enumerate(rows) if row.get("source")}
    found, unmatched = {}, []
    for photo, verdict, note in notes:
        full = Path(photo) if Path(photo).is_absolute() else Path(notes_file).parent / photo
        index = by_source.get(str(full.resolve()))
        if index is None:
            written = PurePath(photo.replace("\\", "/")).as_posix()
            ends = [i for i, row in enumerate(rows) if row.get("source")
                    and ("/" + written).endswith("/" + row["path"])]
            index = max(ends, key=lambda i: len(rows[i]["path"]), default=None)
        if index is None:
            unmatched.append(photo)
        elif verdict or note:
            found[index] = {"verdict": verdict, "note": note}
    return found, unmatched


def shown_path(path, stem):
    """A photo's path as the report shows it: below the folder it was found in (a file named on the
    command line: its name), the folders added where two names would clash (figures.output_stems)."""
    return (PurePath(stem).parent / Path(path).name).as_posix()


def from_report(source, report):
    """The photo's path relative to the report's folder: the page resolves it against its own location
    when it saves labels.csv and notes.csv, so that the page names no folder of this computer. A photo
    on another drive (Windows) keeps its full path."""
    try:
        return Path(os.path.relpath(source, Path(report).resolve())).as_posix()
    except ValueError:
        return str(source)


def last_part(text):
    """What a model was trained on, without this computer's folders: "/home/me/site/labels.csv" ->
    "labels.csv"; a description or a relative path stays as it is."""
    text = str(text)
    if not (PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~")):
        return text
    parts = [part for part in re.split(r"[\\/]", text) if part]
    return parts[-1] if parts else text


def shown_input(path, given):
    """An input that failed, as the report shows it: below the folder given that holds it, else its name."""
    for folder in given:
        try:
            below = Path(path).resolve().relative_to(Path(folder).resolve()).as_posix()
        except ValueError:
            continue
        if below != ".":  # not the folder itself (one with no images)
            return below
    return Path(path).name or str(path)


def without_folders(line, models):
    """A model's line with the folders above the model's own taken out: "model: models_site/model.tflite"."""
    for model in filter(None, models):
        if Path(model).is_absolute():
            line = line.replace(str(Path(model).parent.parent) + os.sep, "")
    return line
