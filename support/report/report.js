// The report's script, inlined into index.html by support/html_report.py: sorting, filters, marking
// tiles, the inspector's verdicts and notes, loading and saving them as CSV.
{  // a block, so these names stay out of the page's global scope (window.status exists)
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
  const x = nearest(m.xs, px - m.tw / 2), y = nearest(m.ys, py - m.th / 2);  // where the photo's tiles start
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
// A cell a spreadsheet would run as a formula gets a leading ' (OWASP), as in predict's CSVs (safe_text.neutral_cell).
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
}
