"""The report of a folder of photos (predict --report): one page to hand over with its figures.

write_report() writes DIR/index.html: a header (title, site, inspector, notes, when the photos
were taken, the model), a summary (counts per verdict, the photos to look at first, the limits),
and a table of every input (thumbnail, verdict, reason, probability, flagged tiles, EXIF time,
camera and GPS position, the inspector's verdict and note, a link to its figure). It is one
self-contained file, plain HTML with inline CSS and a little JavaScript: it sorts by any column and
filters by verdict offline from disk, without a server, and prints every figure with its row.
Marks, notes and verdicts typed into the page are kept in the browser (localStorage, per report)
until saved as labels.csv and notes.csv. Figures, plain photos and thumbnails live beside it under
relative links, so DIR can be zipped and sent.

The page's fixed parts are files in support/report/ (page.html, report.css, report.js), inlined
here at each write; this module makes the parts that depend on the rows. support/run_report.py
turns a run of predict.py into those rows.
"""

import collections
import datetime
import html
import json
import uuid
from pathlib import Path, PurePath
from string import Template
from urllib.parse import quote

from support import figures, verdicts, wording
from support.atomic_files import write_json, writing
from support.model_files import CRACK_CLASSES
from support.output_folders import MARKER

FINAL_COPY = " &middot; final copy: the inspector's verdicts and notes written in"
HEADER_FIELDS = ("title", "site", "inspector", "notes")  # predict's --title ..., or --report-info FILE
LOOK_FIRST = 5  # photos named in the summary as the ones to look at first
CRACK_RULE = verdicts.verdict_rule({"class_names": CRACK_CLASSES})  # write_report's, unless given another
# Rows are filtered by these keys of theirs, a button per value found: the verdict, and any key added
# here (a row without it is left out of that key's buttons).
FILTER_KEYS = ["verdict", "changed"]
PAGE = Path(__file__).parent / "report"  # page.html (its ${name}s filled in by write_report), report.css, report.js


def page_file(name):
    """A file of the page (PAGE), read at each write and inlined: the report stays one file that opens
    offline, with nothing fetched."""
    return (PAGE / name).read_text(encoding="utf-8")


def colours_css():
    """The verdicts' and classes' colours as CSS, from the figures' own: one colour a class everywhere."""
    rules = [f".{badge(name, [])}{{--c:rgb{colour}}}" for name, colour in figures.VERDICT_COLOURS.items()]
    rules += [f".c{i}{{--c:rgb{colour}}}" for i, colour in enumerate(figures.CLASS_COLOURS)]
    return "\n".join(rules)


def badge(verdict, class_names):
    """The CSS class of a verdict's colour: the crack model's three, else the class's place in the palette."""
    if verdict in figures.VERDICT_COLOURS:
        return "v-" + verdict.replace(" ", "-")
    if verdict in class_names:
        return f"c{class_names.index(verdict) % len(figures.CLASS_COLOURS)}"
    return "v-error"


