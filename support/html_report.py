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
"""

import collections
import datetime
import html
import json
import re
import sys
import uuid
from pathlib import Path, PurePath
from urllib.parse import quote

from support import figures, inspection, photos, verdicts
from support.atomic_files import write_json, writing
from support.errors import InputError
from support.figures import with_source
from support.images import ImageError
from support.model_files import CRACK_CLASSES
from support.opencv import cv2
from support.output_folders import MARKER

FINAL_COPY = " &middot; final copy: the inspector's verdicts and notes written in"
HEADER_FIELDS = ("title", "site", "inspector", "notes")  # predict's --title ..., or --report-info FILE
MAX_INFO_BYTES = 2 ** 20  # a header file of more is no header: refused unread
LOOK_FIRST = 5  # photos named in the summary as the ones to look at first
CRACK_RULE = verdicts.verdict_rule({"class_names": CRACK_CLASSES})  # write_report's, unless given another
# Rows are filtered by these keys of theirs, a button per value found: the verdict, and any key added
# here (a row without it is left out of that key's buttons).
FILTER_KEYS = ["verdict", "changed"]

STYLE = """
:root{--error:#757575;--line:#dde1e6}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232a;margin:0 auto;
  padding:24px 32px;max-width:1400px}
h1{font-size:22px;margin:0 0 6px}
h2{font-size:16px;margin:14px 0 4px}
.model{list-style:none;margin:0;padding:0;color:#3c444d}
.meta{color:#6b737b;margin:4px 0 14px;font-size:.93em}
.about{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
.about dt{color:#6b737b} .about dd{margin:0;white-space:pre-wrap}
.summary{border:1px solid var(--line);border-radius:6px;padding:4px 16px 10px;margin:0 0 14px}
.summary ol{margin:4px 0;padding-left:22px}
.limits{font-weight:600}
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
tbody:nth-of-type(even){background:#fafbfc}
.num{text-align:right;font-variant-numeric:tabular-nums}
.num,.nowrap{white-space:nowrap}
td.thumb img{display:block;max-width:96px;max-height:72px;border:1px solid var(--line);border-radius:3px}
.name{font-weight:600;overflow-wrap:break-word}
#inputs td:nth-child(2){min-width:13em}  /* a name and its folder, not a letter a line */
.path,.more{display:block;color:#6b737b;font-size:.86em;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;background:var(--c);color:#fff;font-size:.86em;
  font-weight:600;white-space:nowrap}
.error-text{color:#5f6368;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.86em}
.inspector{max-width:22em}
/* A long note shows 3 lines in its row (all of it in its title, the dialog, and on paper below the row) */
.note{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:3;line-clamp:3;overflow:hidden;
  white-space:pre-wrap}
.full-note{white-space:pre-wrap;margin:0 0 6px} .full-note:empty{display:none}
.v-error{--c:var(--error)}
button.mark{font:inherit;font-size:.86em;border:1px solid var(--line);background:#f6f7f9;border-radius:4px;
  padding:1px 8px;margin-left:8px;cursor:pointer}
tr.sheet{display:none}  /* the figure under its row, on paper only */
#marker{border:0;border-radius:8px;padding:14px 18px;max-width:96vw;box-shadow:0 8px 40px #0006}
#marker::backdrop{background:#0008}
#marker .bar{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin:6px 0}
#marker textarea{font:inherit;width:32em;max-width:80vw;vertical-align:top}
#marker .stage{position:relative;display:inline-block;cursor:crosshair;line-height:0}
#marker .view{overflow:auto;max-width:92vw;max-height:64vh}  /* zoomed: scrolled */
#marker .stage img{max-width:none;max-height:none}
#marker .stage img.plain{position:absolute;left:0;pointer-events:none}
/* Marks are magenta (crack) and white dashed (no crack): colours the heat map and its outlines never use */
.mark-0{--c:#fff;--t:#000} .mark-1{--c:#e000e0;--t:#fff} .mark-class{--c:#1d232a;--t:#fff}
#marker .box{position:absolute;border:3px solid var(--c);box-sizing:border-box;pointer-events:none;
  box-shadow:0 0 0 1px #000,inset 0 0 0 1px #000}
#marker .box.mark-0{border-style:dashed}
#marker .box span{position:absolute;left:0;top:0;background:var(--c);color:var(--t);font:11px/1.4 system-ui;
  padding:0 4px;white-space:nowrap}
.swatch{display:inline-block;width:12px;height:12px;margin:0 4px;border:3px solid var(--c);outline:1px solid #000;
  vertical-align:-2px}
.swatch.mark-0{border-style:dashed}
.line{display:inline-block;width:20px;height:3px;margin:0 5px 0 2px;background:var(--c);border:1px solid #000;
  vertical-align:middle}
.callout{display:block;font-weight:600;color:#b00020}
@media print{
  button.mark,#marker,.load{display:none}
  body{padding:0;font-size:11px;max-width:none}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  .hint{display:none}  /* a filtered printout still says it is one (#shown) */
  .filter button{border:0;background:none;padding:0 6px 0 0;color:#000}
  .filter button[aria-pressed=true]{background:none;color:#000;text-decoration:underline}
  thead{position:static}
  /* The table flows from the summary on: a row is never split, nor its figure, but the first row need not
     wait for a page that holds it and its figure too (page 1 was half blank) */
  tr{break-inside:avoid} tr.sheet{break-before:avoid} tbody:first-of-type tr.sheet{break-before:auto}
  tr.sheet{display:table-row}
  td.inspector{min-width:14em}  /* a note of 60 characters in its 3 lines: it was squeezed to 8 */
  #inputs tr:first-child>:is(:first-child,:last-child){display:none}  /* thumbnail and links: the figure is below */
  tr.sheet img{display:block;max-width:100%;max-height:120mm;margin:0 auto}
  a{color:inherit;text-decoration:none}
}
"""

SCRIPT = r"""{  // a block, so these names stay out of the page's global scope (window.status exists)
const table = document.getElementById("inputs"), status = document.getElementById("shown");
const inputs = () => Array.from(table.tBodies);  // one tbody an input: its row, and its figure for print
document.querySelectorAll("#inputs th[data-type]").forEach(th => {
  const sort = () => {
    const i = th.cellIndex, numeric = th.dataset.type === "num";
    const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    th.parentNode.querySelectorAll("th").forEach(other => other.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    const groups = inputs();
    groups.sort((a, b) => {
      const x = a.rows[0].cells[i].dataset.sort, y = b.rows[0].cells[i].dataset.sort;
      if (x === "" || y === "") return (x === "") - (y === "");  // nothing to compare: last either way
      if (numeric) return dir * (parseFloat(x) - parseFloat(y));
      return dir * x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"});  // IMG_2 before IMG_10
    });
    table.append(...groups);
  };
  th.addEventListener("click", sort);
  th.addEventListener("keydown", event => {  // the headers are focusable: sortable from the keyboard too
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
  });
});
const buttons = document.querySelectorAll(".filter button");
buttons.forEach(button => button.addEventListener("click", () => {
  const key = button.dataset.key, wanted = button.dataset.filter;
  buttons.forEach(other => other.setAttribute("aria-pressed", other === button));
  let shown = 0;
  const groups = inputs();
  for (const group of groups) {
    group.hidden = wanted !== "" && group.dataset[key] !== wanted;
    shown += !group.hidden;
  }
  status.textContent = wanted === "" ? `Showing all ${groups.length} inputs.`
                                     : `Showing ${shown} of ${groups.length} inputs: ${wanted}.`;
}));
// Marking: click tiles of a photo's figure to label them, then save the boxes as a labels file
// for data_prep.py (support/labels.py). Coordinates go back to the photo's own pixels. Marks, notes
// and verdicts are kept in this browser under the report's own id (two reports never mix) until
// saved; leaving with work not yet saved asks first. A final copy (predict --final-copy) starts
// from the inspector's verdicts and notes written into it; saved files can be loaded back.
const marking = JSON.parse(document.getElementById("marking").textContent);
const order = JSON.parse(table.dataset.order), baked = JSON.parse(document.body.dataset.baked || "{}");
const dialog = document.getElementById("marker"), stage = dialog.querySelector(".stage");
const picture = stage.querySelector("img"), plain = stage.querySelector("img.plain");
const older = stage.querySelector("img.older");
const storeKey = "crack-report:" + document.body.dataset.report;
let kept = null;
try { kept = JSON.parse(localStorage.getItem(storeKey)); } catch (error) {}  // a browser that keeps nothing for files
kept = kept || {marks: [], notes: baked, unsaved: [], label: null};
const marks = new Map(kept.marks.map(mark => [`${mark.row}|${mark.x}|${mark.y}`, mark]));
const notes = kept.notes, unsaved = new Set(kept.unsaved);
let current = null, chosen = kept.label, zoom = 1;  // the mark type stays as chosen, photo after photo
const keep = file => {
  if (file) unsaved.add(file);
  const state = {marks: Array.from(marks.values()), notes, unsaved: Array.from(unsaved), label: chosen};
  try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (error) {}  // then it lasts as long as the page
};
window.addEventListener("beforeunload", event => {
  if (unsaved.size) { event.preventDefault(); event.returnValue = ""; }  // the browser asks before leaving
});
// The photo's full path on this computer, for data_prep: the page holds it relative to its own folder.
const absolute = source => {
  if (/^([A-Za-z]:)?[\\/]/.test(source)) return source;  // kept whole: on another drive than the report
  const url = new URL(source.split("/").map(encodeURIComponent).join("/"), location.href);
  const path = decodeURIComponent(url.pathname);
  return /^\/[A-Za-z]:\//.test(path) ? path.slice(1).replace(/\//g, "\\") : path;
};
const starts = (length, tile, stride) => {
  const found = [];
  for (let v = 0; v <= length - tile; v += stride) found.push(v);
  if (!found.length || found[found.length - 1] + tile < length) found.push(Math.max(0, length - tile));
  return found;
};
const nearest = (values, wanted) => values.reduce((a, b) => Math.abs(b - wanted) < Math.abs(a - wanted) ? b : a);
const marksOf = row => Array.from(marks.values()).filter(mark => mark.row === row);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const modelCells = {};  // the model's verdict as written, shown again when the inspector takes theirs back
document.querySelectorAll("#inputs tbody").forEach(group => {
  modelCells[group.id.slice(4)] = {html: group.querySelector("td.verdict").innerHTML, verdict: group.dataset.verdict};
});
const showRow = row => {  // the inspector's verdict, note and marks in the photo's row, on screen and on paper
  const m = marking[row], said = notes[row] || {}, count = marksOf(row).length;
  const group = document.getElementById(`row-${row}`), cell = group.querySelector("td.verdict");
  const shown = group.querySelector(".inspector .note"), full = group.querySelector(".full-note");
  shown.textContent = shown.title = said.note || "";
  if (full) full.textContent = (said.note || "").split("\n").length > 3 || (said.note || "").length > 60
    ? `The inspector's note: ${said.note}` : "";  // on paper: what 3 lines of its row (14em) may not hold
  if (said.verdict) {
    const badge = document.createElement("span"), model = document.createElement("span");
    badge.className = "badge " + m.badges[m.shown.indexOf(said.verdict)];
    badge.textContent = said.verdict;
    model.className = "more";
    model.textContent = `inspector; model: ${m.verdict}`;
    cell.replaceChildren(badge, model);
  } else cell.innerHTML = modelCells[row].html;
  const final = said.verdict || m.verdict;
  group.dataset.verdict = final;
  cell.dataset.sort = order.indexOf(final);
  const callout = group.querySelector(".callout");
  if (callout && m.before) callout.textContent = against(m, said.verdict);
  const button = group.querySelector("button.mark");
  if (button) button.textContent = count ? `mark (${count})` : "mark";
};
// A change from the older model (--compare-with) said against the inspector's verdict: a lost crack stands out.
const against = (m, said) => {
  if (!said) return "";
  if (said !== m.verdict) return `${m.before === said ? "lost" : "still not"}: you said ${said}`;
  return m.before !== said ? "now as you said" : "";
};
const showSummary = () => {  // the counts with the inspector's verdicts in place of the model's, and the filters
  const groups = inputs(), counts = {};
  groups.forEach(group => { counts[group.dataset.verdict] = (counts[group.dataset.verdict] || 0) + 1; });
  document.querySelectorAll('.filter button[data-key="verdict"]').forEach(button => {
    if (button.dataset.filter === "") return;
    const n = counts[button.dataset.filter] || 0;
    button.querySelector("b").textContent = n;
    button.disabled = !n;
  });
  const given = Object.keys(marking).filter(row => (notes[row] || {}).verdict);
  const differ = given.filter(row => notes[row].verdict !== marking[row].verdict).length;
  const said = order.filter(v => counts[v] || v !== "error").map(v => `${counts[v] || 0} ${v}`).join(", ");
  document.getElementById("inspected").textContent = given.length
    ? `The inspector: ${plural(given.length, "verdict")} given, ${differ} not the model's. With them in place of ` +
      `the model's: ${said}.` : "The inspector: no verdict given yet; every verdict above is the model's.";
  const lost = Object.keys(marking).filter(row => against(marking[row], (notes[row] || {}).verdict)
    .startsWith("lost")).length;
  const line = document.getElementById("against");
  if (line) line.textContent = lost ? `${plural(lost, "change")} against the inspector's verdict (lost: you said...).` : "";
};
const showAll = () => { Object.keys(marking).forEach(showRow); showSummary(); };
const drawMarks = () => {
  stage.querySelectorAll(".box").forEach(box => box.remove());
  const m = marking[current], k = picture.clientWidth / picture.naturalWidth;
  for (const overlay of [plain, older])
    Object.assign(overlay.style, {top: `${m.top * k}px`, width: `${m.w * m.scale * k}px`});
  const mine = marksOf(current);
  for (const mark of mine) {
    const box = document.createElement("div"), i = m.labels.indexOf(mark.label);
    box.className = `box mark-${m.labels.length === 2 ? i : "class"}`;
    Object.assign(box.style, {left: `${mark.x * m.scale * k}px`, top: `${(m.top + mark.y * m.scale) * k}px`,
      width: `${mark.w * m.scale * k}px`, height: `${mark.h * m.scale * k}px`});
    const text = document.createElement("span");
    text.textContent = m.shown[i];
    box.append(text);
    stage.append(box);
  }
  document.getElementById("marked").textContent = `${plural(mine.length, "tile")} marked`;
  showRow(current);
  showSummary();
};
const fitted = () => Math.min(picture.naturalWidth, window.innerWidth * 0.9,  // the whole figure in view
                              picture.naturalWidth * window.innerHeight * 0.6 / picture.naturalHeight);
const zoomTo = level => {
  zoom = Math.max(1, Math.min(6, level));
  picture.style.width = `${fitted() * zoom}px`;
  document.getElementById("zoom").textContent = `${Math.round(zoom * 100)}%`;
  drawMarks();
};
const note = document.getElementById("note"), override = document.getElementById("override");
const toggle = document.getElementById("plain"), toggleOlder = document.getElementById("older");
document.querySelectorAll("button.mark").forEach(button => button.addEventListener("click", () => {
  current = button.dataset.row;
  const m = marking[current], said = notes[current] || {};
  document.getElementById("marker-name").textContent = m.path;
  if (!m.shown.includes(chosen)) chosen = null;  // none chosen yet: a tile is never marked by default
  dialog.querySelector(".labels").replaceChildren(...m.labels.map((name, i) => {
    const option = document.createElement("label"), input = document.createElement("input");
    const swatch = document.createElement("span");
    Object.assign(input, {type: "radio", name: "label", value: name, checked: m.shown[i] === chosen});
    input.addEventListener("change", () => { chosen = m.shown[i]; keep(); });
    swatch.className = `swatch mark-${m.labels.length === 2 ? i : "class"}`;
    option.append(input, swatch, " " + m.shown[i]);
    return option;
  }));
  override.replaceChildren(...["", ...m.shown].map(name => {
    const option = document.createElement("option");
    Object.assign(option, {value: name, textContent: name || `as the model: ${m.verdict}`});
    return option;
  }));
  override.value = said.verdict || "";
  note.value = said.note || "";
  toggle.checked = toggleOlder.checked = false;
  toggle.disabled = !m.photo;  // an image classified whole has no heat map to hide
  toggleOlder.parentNode.hidden = !m.older;
  plain.hidden = older.hidden = true;
  if (m.photo) plain.src = m.photo;
  if (m.older) older.src = m.older;
  picture.onload = () => zoomTo(1);
  picture.src = button.dataset.figure;
  dialog.showModal();
}));
toggle.addEventListener("change", () => { plain.hidden = !toggle.checked; });
toggleOlder.addEventListener("change", () => { older.hidden = !toggleOlder.checked; });
document.getElementById("zoom-in").addEventListener("click", () => zoomTo(zoom * 1.5));
document.getElementById("zoom-out").addEventListener("click", () => zoomTo(zoom / 1.5));
const said = () => {
  if (override.value || note.value) notes[current] = {verdict: override.value, note: note.value};
  else delete notes[current];
  keep("notes.csv");
  showRow(current);
  showSummary();
};
note.addEventListener("input", said);
override.addEventListener("change", said);
stage.addEventListener("click", event => {
  const m = marking[current], rect = picture.getBoundingClientRect(), k = picture.naturalWidth / rect.width;
  const px = (event.clientX - rect.left) * k / m.scale, py = ((event.clientY - rect.top) * k - m.top) / m.scale;
  if (px < 0 || py < 0 || px > m.w || py > m.h) return;  // the banner or the colour bar
  if (!chosen) {
    document.getElementById("marked").textContent = `Choose ${m.shown.join(" or ")} first, then click a tile.`;
    return;
  }
  const x = nearest(starts(m.w, m.tw, m.stride), px - m.tw / 2), y = nearest(starts(m.h, m.th, m.stride), py - m.th / 2);
  const key = `${current}|${x}|${y}`, wanted = m.labels[m.shown.indexOf(chosen)];
  if (marks.has(key) && marks.get(key).label === wanted) marks.delete(key);
  else marks.set(key, {row: current, x, y, w: m.tw, h: m.th, label: wanted, source: m.source});
  keep("labels.csv");
  drawMarks();
});
window.addEventListener("resize", () => current !== null && zoomTo(zoom));
showAll();
// Loading notes.csv and labels.csv saved from this report (or a copy of it on another computer): each row
// goes to the photo of the same full path, else to the one whose path below the folder given it ends with.
const parseCsv = text => {
  const rows = [[]];
  let cell = "", quoted = false;
  text = text.replace(/^\uFEFF/, "");
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') { cell += '"'; i++; } else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ",") { rows[rows.length - 1].push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      rows[rows.length - 1].push(cell); cell = ""; rows.push([]);
    } else cell += c;
  }
  rows[rows.length - 1].push(cell);
  return rows.filter(row => row.some(value => value !== ""));
};
const typed = cell => /^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;  // a spreadsheet's guard taken off
const rowOf = path => {
  const wanted = typed(path).replace(/\\/g, "/"), rows = Object.keys(marking);
  const same = rows.find(row => absolute(marking[row].source).replace(/\\/g, "/") === wanted);
  if (same !== undefined) return same;
  const ends = rows.filter(row => ("/" + wanted).endsWith("/" + marking[row].path));
  return ends.sort((a, b) => marking[b].path.length - marking[a].path.length)[0];
};
const loadCsv = (name, text) => {
  const [head, ...lines] = parseCsv(text), at = column => head.indexOf(column);
  let used = 0, missed = 0;
  for (const line of lines) {
    const row = rowOf(line[at("path")] || "");
    if (row === undefined) { missed++; continue; }
    const m = marking[row];
    if (at("inspector_verdict") >= 0) {
      const verdict = typed(line[at("inspector_verdict")] || "").trim(), text = typed(line[at("note")] || "");
      if (verdict && !m.shown.includes(verdict)) { missed++; continue; }
      if (verdict || text) notes[row] = {verdict, note: text}; else delete notes[row];
    } else {
      const label = typed(line[at("label")] || "").trim(), [x, y, w, h] = ["x", "y", "width", "height"]
        .map(column => Math.round(parseFloat(line[at(column)])));
      const wanted = m.labels.includes(label) ? label : m.labels[m.shown.indexOf(label)];
      if (!wanted || [x, y, w, h].some(Number.isNaN)) { missed++; continue; }
      marks.set(`${row}|${x}|${y}`, {row, x, y, w, h, label: wanted, source: m.source});
    }
    used++;
  }
  keep();
  showAll();
  return `${name}: ${plural(used, "row")} loaded` + (missed ? `, ${missed} not of a photo here or not readable` : "");
};
document.getElementById("load").addEventListener("change", async event => {
  const said = [];
  for (const file of event.target.files) {
    const text = await file.text(), head = parseCsv(text.split(/\r?\n/)[0])[0] || [];
    if (head.includes("path") && head.includes("inspector_verdict")) said.push(loadCsv(file.name, text));
    else if (["path", "x", "y", "width", "height", "label"].every(column => head.includes(column)))
      said.push(loadCsv(file.name, text));
    else said.push(`${file.name}: not a notes.csv or labels.csv of this report (no path and inspector_verdict, ` +
                   "or path,x,y,width,height,label columns)");
  }
  document.getElementById("loaded").textContent = said.join("; ");
  event.target.value = "";
});
// A cell a spreadsheet would run as a formula gets a leading ' (OWASP), as in predict's CSVs (safe_io.neutral_cell).
const neutral = text => /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
const quoted = text => /[",\n\r]/.test(text = neutral(String(text))) ? `"${text.replace(/"/g, '""')}"` : text;
const download = (name, lines) => {
  const link = document.createElement("a");
  const text = lines.map(line => line.join(",")).join("\n") + "\n";
  link.href = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  unsaved.delete(name);
  keep();
};
document.getElementById("save-labels").addEventListener("click", () => download("labels.csv", [
  ["path", "x", "y", "width", "height", "label"],
  ...Array.from(marks.values(), m => [quoted(absolute(m.source)), m.x, m.y, m.w, m.h, quoted(m.label)])]));
document.getElementById("save-notes").addEventListener("click", () => download("notes.csv", [
  ["path", "model_verdict", "inspector_verdict", "note", "marked_tiles", "tile"],
  ...Object.entries(marking).map(([row, m]) => [quoted(absolute(m.source)), quoted(m.verdict),
    quoted((notes[row] || {}).verdict || ""), quoted((notes[row] || {}).note || ""), marksOf(row).length, m.tile])]));
}"""


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
    one above, for notes of several lines; # starts a comment). Exits with one line if it is bad."""
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
    photo's tile grid and the figure's layout, see report_row) gets a button that opens its figure
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
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><link rel="icon" href="data:,"><style>{STYLE}{colours_css()}</style></head>
<body data-report="{uuid.uuid4().hex}" data-baked="{esc(json.dumps(notes or {}))}"><header><h1>{esc(title)}</h1>
<dl class="about">{"".join(f"<dt>{name}</dt><dd>{esc(value)}</dd>" for name, value in about if value)}</dl>
<ul class="model">{"".join(f"<li>{esc(line)}</li>" for line in model_lines)}</ul>
<p class="meta">Report written {esc(written)} &middot; {len(rows)} inputs{FINAL_COPY if notes is not None else ""}</p>
</header>
{summary_section(rows, order, counts, rule)}
<nav class="filter" aria-label="Show one verdict">{"".join(filters)}</nav>
<p class="meta"><span id="shown">Showing all {len(rows)} inputs.</span>
<span class="hint">Click a column header to sort by it.</span></p>
<p class="meta load"><label>Load saved work (notes.csv, labels.csv) <input type="file" id="load" accept=".csv,text/csv"
multiple></label> <span id="loaded"></span></p>
<table id="inputs" data-order="{esc(json.dumps(order))}"><thead><tr>{headers}</tr></thead>
{"".join(table_row(row, order, i, names, columns) for i, row in enumerate(rows))}</table>
<dialog id="marker"><form method="dialog"><b id="marker-name"></b>
<div class="bar">Mark as <span class="labels"></span>: click a tile to mark it, click again to unmark.
<label><input type="checkbox" id="plain"> the plain photo (no heat map)</label>
<label hidden><input type="checkbox" id="older"> the older model's heat map (Before)</label>
<span>Zoom <button type="button" id="zoom-out" aria-label="zoom out">&minus;</button> <span id="zoom">100%</span>
<button type="button" id="zoom-in" aria-label="zoom in">+</button></span></div>
<div class="view"><div class="stage"><img alt="the photo's figure"><img class="plain" alt="the photo" hidden>
<img class="plain older" alt="the older model's heat map" hidden></div></div>
<div class="bar"><label>Verdict <select id="override"></select></label>
<label>Note <textarea id="note" rows="2"></textarea></label></div>
<div class="bar"><span id="marked">0 tiles marked</span><button type="button" id="save-labels">Save labels.csv</button>
<button type="button" id="save-notes">Save notes.csv</button><button value="close">Close</button></div></form></dialog>
<script type="application/json" id="marking">{marking_data(rows)}</script>
<script>{SCRIPT}</script></body></html>
"""
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
    if rule.crack_model:
        look = ("Look first at (the strongest evidence first: the highest tile probability, then the fewest flagged "
                "tiles, as a photo flagged all over is more often joints or texture)")
        ranked = sorted((i for i in scored if rows[i]["verdict"] != "no crack"),  # as shown: beyond 3 decimals is noise
                        key=lambda i: (-float(verdicts.cut(rows[i]["probability"])), rows[i].get("share") or 0))
    else:  # a class is no alarm: the least sure verdicts are where a person is needed
        look, ranked = "Least sure, to look at first", sorted(scored, key=lambda i: rows[i]["probability"])
    first = "".join(f'<li><a href="#row-{i}">{esc(str(rows[i]["path"]))}</a>: {esc(rows[i]["verdict"])}, '
                    f'probability {verdicts.cut(rows[i]["probability"])}'
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
        changes.items(), key=lambda item: verdicts.LOSSES.index(item[0]) if item[0] in verdicts.LOSSES else 9))
    moved = [(row["before"].get("flagged"), row.get("flagged")) for row in compared]
    fewer = sum(old is not None and new is not None and new < old for old, new in moved)
    more = sum(old is not None and new is not None and new > old for old, new in moved)
    return (f'<p class="compared">Against the older model (Before): {sum(changes.values())} of {len(compared)} '
            f'verdicts changed{f" ({said})" if said else ""}; {flagged.lower()} fewer on {fewer} photos, more on '
            f'{more}. <b id="against"></b></p>')


def figure_legend(rule):
    """What the figures show: the heat map, and every kind of line they draw (figures.FIGURE_LINES; the
    straight lines set aside only by a crack model)."""
    lines = figures.FIGURE_LINES if rule.crack_model else figures.FIGURE_LINES[:1]
    named = "".join(f'; <span class="line" style="--c:rgb{colour}"></span>a {name}: '
                    f'{html.escape(what.format(flagged=rule.flagged[0].lower()))}' for colour, name, what in lines)
    return (f'<p class="legend"><b>In the figures</b>: the heat map colours each tile by its probability, blue (0) '
            f"to red (1) as on its colour bar{named}.</p>")


def flagged_text(row):
    """The flagged share as HTML, cut (verdicts.percent): "97.7% (44 of 45)", "&lt;0.1% (1 of 2000)"."""
    share, count = row.get("share"), row.get("flagged")
    if share is None:
        return ""
    return html.escape(verdicts.percent(share)) + (f" ({count} of {row['tiles']})" if count is not None else "")


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
    return rule.crack_model or any(row.get("share") is not None for row in rows)


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
    and thumbnail (relative to the report, or None), taken, camera, place (GPS) and error; any
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
    return f'<span title="{verdicts.cut(probability, 5)}">{verdicts.cut(probability)}</span>', repr(float(probability))


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
    shown = f'{html.escape(before["verdict"])} <span class="more">{verdicts.cut(before["probability"])}</span>'
    if before.get("flagged") is not None and row.get("flagged") is not None and row.get("tiles", 1) > 1:
        shown += f'<span class="more nowrap">flagged {before["flagged"]} &rarr; {row["flagged"]}</span>'
    rank = verdicts.change_rank(row) if change else len(verdicts.LOSSES) + 1  # lost cracks first, unchanged last
    return (f'<b class="nowrap">{html.escape(change)}</b><br>' if change else "") + shown + \
        '<span class="callout"></span>', rank


def inspector_cell(*_):
    return '<span class="note"></span>', ""  # filled in the browser from what the inspector typed (SCRIPT's showRow)


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


def save_thumbnail(image_rgb, path, max_side=160, source=None):
    """Write a JPEG of the image at most max_side px a side (temporary name, then renamed), with the
    path of the input it shows inside it when `source` is given (figures.with_source)."""
    height, width = image_rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = cv2.resize(image_rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)  # averages pixels: no aliasing at a tenth of the size
    return save_jpeg(small, path, source)


def save_jpeg(image_rgb, path, source=None):
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise OSError(f"cannot encode {path}")
    data = data.tobytes() if source is None else with_source(data.tobytes(), source)
    with writing(Path(path)) as tmp:  # encoded in memory: cv2.imwrite fails on non-ASCII paths on Windows
        tmp.write_bytes(data)
    return Path(path)


def read_exif(path):
    """(taken, camera, place) from a photo's EXIF, "" for what is absent or unreadable; never raises.

    taken is "YYYY-MM-DD HH:MM:SS" (DateTimeOriginal, else DateTime); camera is make and model;
    place the GPS position as text, "51.50740° N, 0.12780° W" (no map: the page stays offline).
    """
    from PIL import Image  # Pillow only when a report is written

    def text(value):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return str(value or "").replace("\x00", "").strip()

    try:
        with Image.open(path) as image:  # reads the header only, not the pixels
            exif = image.getexif()
            taken = text(exif.get_ifd(0x8769).get(36867) or exif.get(306))
            make, model = text(exif.get(271)), text(exif.get(272))
            place = gps_text(exif.get_ifd(0x8825))
    except Exception:  # any damaged or exotic file: the report goes on without its metadata
        return "", "", ""
    if not taken.strip(" :0"):  # "0000:00:00 00:00:00" and blanks mean "not set"
        taken = ""
    elif re.fullmatch(r"\d{4}:\d\d:\d\d(\s.*)?", taken):
        taken = taken[:10].replace(":", "-") + taken[10:]
    camera = model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return taken, camera, place


def gps_text(gps):
    """EXIF GPS tags (1-4: latitude N/S and degrees, minutes, seconds; longitude E/W and the same) as text."""
    try:
        (lat_ref, lat), (lon_ref, lon) = (gps[1], gps[2]), (gps[3], gps[4])
        lat, lon = (float(d) + float(m) / 60 + float(s) / 3600 for d, m, s in (lat, lon))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return ""
    if not (0 <= lat <= 90 and 0 <= lon <= 180) or str(lat_ref) not in "NS" or str(lon_ref) not in "EW":
        return ""
    return f"{lat:.5f}° {lat_ref}, {lon:.5f}° {lon_ref}"


# ----------------------------------------------------------------------------------------------
# A run of predict.py as rows of the report


def report_row(item, figure, layout, stem, args, rule):
    """A row of the report for a results.Classified, with the photo's thumbnail and (a photo cut into
    tiles) its plain picture at the figure's size, both written now; when, with what and where it was
    taken; and how a click on its figure finds a tile (to mark it): layout is where the photo is in the
    figure (figures.photo_area); with --compare-with, the older model's heat map over the photo too."""
    path, image, result = item.path, item.image, item.result
    folder, (top, scale), source = args.report, layout or (0, 1.0), path.resolve()  # no layout: no figure
    shown_path = inspection.shown_path(path, stem)  # all the page names: no folder of this computer
    height, width = image.shape[:2]
    photo = item.tiles is not None
    side, stride = photos.tile_side_and_stride(image.shape, *photos.tiling(image, args.tile, args.stride)) \
        if photo else (0, 0)
    shown = figures.shown_photo(image) if photo else image  # the thumbnail from it: a smaller image to shrink
    plain = save_jpeg(shown, figures.free_path(folder / "photos", stem, ".jpg", shown_path), shown_path) \
        if photo else None
    thumbnail = save_thumbnail(shown, figures.free_path(folder / "thumbnails", stem, ".jpg", shown_path),
                               source=shown_path)
    before_figure = None
    if item.before_tiles is not None and layout:
        before_figure = older_heat_map(item, rule, args, folder / "before", stem, shown_path)
    taken, camera, place = read_exif(path)
    counted = photo or rule.crack_model  # another model's image classified whole has no tiles to count
    compared = {"before": result["before"], "changed": verdicts.verdict_change(result) or None} if "before" in result else {}
    return compared | {"path": shown_path, "source": str(source), "verdict": result["verdict"], "reason": result["reason"],
            "probability": result["probability"], "share": result["share"] if counted else None,
            "flagged": result["flagged"] if counted else None, "tiles": result["tiles"],
            "figure": figure.relative_to(folder) if figure else None, "thumbnail": thumbnail.relative_to(folder),
            "taken": taken, "camera": camera, "place": place, "error": "",
            "mark": {"source": inspection.from_report(source, folder), "tile": side if photo else args.tile,
                     "before": result["before"]["verdict"] if "before" in result else None,
                     "older": href(before_figure.relative_to(folder)) if before_figure else None,
                     "w": width, "h": height, "tw": side if photo else width,
                     "th": side if photo else height, "stride": stride if photo else max(width, height),
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
    return save_jpeg(figure[top:top + height, :width], figures.free_path(folder, stem, ".jpg", shown_path), shown_path)


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
    fades = (f": a crack under {args.tile / size:.1f} px wide fades; for finer cracks, a smaller --tile (about 32 "
             "times their width)" if rule.crack_model and args.tile > size else "")
    scale = (f"photos cut into tiles of {args.tile} px, each shrunk to {size} px for the model{fades}" if args.tile
             else "images classified whole" if rule.crack_model
             else f"images classified whole, each shrunk to {size} px as data_prep shrank the training images")
    model_lines = [inspection.without_folders(line, [args.model, args.compare_with]) for line in model_lines]
    notes = None
    if args.final_copy:
        notes, unmatched = inspection.match_notes(args.final_notes, rows, args.final_copy)
        if unmatched:
            print(f"warning: --final-copy {args.final_copy}: {len(unmatched)} of its rows name no photo of this "
                  f"report, e.g. {unmatched[0]}", file=sys.stderr)
    return write_report(args.report, rule.report_title, [*model_lines, trained, scale], rows, rule, args.header, notes)
