"""The report of a folder of photos (predict --report): one page to hand over with its figures.

write_report() writes DIR/index.html: the model, the date, counts per verdict and a table of every
input (thumbnail, verdict, reason, probability, cracked share, EXIF capture time and camera, a link
to its figure). It is one self-contained file, plain HTML with inline CSS and a little JavaScript:
it sorts by any column and filters by verdict offline from disk, without a server, and prints
cleanly. Figures and thumbnails live beside it under relative links, so DIR can be zipped and sent.
"""

import collections
import datetime
import html
import json
import re
from pathlib import Path, PurePath
from urllib.parse import quote

import cv2
from PIL import Image

from support import figures, photos
from support.figures import with_source
from support.safe_io import writing

# A CSS colour per verdict; any other class name of another model gets a neutral blue.
BADGES = {"crack": "v-crack", "uncertain": "v-uncertain", "no crack": "v-clear", "error": "v-error"}
# (header, how it sorts, CSS class); the verdict sorts by severity, not alphabetically.
COLUMNS = [("", None, ""), ("Photo", "text", ""), ("Verdict", "num", ""), ("Reason", "text", ""),
           ("Probability", "num", "num"), ("Cracked area", "num", "num"), ("Taken", "text", "nowrap"),
           ("Camera", "text", ""), ("Figure", None, "")]

STYLE = """
:root{--crack:#c62828;--uncertain:#e67700;--clear:#2e7d32;--error:#757575;--other:#1f5fa8;--line:#dde1e6}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232a;margin:0 auto;
  padding:24px 32px;max-width:1400px}
h1{font-size:22px;margin:0 0 6px}
.model{list-style:none;margin:0;padding:0;color:#3c444d}
.meta{color:#6b737b;margin:4px 0 14px;font-size:.93em}
.filter{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 6px}
.filter button{font:inherit;border:1px solid var(--line);background:#f6f7f9;border-radius:16px;padding:3px 12px;
  cursor:pointer;color:inherit}
.filter button[aria-pressed=true]{background:#1d232a;border-color:#1d232a;color:#fff}
.filter button:disabled{opacity:.45;cursor:default}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:6px;background:var(--c)}
table{border-collapse:separate;border-spacing:0;width:100%}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
thead{position:sticky;top:0;background:#eef1f4}  /* kept in view down a long table */
thead th{font-size:.86em;text-transform:uppercase;letter-spacing:.03em;color:#3c444d;white-space:nowrap}
th[data-type]{cursor:pointer;user-select:none}
th[data-type]:hover{background:#e1e6eb}
th[aria-sort=ascending]::after{content:" \\25B2"} th[aria-sort=descending]::after{content:" \\25BC"}
tbody tr:nth-child(even){background:#fafbfc}
.num{text-align:right;font-variant-numeric:tabular-nums}
.num,.nowrap{white-space:nowrap}
td.thumb img{display:block;max-width:96px;max-height:72px;border:1px solid var(--line);border-radius:3px}
.name{font-weight:600;overflow-wrap:break-word}
#inputs td:nth-child(2){min-width:13em}  /* a name and its folder, not a letter a line */
.path{display:block;color:#6b737b;font-size:.86em;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;background:var(--c);color:#fff;font-size:.86em;
  font-weight:600;white-space:nowrap}
.error-text{color:#5f6368;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.86em}
.v-crack{--c:var(--crack)} .v-uncertain{--c:var(--uncertain)} .v-clear{--c:var(--clear)}
.v-error{--c:var(--error)} .v-other{--c:var(--other)}
button.mark{font:inherit;font-size:.86em;border:1px solid var(--line);background:#f6f7f9;border-radius:4px;
  padding:1px 8px;margin-left:8px;cursor:pointer}
#marker{border:0;border-radius:8px;padding:14px 18px;max-width:96vw;box-shadow:0 8px 40px #0006}
#marker::backdrop{background:#0008}
#marker .bar{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin:6px 0}
#marker .stage{position:relative;display:inline-block;cursor:crosshair;line-height:0}
#marker .stage img{max-width:90vw;max-height:72vh}
#marker .box{position:absolute;border:3px solid var(--c);box-sizing:border-box;pointer-events:none}
#marker .box span{position:absolute;left:0;top:0;background:var(--c);color:#fff;font:11px/1.4 system-ui;
  padding:0 4px;white-space:nowrap}
@media print{
  button.mark,#marker{display:none}
  body{padding:0;font-size:11px;max-width:none}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  .hint{display:none}  /* a filtered printout still says it is one (#shown) */
  .filter button{border:0;background:none;padding:0 6px 0 0;color:#000}
  .filter button[aria-pressed=true]{background:none;color:#000;text-decoration:underline}
  thead{position:static}
  tr{break-inside:avoid}
  a{color:inherit;text-decoration:none}
}
"""

