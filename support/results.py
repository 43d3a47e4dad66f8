"""predict.py's results as text: a line per input, a CSV row per input and per tile, and the verdicts
that changed between two models (--compare-with). Probabilities are cut, never rounded (photos.cut):
5 decimals in the CSVs, whose first 3 are what the terminal, the figures and the report show.
"""

from support.photos import change_rank, cut, summary, verdict_change
from support.safe_io import printable


def describe(path, result):
    """The terminal's line for an input: its verdict, why, and what the older model said if it differs."""
    main_measure, more = summary(result)
    before = result.get("before") or {}
    was = verdict_change(result) and f"was {before['verdict']} at {cut(before['probability'])}"
    details = "; ".join(filter(None, [result["reason"], main_measure, *more, was]))
    return f"{printable(path)}: {result['verdict']} ({details})"


def csv_columns(rule, compared=False):
    before = ["verdict_before", "probability_before", "changed"] if compared else []
    if rule["crack_model"]:
        return ["path", "crack_probability", "verdict", "reason", "tiles", "cracked_tiles", "cracked_share",
                "straight_line_tiles", *before, "figure", "error"]
    return ["path", "verdict", "reason", "probability", *(f"probability_{n}" for n in rule["class_names"]),
            "tiles", "share", *before, "figure", "error"]


def csv_row(path, result, figure, failure, rule, compared=False):
    """The --csv row of an input: its result, or the reason it failed."""
    if result is None:
        return [str(path) if c == "path" else "error" if c == "verdict" else failure if c == "error" else ""
                for c in csv_columns(rule, compared)]
    figure = "" if figure is None else str(figure)
    before = result.get("before")
    before = [before["verdict"], cut(before["probability"], 5), verdict_change(result)] if before else []
    if rule["crack_model"]:
        return [str(path), cut(result["probability"], 5), result["verdict"], result["reason"], result["tiles"],
                result["cracked_tiles"], f"{result['cracked_share']:.4f}", result["straight_line_tiles"],
                *before, figure, ""]
    return [str(path), result["verdict"], result["reason"], cut(result["probability"], 5),
            *(cut(p, 5) for p in result["probabilities"].values()), result["tiles"], f"{result['share']:.4f}",
            *before, figure, ""]


def csv_rows(inputs, done, failures, rule, compared=False):
    """The --csv table: a row per input, in the order given, each once. done: [(path, result, figure)]."""
    finished = {path: (result, figure) for path, result, figure in done}
    return [csv_row(path, *finished.get(path, (None, None)), failures.get(path), rule, compared) for path in inputs]


def tile_columns(rule):
    extra = (["probability", "probability_with_straight_lines"] if rule["crack_model"]
             else [f"probability_{n}" for n in rule["class_names"]])
    return ["image", "x", "y", "width", "height", *extra]


def tile_rows(path, tiles, rule):
    """The --tiles-csv rows of a photo: each tile's box and probabilities."""
    grid, counted, seen, _ = tiles
    if rule["crack_model"]:
        return [(str(path), x, y, s, s, cut(p[1], 5), cut(q[1], 5))
                for (x, y, s), p, q in zip(grid, counted, seen)]
    return [(str(path), x, y, s, s, *(cut(v, 5) for v in p)) for (x, y, s), p in zip(grid, counted)]


def print_changes(results):
    """Every input whose verdict changed from the older model's, lost cracks first: none goes without a
    line. results: {path: result with "before"}."""
    changed = sorted(((path, r) for path, r in results.items() if verdict_change(r)), key=lambda i: change_rank(i[1]))
    if not changed:
        return print(f"no verdict changed on the {len(results)} images (--model against --compare-with)")
    print(f"verdicts changed on {len(changed)} of {len(results)} images (--model against --compare-with), "
          "lost cracks first:")
    for path, result in changed:
        print(f"  {verdict_change(result)}: {printable(path)} ({cut(result['before']['probability'])} -> "
              f"{cut(result['probability'])})")