def write_report(folder, title, model_lines, rows, rule=CRACK_RULE, header=None, notes=None):
    """Write folder/index.html (under a temporary name, then renamed) and return its path.

    rows: one dict per input (see table_row; the tests show an example). A row with "mark" (the
    photo's tile grid and the figure's layout, see run_report.report_row) gets a button that opens its figure
    to mark tiles, note and override its verdict, saved as labels.csv for data_prep.py and notes.csv.
    rule: the model's kind (verdicts.VerdictRule): its verdicts and wording; header: {field: text} of
    HEADER_FIELDS, its title replacing `title`; notes: {row index: {"verdict", "note"}}, the inspector's
    (a final copy, predict --final-copy): the page starts from them, in any browser.
    """
    header, names = header or {}, rule.class_names
    order = list(dict.fromkeys([*rule.verdicts, *(r["verdict"] for r in rows if r["verdict"] != "error"), "error"]))
    counts = collections.Counter(r["verdict"] for r in rows)
    esc, title = html.escape, header.get("title") or title
    filters = [f'<button type="button" data-key="verdict" data-filter="" aria-pressed="true">All <b>{len(rows)}</b>'
               "</button>"]
    filters += [f'<button type="button" data-key="verdict" data-filter="{esc(v)}" aria-pressed="false" '
                f'class="{badge(v, names)}"{"" if counts[v] else " disabled"}><span class="dot"></span>{esc(v)} '
                f"<b>{counts[v]}</b></button>" for v in order]
    filters += [f'<button type="button" data-key="{esc(key)}" data-filter="{esc(str(value))}" aria-pressed="false">'
                f"{esc(key)}: {esc(str(value))} <b>{n}</b></button>" for key in FILTER_KEYS[1:]
                for value, n in collections.Counter(r[key] for r in rows if r.get(key) is not None).items()]
    columns = shown_columns(rows, rule)
    headers = "".join(f'<th class="{align}" data-type="{kind}" tabindex="0">{name}</th>' if kind
                      else f"<th>{name}</th>" for name, kind, align, _ in columns)
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    taken = sorted(r["taken"][:10] for r in rows if r.get("taken"))
    about = [(field.capitalize(), header.get(field)) for field in HEADER_FIELDS[1:-1]]
    about += [("Photos taken", taken and (taken[0] if taken[0] == taken[-1] else f"{taken[0]} to {taken[-1]}")),
              ("Notes", header.get("notes"))]
    page = Template(page_file("page.html")).substitute(
        title=esc(title), style=page_file("report.css") + colours_css(),
        report_id=uuid.uuid4().hex, baked=esc(json.dumps(notes or {})),
        about="".join(f"<dt>{name}</dt><dd>{esc(value)}</dd>" for name, value in about if value),
        model_lines="".join(f"<li>{esc(line)}</li>" for line in model_lines), written=esc(written),
        count=len(rows), final_copy=FINAL_COPY if notes is not None else "",
        summary=summary_section(rows, order, counts, rule), filters="".join(filters), order=esc(json.dumps(order)),
        headers=headers, rows="".join(table_row(row, order, i, names, columns) for i, row in enumerate(rows)),
        marking=marking_data(rows), script=page_file("report.js"))
    path = Path(folder) / "index.html"
    with writing(path) as tmp:
        tmp.write_text(page, encoding="utf-8", errors="surrogateescape")  # a name not UTF-8 is kept as its bytes
    write_json({"kind": "predict report"}, Path(folder) / MARKER)  # list_images never reads it back as photos
    return path


def summary_section(rows, order, counts, rule):
    """Counts per verdict (the model's, then with the inspector's in place: filled in the browser), the
    changes from an older model, the photos to look at first, what flagged tiles means, and the limits."""
    esc, class_names, (flagged, meaning) = html.escape, rule.class_names, rule.flagged
    found = ", ".join(f'<span class="{badge(v, class_names)}"><span class="dot"></span>{counts[v]} {esc(v)}</span>'
                      for v in order if counts[v] or v != "error")
    scored = [i for i, r in enumerate(rows) if r.get("probability") is not None]
    look, ranked = rule.look_first(rows, scored)
    first = "".join(f'<li><a href="#row-{i}">{esc(str(rows[i]["path"]))}</a>: {esc(rows[i]["verdict"])}, '
                    f'probability {wording.cut(rows[i]["probability"])}'
                    + (f", {flagged.lower()} {flagged_text(rows[i])}" if flagged_text(rows[i]) else "") + "</li>"
                    for i in ranked[:LOOK_FIRST])
    return (f'<section class="summary"><h2>Summary</h2><p>The model: {len(rows)} inputs: {found}.</p>'
            '<p id="inspected"></p>' + comparison_line(rows, flagged)
            + (f"<p>{look}:</p><ol>{first}</ol>" if first else "<p>Nothing flagged to look at first.</p>")
            + (f"<p><b>{flagged}</b>: {meaning}</p>{figure_legend(rule)}" if counts_tiles(rows, rule) else "")
            + f'<p class="limits">{rule.limits}</p></section>')