SCRIPT = r"""{  // a block, so these names stay out of the page's global scope (window.status exists)
const body = document.querySelector("#inputs tbody"), status = document.getElementById("shown");
document.querySelectorAll("#inputs th[data-type]").forEach(th => {
  const sort = () => {
    const i = th.cellIndex, numeric = th.dataset.type === "num";
    const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    th.parentNode.querySelectorAll("th").forEach(other => other.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = a.cells[i].dataset.sort, y = b.cells[i].dataset.sort;
      if (x === "" || y === "") return (x === "") - (y === "");  // nothing to compare: last either way
      if (numeric) return dir * (parseFloat(x) - parseFloat(y));
      return dir * x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"});  // IMG_2 before IMG_10
    });
    body.append(...rows);
  };
  th.addEventListener("click", sort);
  th.addEventListener("keydown", event => {  // the headers are focusable: sortable from the keyboard too
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
  });
});
const buttons = document.querySelectorAll(".filter button");
buttons.forEach(button => button.addEventListener("click", () => {
  const wanted = button.dataset.filter;
  buttons.forEach(other => other.setAttribute("aria-pressed", other === button));
  let shown = 0;
  for (const row of body.rows) { row.hidden = wanted !== "" && row.dataset.verdict !== wanted; shown += !row.hidden; }
  status.textContent = wanted === "" ? `Showing all ${body.rows.length} inputs.`
                                     : `Showing ${shown} of ${body.rows.length} inputs: ${wanted}.`;
}));
// Marking: click tiles of a photo's figure to label them, then save the boxes as a labels file
// for data_prep.py (support/labels.py). Coordinates go back to the photo's own pixels.
const marking = JSON.parse(document.getElementById("marking").textContent);
const dialog = document.getElementById("marker"), stage = dialog.querySelector(".stage");
const picture = stage.querySelector("img"), marks = new Map();
let current = null;
const starts = (length, tile, stride) => {
  const found = [];
  for (let v = 0; v <= length - tile; v += stride) found.push(v);
  if (!found.length || found[found.length - 1] + tile < length) found.push(Math.max(0, length - tile));
  return found;
};
const nearest = (values, wanted) => values.reduce((a, b) => Math.abs(b - wanted) < Math.abs(a - wanted) ? b : a);
const label = () => dialog.querySelector("input[name=label]:checked").value;
const drawMarks = () => {
  stage.querySelectorAll(".box").forEach(box => box.remove());
  const m = marking[current], k = picture.clientWidth / picture.naturalWidth;
  for (const mark of marks.values()) {
    if (mark.row !== current) continue;
    const box = document.createElement("div");
    box.className = "box " + (mark.label === m.labels[m.labels.length - 1] ? "v-crack" : "v-clear");
    Object.assign(box.style, {left: `${mark.x * m.scale * k}px`, top: `${(m.top + mark.y * m.scale) * k}px`,
      width: `${mark.w * m.scale * k}px`, height: `${mark.h * m.scale * k}px`});
    const text = document.createElement("span");
    text.textContent = m.shown[m.labels.indexOf(mark.label)];
    box.append(text);
    stage.append(box);
  }
  document.getElementById("marked").textContent = `${marks.size} tile${marks.size === 1 ? "" : "s"} marked`;
};
document.querySelectorAll("button.mark").forEach(button => button.addEventListener("click", () => {
  current = button.dataset.row;
  const m = marking[current];
  document.getElementById("marker-name").textContent = m.path;
  dialog.querySelector(".labels").replaceChildren(...m.labels.map((name, i) => {
    const option = document.createElement("label"), input = document.createElement("input");
    Object.assign(input, {type: "radio", name: "label", value: name, checked: i === 0});
    option.append(input, " " + m.shown[i]);
    return option;
  }));
  picture.onload = drawMarks;
  picture.src = button.dataset.figure;
  dialog.showModal();
}));
stage.addEventListener("click", event => {
  const m = marking[current], rect = picture.getBoundingClientRect(), k = picture.naturalWidth / rect.width;
  const px = (event.clientX - rect.left) * k / m.scale, py = ((event.clientY - rect.top) * k - m.top) / m.scale;
  if (px < 0 || py < 0 || px > m.w || py > m.h) return;  // the banner or the colour bar
  const x = nearest(starts(m.w, m.tw, m.stride), px - m.tw / 2), y = nearest(starts(m.h, m.th, m.stride), py - m.th / 2);
  const key = `${current}|${x}|${y}`, wanted = label();
  if (marks.has(key) && marks.get(key).label === wanted) marks.delete(key);
  else marks.set(key, {row: current, x, y, w: m.tw, h: m.th, label: wanted, source: m.source});
  drawMarks();
});
window.addEventListener("resize", () => current !== null && drawMarks());
const quoted = text => /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
document.getElementById("save-labels").addEventListener("click", () => {
  const lines = ["path,x,y,width,height,label",
    ...Array.from(marks.values(), m => [quoted(m.source), m.x, m.y, m.w, m.h, quoted(m.label)].join(","))];
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], {type: "text/csv"}));
  link.download = "labels.csv";
  document.body.append(link);
  link.click();
  link.remove();
});
}"""


