"""predict's run as a report (predict --report): the page's header from the options or --report-info,
the inspector's notes of a final copy, and a row per input with its thumbnail, plain photo and EXIF.

support/html_report.py writes the page from these; this module is all that knows predict's options
and its results.Classified.
"""

import json
import sys
from pathlib import Path

from support import figures, html_report, inspection, verdicts
from support.errors import InputError
from support.html_report import HEADER_FIELDS, badge, href
from support.images import ImageError, read_exif
from support.opencv import cv2

MAX_INFO_BYTES = 2 ** 20  # a header file of more is no header: refused unread


def read_header(args):
    """{field: text} for the report's header: --report-info's file, then the options, which win."""
    given = {field: getattr(args, field) for field in HEADER_FIELDS if getattr(args, field) is not None}
    if (given or args.report_info) and not args.report:
        raise InputError(f"--{', --'.join(HEADER_FIELDS)} and --report-info fill the report's header: "
                         "add --report DIR")
    return (read_info_file(args.report_info) if args.report_info else {}) | given


def read_final_copy(args):
    """The rows of --final-copy's notes.csv (inspection.read_notes), or None without it."""
    if args.final_copy and not args.report:
        raise InputError("--final-copy writes the inspector's notes into a report: add --report DIR")
    return inspection.read_notes(args.final_copy) if args.final_copy else None


def check_final_copy(args, rule):
    """Exit with one line, before any photo is read, if --final-copy's verdicts are not the model's labels."""
    if args.final_copy:
        inspection.check_verdicts(args.final_notes, rule.labels, args.final_copy)


def read_info_file(path):
    """A header file: a JSON object, or lines `field: value` (a line without a field continues the
    one above, for notes of several lines; # starts a comment). Raises InputError if it is bad."""
    if not Path(path).is_file():  # a FIFO would wait for a writer forever
        raise InputError(f"--report-info {path}: not a regular file; give a text or JSON file")
    if Path(path).stat().st_size > MAX_INFO_BYTES:
        raise InputError(f"--report-info {path}: larger than {MAX_INFO_BYTES // 2 ** 20} MB; not read")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--report-info {path}: {getattr(error, 'strerror', None) or error}")
    fields = f"the fields are {', '.join(HEADER_FIELDS)}"
    if text.lstrip().startswith("{"):
        try:
            info = json.loads(text)
        except ValueError as error:
            raise InputError(f"--report-info {path} is not valid JSON: {error}")
        if not isinstance(info, dict):
            raise InputError(f"--report-info {path} holds JSON but not an object of fields ({fields})")
        wrong = [key for key, value in info.items() if key not in HEADER_FIELDS or not isinstance(value, str)]
        if wrong:
            raise InputError(f"--report-info {path}: {wrong[0]!r} is not a text field ({fields})")
        return info
    info, field = {}, None
    for number, line in enumerate(text.splitlines(), start=1):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() in HEADER_FIELDS:
            field = name.strip().lower()
            info[field] = value.strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            if field is None:
                raise InputError(f"--report-info {path}, line {number}: expected 'field: value' ({fields})")
            info[field] += "\n" + line.strip()
    return info