def comparison_line(rows, flagged):
    """With --compare-with: how many verdicts changed and how, and on how many photos the flagged tiles
    fell or rose; the changes against the inspector's verdicts are added in the browser (#against)."""
    compared = [row for row in rows if row.get("before")]
    if not compared:
        return ""
    changes = collections.Counter(row["changed"] for row in compared if row.get("changed"))
    said = ", ".join(f"{n} {html.escape(change)}" for change, n in sorted(
        changes.items(), key=lambda item: verdicts.change_rank(item[0])))
    moved = [(row["before"].get("flagged"), row.get("flagged")) for row in compared]
    fewer = sum(old is not None and new is not None and new < old for old, new in moved)
    more = sum(old is not None and new is not None and new > old for old, new in moved)
    return (f'<p class="compared">Against the older model (Before): {sum(changes.values())} of {len(compared)} '
            f'verdicts changed{f" ({said})" if said else ""}; {flagged.lower()} fewer on {fewer} photos, more on '
            f'{more}. <b id="against"></b></p>')


def figure_legend(rule):
    """What the figures show: the heat map, and every kind of line they draw (figures.FIGURE_LINES; the
    straight lines set aside only by a crack model)."""
    lines = figures.FIGURE_LINES[:rule.figure_lines]
    named = "".join(f'; <span class="line" style="--c:rgb{colour}"></span>a {name}: '
                    f'{html.escape(what.format(flagged=rule.flagged[0].lower()))}' for colour, name, what in lines)
    return (f'<p class="legend"><b>In the figures</b>: the heat map colours each tile by its probability, blue (0) '
            f"to red (1) as on its colour bar{named}.</p>")


def flagged_text(row):
    """The flagged share as HTML, cut (wording.percent): "97.7% (44 of 45)", "&lt;0.1% (1 of 2000)"."""
    share, count = row.get("share"), row.get("flagged")
    if share is None:
        return ""
    return html.escape(wording.percent(share)) + (f" ({count} of {row['tiles']})" if count is not None else "")


def marking_data(rows):
    """{row: how to map a click on its figure to a tile of its photo}, as JSON safe inside <script>."""
    data = {str(i): row["mark"] | {"path": str(row["path"]), "verdict": row["verdict"]}
            for i, row in enumerate(rows) if row.get("mark")}
    # Escaped as JSON, so the data reads back the same, and no "<!--", "<script" or "</script" in a file
    # name can end or change the script block.
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def href(relative):
    """A relative path as a URL: a name with a space, '#' or '%' must still point at its file."""
    return html.escape(quote(PurePath(relative).as_posix(), errors="surrogateescape"))


def counts_tiles(rows, rule):
    """Whether the report counts flagged tiles: always for a crack model (a patch is one tile), for another
    only when some image was cut into tiles (an image it classified whole has none: report_row)."""
    return rule.counts_patches or any(row.get("share") is not None for row in rows)


def shown_columns(rows, rule=CRACK_RULE):
    """COLUMNS, the flagged tiles named as the model's kind names them (when counted), "Before" only when
    the run compared two models (predict --compare-with)."""
    flagged, _ = rule.flagged
    return [(flagged, *column[1:]) if column[0] == "Flagged tiles" else column for column in COLUMNS
            if (column[0] != "Before" or any("before" in row for row in rows))
            and (column[0] != "Flagged tiles" or counts_tiles(rows, rule))]


def table_row(row, order, index=0, class_names=(), columns=None):
    """An input's <tbody>: its row (the cells of COLUMNS) and, for print, its figure below it.

    row: path, verdict, reason, probability, share, flagged and tiles (flagged tiles), figure, photo
    and thumbnail (relative to the report, or None), taken, camera, place (GPS) and error; with
    --compare-with, before (the older model's verdict, probability and flagged) and changed; any
    FILTER_KEYS as data-* attributes to filter by."""
    esc, columns = html.escape, columns or COLUMNS
    figure = row.get("figure")
    cells = []
    for _, _, kind, content in columns:
        shown, key = content(row, order, index, class_names)
        kind = f' class="{kind}"' if kind else ""
        cells.append(f'<td data-sort="{esc(str(key))}"{kind}>{shown}</td>')
    data = "".join(f' data-{key}="{esc(str(row[key]))}"' for key in FILTER_KEYS if row.get(key) is not None)
    # Lazy: a page of 500 photos opens without reading 500 figures; printing loads them all first.
    sheet = (f'<tr class="sheet"><td colspan="{len(columns)}"><p class="full-note"></p><img loading="lazy" src="{href(figure)}" '
             f'alt="the figure of {esc(PurePath(str(row["path"])).name)}"></td></tr>' if figure else "")
    return f'<tbody id="row-{index}"{data}><tr>{"".join(cells)}</tr>{sheet}</tbody>\n'