def write_report(folder, title, model_lines, rows, class_names=None):
    """Write folder/index.html (under a temporary name, then renamed) and return its path.

    rows: one dict per input with path, verdict, reason, probability, share, figure, thumbnail
    (both relative to folder, or None), taken, camera and error; see the tests for an example.
    A row with "mark" (the photo's tile grid and the figure's layout, see predict.report_row) gets
    a button that opens its figure to mark tiles, saved as a labels file for data_prep.py.
    class_names: the model's classes, in the order their counts are shown (default: the crack model's).
    """
    known = [*class_names, "uncertain"] if class_names else ["crack", "uncertain", "no crack"]
    order = list(dict.fromkeys([*known, *(r["verdict"] for r in rows if r["verdict"] != "error"), "error"]))
    counts = collections.Counter(r["verdict"] for r in rows)
    esc = html.escape
    filters = [f'<button type="button" data-filter="" aria-pressed="true">All <b>{len(rows)}</b></button>']
    filters += [f'<button type="button" data-filter="{esc(v)}" aria-pressed="false" class="{badge(v)}"'
                f'{"" if counts[v] else " disabled"}><span class="dot"></span>{esc(v)} <b>{counts[v]}</b></button>'
                for v in order]
    headers = "".join(f'<th class="{align}" data-type="{kind}" tabindex="0">{name}</th>' if kind
                      else f"<th>{name}</th>" for name, kind, align in COLUMNS)
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><link rel="icon" href="data:,"><style>{STYLE}</style></head>
<body><header><h1>{esc(title)}</h1>
<ul class="model">{"".join(f"<li>{esc(line)}</li>" for line in model_lines)}</ul>
<p class="meta">Report written {esc(written)} &middot; {len(rows)} inputs</p></header>
<nav class="filter" aria-label="Show one verdict">{"".join(filters)}</nav>
<p class="meta"><span id="shown">Showing all {len(rows)} inputs.</span>
<span class="hint">Click a column header to sort by it.</span></p>
<table id="inputs"><thead><tr>{headers}</tr></thead>
<tbody>
{"".join(table_row(row, order, i) for i, row in enumerate(rows))}</tbody></table>
<dialog id="marker"><form method="dialog"><b id="marker-name"></b>
<div class="bar">Mark as <span class="labels"></span>: click a tile to mark it, click again to unmark.</div>
<div class="stage"><img alt="the photo's figure"></div>
<div class="bar"><span id="marked">0 tiles marked</span><button type="button" id="save-labels">Save labels.csv</button>
<button value="close">Close</button></div></form></dialog>
<script type="application/json" id="marking">{marking_data(rows)}</script>
<script>{SCRIPT}</script></body></html>
"""
    path = Path(folder) / "index.html"
    with writing(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def marking_data(rows):
    """{row: how to map a click on its figure to a tile of its photo}, as JSON safe inside <script>."""
    data = {str(i): row["mark"] | {"path": str(row["path"])} for i, row in enumerate(rows) if row.get("mark")}
    # Escaped as JSON, so the data reads back the same, and no "<!--", "<script" or "</script" in a file
    # name can end or change the script block.
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def badge(verdict):
    return BADGES.get(verdict, "v-other")


def href(relative):
    """A relative path as a URL: a name with a space, '#' or '%' must still point at its file."""
    return html.escape(quote(PurePath(relative).as_posix()))


def table_row(row, order, index=0):
    esc = html.escape

    def cell(content, key="", kind=""):
        kind = f' class="{kind}"' if kind else ""
        return f'<td data-sort="{esc(str(key))}"{kind}>{content}</td>'

    path, verdict = str(row["path"]), row["verdict"]
    name = PurePath(path).name or path
    probability, share = row.get("probability"), row.get("share")
    figure, thumbnail = row.get("figure"), row.get("thumbnail")
    image = f'<img src="{href(thumbnail)}" alt="" loading="lazy">' if thumbnail else ""
    if image and figure:
        image = f'<a href="{href(figure)}">{image}</a>'
    shown_path = f'<span class="path">{esc(path)}</span>' if path != name else ""
    reason = (f'<span class="error-text">{esc(row.get("error") or "")}</span>' if verdict == "error"
              else esc(row.get("reason") or ""))
    # Cut, not rounded, to 3 decimals: 0.98968 shown as 0.990 would seem to reach a 0.99 threshold it missed.
    shown_probability = (f'<span title="{probability:.5f}">{f"{probability:.6f}"[:-3]}</span>'
                         if probability is not None else "")
    cells = [cell(image, kind="thumb"),
             cell(f'<span class="name">{esc(name)}</span>{shown_path}', path),
             cell(f'<span class="badge {badge(verdict)}">{esc(verdict)}</span>', order.index(verdict)),
             cell(reason, row.get("reason") or row.get("error") or ""),
             cell(shown_probability, "" if probability is None else repr(float(probability)), "num"),
             cell("" if share is None else f"{share:.1%}", "" if share is None else repr(float(share)), "num"),
             cell(esc(row.get("taken") or ""), row.get("taken") or "", "nowrap"),
             cell(esc(row.get("camera") or ""), row.get("camera") or "", "nowrap"),
             cell((f'<a href="{href(figure)}">figure</a>' if figure else "")
                  + (f'<button type="button" class="mark" data-row="{index}" data-figure="{href(figure)}">mark'
                     "</button>" if figure and row.get("mark") else ""))]
    return f'<tr data-verdict="{esc(verdict)}">{"".join(cells)}</tr>\n'


def save_thumbnail(image_rgb, path, max_side=160, source=None):
    """Write a JPEG of the image at most max_side px a side (temporary name, then renamed), with the
    path of the input it shows inside it when `source` is given (figures.with_source)."""
    height, width = image_rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = cv2.resize(image_rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)  # averages pixels: no aliasing at a tenth of the size
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise OSError(f"cannot encode a thumbnail for {path}")
    data = data.tobytes() if source is None else with_source(data.tobytes(), source)
    with writing(Path(path)) as tmp:  # encoded in memory: cv2.imwrite fails on non-ASCII paths on Windows
        tmp.write_bytes(data)
    return Path(path)


def read_exif(path):
    """(taken, camera) from a photo's EXIF, "" for what is absent or unreadable; never raises.

    taken is "YYYY-MM-DD HH:MM:SS" (DateTimeOriginal, else DateTime); camera is make and model.
    """
    def text(value):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return str(value or "").replace("\x00", "").strip()

    try:
        with Image.open(path) as image:  # reads the header only, not the pixels
            exif = image.getexif()
            taken = text(exif.get_ifd(0x8769).get(36867) or exif.get(306))
            make, model = text(exif.get(271)), text(exif.get(272))
    except Exception:  # any damaged or exotic file: the report goes on without its metadata
        return "", ""
    if not taken.strip(" :0"):  # "0000:00:00 00:00:00" and blanks mean "not set"
        taken = ""
    elif re.fullmatch(r"\d{4}:\d\d:\d\d(\s.*)?", taken):
        taken = taken[:10].replace(":", "-") + taken[10:]
    camera = model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return taken, camera


# ----------------------------------------------------------------------------------------------
# A run of predict.py as rows of the report


def report_row(path, image, result, figure, layout, stem, args, rule):
    """A row of the report, with the photo's thumbnail (written now), when and with what it was
    taken, and how a click on its figure finds a tile (to mark it): layout is where the photo is
    in the figure (figures.photo_area)."""
    folder, (top, scale) = args.report, layout or (0, 1.0)  # no layout: the figure could not be drawn
    height, width = image.shape[:2]
    photo = photos.is_photo(image, args.tile)
    side, stride = photos.tile_side_and_stride(image.shape, *photos.tiling(image, args.tile, args.stride)) \
        if photo else (0, 0)
    labels = rule["class_names"]
    thumbnail = figures.free_path(folder / "thumbnails", stem, ".jpg", path.resolve())
    save_thumbnail(image, thumbnail, source=path.resolve())
    taken, camera = read_exif(path)
    return {"path": str(path), "verdict": result["verdict"], "reason": result["reason"],
            "probability": result["probability"], "share": result.get("cracked_share", result.get("share")),
            "figure": figure.relative_to(folder) if figure else None, "thumbnail": thumbnail.relative_to(folder),
            "taken": taken, "camera": camera, "error": "",
            "mark": {"source": str(path.resolve()), "w": width, "h": height, "tw": side if photo else width,
                     "th": side if photo else height, "stride": stride if photo else max(width, height),
                     "top": top, "scale": scale, "labels": labels,
                     "shown": ["no crack", "crack"] if rule["crack_model"] else labels}}


def write_run_report(folder, inputs, model_line, info, rows, failures, rule):
    """folder/index.html for a run: the model and what it learned from, a row per input in the order
    given, failed ones with their error."""
    rows = [rows.get(path) or {"path": str(path), "verdict": "error", "reason": "", "error": failures[path]}
            for path in inputs]
    title = "Crack report" if rule["crack_model"] else f"Report ({', '.join(rule['class_names'])})"
    trained = f"trained on: {'; '.join(map(str, info.get('trained_on') or ['(not recorded)']))}"
    if info.get("init_from"):
        trained += f", fine-tuned from {info['init_from']}"
    return write_report(folder, title, [model_line, trained], rows,
                        None if rule["crack_model"] else rule["class_names"])