def report_row(item, figure, layout, stem, args, rule):
    """A row of the report for a results.Classified, with the photo's thumbnail and (a photo cut into
    tiles) its plain picture at the figure's size, both written now; when, with what and where it was
    taken; and how a click on its figure finds a tile (to mark it): layout is where the photo is in the
    figure (figures.photo_area); with --compare-with, the older model's heat map over the photo too.

    A row stays a dict of plain values, unlike the verdicts.Result it tells: it is what html_report
    reads, by key, and an input that failed, or a test's row, has only some of its keys; its "mark"
    goes into the page as JSON as it is."""
    path, image, result = item.path, item.image, item.result
    folder, (top, scale), source = args.report, layout or (0, 1.0), path.resolve()  # no layout: no figure
    shown_path = inspection.shown_path(path, stem)  # all the page names: no folder of this computer
    height, width = image.shape[:2]
    photo = item.tiles is not None
    # The tiles as the photo was cut (photos.tile_grid), where they start across and down: a click on the
    # figure goes to the nearest. An image classified whole is one tile.
    grid = item.tiles.grid if photo else [(0, 0, None)]
    side, xs, ys = grid[0][2], sorted({x for x, _, _ in grid}), sorted({y for _, y, _ in grid})
    shown = figures.shown_photo(image) if photo else image  # the thumbnail from it: a smaller image to shrink
    plain = figures.free_path(folder / "photos", stem, ".jpg", shown_path) if photo else None
    if photo:  # the photo without the heat map, for the marking dialog to show under it
        figures.save_figure(shown, plain, shown_path)
    thumbnail = save_thumbnail(shown, figures.free_path(folder / "thumbnails", stem, ".jpg", shown_path), shown_path)
    before_figure = None
    if item.before_tiles is not None and layout:
        before_figure = older_heat_map(item, rule, args, folder / "before", stem, shown_path)
    taken, camera, place = read_exif(path)
    counted = photo or rule.counts_patches  # another model's image classified whole has no tiles to count
    before = result.before  # the older model's (--compare-with), as its column shows it
    compared = {"before": {"verdict": before.verdict, "probability": before.probability, "flagged": before.flagged},
                "changed": verdicts.verdict_change(result) or None} if before else {}
    return compared | {"path": shown_path, "source": str(source), "verdict": result.verdict, "reason": result.reason,
            "probability": result.probability, "share": result.share if counted else None,
            "flagged": result.flagged if counted else None, "tiles": result.tiles,
            "figure": figure.relative_to(folder) if figure else None, "thumbnail": thumbnail.relative_to(folder),
            "taken": taken, "camera": camera, "place": place, "error": "",
            "mark": {"source": inspection.from_report(source, folder), "tile": side if photo else args.tile,
                     "before": before.verdict if before else None,
                     "older": href(before_figure.relative_to(folder)) if before_figure else None,
                     "w": width, "h": height, "tw": side if photo else width,
                     "th": side if photo else height, "xs": xs, "ys": ys,
                     "top": top, "scale": scale, "labels": list(rule.class_names), "shown": rule.labels,
                     "badges": [badge(name, rule.labels) for name in rule.labels],
                     "photo": href(plain.relative_to(folder)) if plain else None}}


def older_heat_map(item, rule, args, folder, stem, shown_path):
    """The --compare-with model's heat map over the photo, as the figure draws the newer's (no banner, no
    colour bar: the page lays it over the figure's photo, to toggle before and after)."""
    column = rule.class_names.index(rule.mapped_class(args.map_class, item.result))
    older = item.before_tiles
    try:
        figure = figures.draw_figure(item.image, [" "], (0, 0, 0), older.grid, older.counted[:, column],
                                     rule.threshold if column == 1 else 1 - rule.threshold, older.lines)
    except ImageError:
        return None
    top, _ = figures.photo_area(figure, item.image.shape, True)
    height, width = figures.shown_photo(item.image).shape[:2]
    path = figures.free_path(folder, stem, ".jpg", shown_path)
    figures.save_figure(figure[top:top + height, :width], path, shown_path)
    return path


def save_thumbnail(image_rgb, path, source, max_side=160):
    """Write a JPEG of the image at most max_side px a side, with the path of the input it shows inside it
    (figures.save_figure); returns its path."""
    height, width = image_rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = cv2.resize(image_rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)  # averages pixels: no aliasing at a tenth of the size
    figures.save_figure(small, path, source)
    return Path(path)


def write_run_report(args, inputs, model_lines, info, rows, failures, rule):
    """args.report/index.html for a run: its header (args.header), the model and what it learned
    from, a row per input of `inputs` (as results.csv_rows), failed ones with their error; with
    --final-copy, the inspector's verdicts and notes from that notes.csv written into it. Paths are
    shown below the folder given, never with this computer's folders above it."""
    rows = [rows.get(path) or {"path": inspection.shown_input(path, args.inputs), "verdict": "error", "reason": "",
                               "error": failures[path]} for path in inputs]
    trained = f"trained on: {'; '.join(map(inspection.last_part, info.get('trained_on') or ['(not recorded)']))}"
    if info.get("init_from"):
        trained += f", fine-tuned from {inspection.last_part(info['init_from'])}"
    size = info["image_size"]
    scale = rule.scale(args.tile, size)
    model_lines = [inspection.without_folders(line, [args.model, args.compare_with]) for line in model_lines]
    notes = None
    if args.final_copy:
        notes, unmatched = inspection.match_notes(args.final_notes, rows, args.final_copy)
        if unmatched:
            print(f"warning: --final-copy {args.final_copy}: {len(unmatched)} of its rows name no photo of this "
                  f"report, e.g. {unmatched[0]}", file=sys.stderr)
    return html_report.write_report(args.report, rule.report_title, [*model_lines, trained, scale], rows, rule, args.header, notes)