def thumbnail_cell(row, *_):
    figure, thumbnail = row.get("figure"), row.get("thumbnail")
    image = f'<img src="{href(thumbnail)}" alt="" loading="lazy">' if thumbnail else ""
    return (f'<a href="{href(figure)}">{image}</a>' if image and figure else image), ""


def photo_cell(row, *_):
    path = str(row["path"])
    name = PurePath(path).name or path
    shown_path = f'<span class="path">{html.escape(path)}</span>' if path != name else ""
    return f'<span class="name">{html.escape(name)}</span>{shown_path}', path


def verdict_cell(row, order, _, class_names):
    verdict = row["verdict"]
    return f'<span class="badge {badge(verdict, class_names)}">{html.escape(verdict)}</span>', order.index(verdict)


def reason_cell(row, *_):
    if row["verdict"] == "error":
        return f'<span class="error-text">{html.escape(row.get("error") or "")}</span>', row.get("error") or ""
    return html.escape(row.get("reason") or ""), row.get("reason") or ""


def probability_cell(row, *_):
    probability = row.get("probability")
    if probability is None:
        return "", ""
    return f'<span title="{wording.cut(probability, 5)}">{wording.cut(probability)}</span>', repr(float(probability))


def flagged_cell(row, *_):
    return flagged_text(row), "" if row.get("share") is None else repr(float(row["share"]))


def taken_cell(row, *_):
    more = "".join(f'<span class="more">{html.escape(row[key])}</span>' for key in ("camera", "place")
                   if row.get(key))
    return html.escape(row.get("taken") or "") + more, row.get("taken") or ""


def changed_cell(row, *_):
    """With --compare-with: the older model's verdict and probability, the change if any, the flagged tiles
    before -> after, and (in the browser) whether a change goes against the inspector's verdict."""
    before, change = row.get("before"), row.get("changed")
    if not before:  # an input that failed
        return "", ""
    shown = f'{html.escape(before["verdict"])} <span class="more">{wording.cut(before["probability"])}</span>'
    if before.get("flagged") is not None and row.get("flagged") is not None and row.get("tiles", 1) > 1:
        shown += f'<span class="more nowrap">flagged {before["flagged"]} &rarr; {row["flagged"]}</span>'
    rank = verdicts.change_rank(change) if change else len(verdicts.LOSSES) + 1  # lost cracks first, unchanged last
    return (f'<b class="nowrap">{html.escape(change)}</b><br>' if change else "") + shown + \
        '<span class="callout"></span>', rank


def inspector_cell(*_):
    return '<span class="note"></span>', ""  # filled in the browser from what the inspector typed (report.js's showRow)


def figure_cell(row, order, index, _):
    figure = row.get("figure")
    if not figure:
        return "", ""
    mark = (f'<button type="button" class="mark" data-row="{index}" data-figure="{href(figure)}">mark</button>'
            if row.get("mark") else "")
    older = (row.get("mark") or {}).get("older")  # already a URL
    return f'<a href="{href(figure)}">figure</a>' + (f' <a href="{older}">before</a>' if older else "") + mark, ""


# (header, how it sorts, CSS class, the cell: (row, verdict order, index, class names) -> (HTML, sort key)).
# Another column, such as a comparison with an older model, is one more entry and a key of the rows.
COLUMNS = [("", None, "thumb", thumbnail_cell), ("Photo", "text", "", photo_cell),
           ("Verdict", "num", "verdict", verdict_cell), ("Reason", "text", "", reason_cell),
           ("Probability", "num", "num", probability_cell), ("Flagged tiles", "num", "num", flagged_cell),
           ("Taken", "text", "nowrap", taken_cell), ("Before", "num", "", changed_cell),
           ("Inspector", None, "inspector", inspector_cell),
           ("Figure", None, "", figure_cell)]


