"""What only a crack model does, in one place: the rest of the code is written for a model of any
classes, and a crack model's rules take the place of its defaults once, when verdicts.verdict_rule
reads the model's info (crack_rules below: nothing for any other model).

A crack model tells Özgenel's Negative/ and Positive/ apart (its info says "crack_model"; a model
saved before, by its class names). Beyond any model, it
- says crack, uncertain or no crack, in words and CSV columns of its own (judge_cracks);
- does not count a tile that fires only on a long straight line, a joint or an edge (set_aside_lines);
- cuts a photo into tiles of the dataset's patch, 227 px, when it was trained on no other;
- learns from scratch with photos in other light and drawn hairlines (train --capture, --thin-cracks),
  and is sure of a crack from where its validation calls were 99.9% right (calibrate).
"""

import numpy as np

from support.model_files import CRACK_CLASSES, PATCH_SIZE
from support.opencv import cv2
from support.unfamiliar import UNFAMILIAR_SHARE
from support.wording import cut, percent, scale_line as any_model_scale_line

ALIASES = {"crack": "Positive", "no crack": "Negative", "no_crack": "Negative"}  # words for its classes (labels files)
THIN_CRACKS = 0.15  # the share of clean training images given a drawn hairline and labelled cracked (batches.py)
SURE_CANDIDATES = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]  # crack probabilities tried as "sure" (see calibrate)
SITE_THRESHOLDS = [round(0.05 * i, 2) for i in range(2, 19)]  # crack thresholds tried on a site (site_threshold)
MIN_SITE_CHECKS = 20  # validation images of each class a site needs before its threshold is chosen on them
# Straight lines (see straight_lines), in tile sides: a joint or an edge runs straight over a tile and
# a half; a crack rarely does. Gaps of up to half a tile are bridged, segments under a quarter are
# grain, and a line is taken out with 3 model pixels (11 photo pixels) either side.
LINE_MIN_TILES, LINE_GAP_TILES, LINE_PIECE_TILES, LINE_STRIP_TILES = 1.5, 0.5, 0.25, 3 / 64
LIMITS = ("The model points where to look; it does not diagnose: it learned bare concrete photographed at phone "
          "scale, reads straight joints, grout and edges as cracks, misses fine cracks on other surfaces, and a "
          "person on site decides (README, Limits).")


def is_crack_model(info):
    """Whether a model (its info, or a cache's meta.json) tells cracks from clean concrete; older models
    say so by their class names."""
    return info.get("crack_model", info["class_names"] == CRACK_CLASSES)


def crack_rules(info, threshold, sure_threshold):
    """The crack model's rules, as verdicts.VerdictRule's fields, for its info; {} for any other model."""
    if not is_crack_model(info):
        return {}
    counted = "counted, and the share of the photo they cover."
    return {
        "crack_model": True, "sure_threshold": max(threshold, sure_threshold),
        "tile": info.get("patch_size", PATCH_SIZE),  # the dataset's patch unless trained on others
        "verdicts": ["crack", "uncertain", "no crack"], "labels": ["no crack", "crack"],
        "flagged": ("Flagged tiles", f"the tiles whose crack probability reaches the threshold ({threshold}), "
                                     f"{counted} It says how much of the photo to look at, not how large a crack "
                                     "is: a tile with a hairline counts whole."),
        "report_title": "Crack report", "limits": LIMITS, "model_line": f"threshold {threshold}",
        "columns": ["crack_probability", "verdict", "reason", "tiles", "cracked_tiles", "cracked_share",
                    "straight_line_tiles"],  # kept as they were before other classes
        "tile_probabilities": ["probability", "probability_with_straight_lines"],
        "mapped": CRACK_CLASSES[1], "probability_labels": {CRACK_CLASSES[1]: "p(crack)"},
        "judge": judge, "csv_values": csv_values, "tile_values": tile_values, "summary": summary,
        "set_aside": set_aside_lines, "counts_patches": True, "look_first": look_first, "figure_lines": 2,
        "scale": scale_line, "draws_cracks": True, "small_folders": False, "calibrate": calibrate,
        "feature_statistics": False,  # its texture floor tells what it does not know (smooth_below)
    }


# ----------------------------------------------------------------------------------------------
# Its verdicts, and how they are told


def judge_cracks(probabilities, smooth, rule):
    """(verdict, reason) for an image from its tiles' crack probabilities and which tiles are smoother
    than the model's texture floor (images.smoother_than).

    "crack" needs a tile at or above the model's sure threshold, where its validation calls were
    99.9% right; a tile between the threshold and that is weak evidence. And when most of the
    image is smoother than 99.5% of the training images, the model is outside what it learned,
    so its alarms there are "uncertain" too. Both limits are measured by train.py (calibrate).
    """
    if not np.any(probabilities >= rule.threshold):
        return "no crack", ""
    smooth_share = float(np.mean(smooth))
    if smooth_share >= UNFAMILIAR_SHARE:
        return "uncertain", (f"{smooth_share:.0%} of the image is smoother than 99.5% of the training images: a painted "
                             "surface, or photographed far closer than the dataset (a larger --tile may help)")
    if probabilities.max() < rule.sure_threshold:
        return "uncertain", f"weak evidence: no tile reaches {rule.sure_threshold:.2f}, the model's sure threshold"
    return "crack", ""


def judge(probs, smooth, rule, far, set_aside):
    """VerdictRule.judge: the tiles at or above the threshold are flagged, whatever the verdict; `far` is
    not used (the texture floor is its measure), `set_aside` counts the tiles only straight lines fired."""
    verdict, reason = judge_cracks(probs[:, 1], smooth, rule)
    return verdict, reason, 1, probs[:, 1] >= rule.threshold, {"straight_line_tiles": set_aside}


def csv_values(result):
    return [cut(result.probability, 5), result.verdict, result.reason, result.tiles,
            result.flagged, f"{result.share:.4f}", result.straight_line_tiles]


def tile_values(counted, seen):
    return [cut(counted[1], 5), cut(seen[1], 5)]


def summary(result):
    if result.tiles == 1:
        return f"crack probability {cut(result.probability)}", []
    more = [f"flagged tiles: {result.flagged} of {result.tiles} ({percent(result.share)} of the photo)"]
    if result.straight_line_tiles:
        more.append(f"{result.straight_line_tiles} more fired only on long straight lines (joints, "
                    "edges): not counted")
    return f"highest tile probability {cut(result.probability)}", more


def look_first(rows, scored):
    """The report's photos to look at first: the strongest evidence first."""
    return ("Look first at (the strongest evidence first: the highest tile probability, then the fewest flagged "
            "tiles, as a photo flagged all over is more often joints or texture)",
            sorted((i for i in scored if rows[i]["verdict"] != "no crack"),  # as shown: beyond 3 decimals is noise
                   key=lambda i: (-float(cut(rows[i]["probability"])), rows[i].get("share") or 0)))


def scale_line(tile, size):
    """VerdictRule.scale: the report's line on how photos reach the model; a crack under a model pixel fades."""
    if not tile:
        return "images classified whole"
    return any_model_scale_line(tile, size) + (f": a crack under {tile / size:.1f} px wide fades; for finer cracks, "
                                               "a smaller --tile (about 32 times their width)" if tile > size else "")


# ----------------------------------------------------------------------------------------------
# Long straight lines: joints and edges are not cracks


def set_aside_lines(resized, corners, size, seen, rule, classify):
    """VerdictRule.set_aside: (the tiles' probabilities that count, the lines set aside at model scale,
    how many tiles fired only on them).

    A tile that fires only because of a long straight line (see straight_lines) does not count: its
    crack probability becomes that of the tile with the lines taken out (without_straight_lines), if
    lower. `classify` gives the probabilities of a list of tiles."""
    counted, used = seen.copy(), np.zeros((0, 4), np.float32)
    fired = seen[:, 1] >= rule.threshold
    lines = straight_lines(resized, size) if fired.any() else used
    crossing = {}  # fired tile -> the lines through it
    for i in np.flatnonzero(fired):
        through = [line for line in lines if crosses(line, corners[i], size)]
        if through:
            crossing[i] = np.array(through)
    if crossing:
        crossed = list(crossing)
        line_free = classify([without_straight_lines(resized, corners[i], crossing[i], size) for i in crossed])
        counted[crossed] = np.where(line_free[:, 1:] < seen[crossed, 1:], line_free, seen[crossed])  # never add one
        used = np.unique(np.concatenate(list(crossing.values())), axis=0)
    return counted, used, int(np.sum(fired & (counted[:, 1] < rule.threshold)))


def straight_lines(resized, size):
    """The long straight lines of a photo at model scale, (N, 4) as x1, y1, x2, y2: joints, edges of
    slabs and frames, photo borders. The network calls any dark line a crack; these are not.

    OpenCV's line segment detector finds straight edges with no threshold to tune (it keeps a
    segment only where its pixels line up beyond chance). A probabilistic Hough transform proposes
    the lines on which segments lie, across short gaps (moss, a stain, a crossing joint), at least
    LINE_MIN_TILES tiles long; a line is kept where segments running along it cover half its
    length. A crack's edge turns every few pixels: its segments are short, point every way, and do
    not add up to such a line. A joint may be found more than once (its two edges): harmless.
    """
    grey = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
    segments = cv2.createLineSegmentDetector().detect(grey)[0]
    segments = np.zeros((0, 4), np.float32) if segments is None else segments.reshape(-1, 4)
    segments = segments[np.hypot(*(segments[:, 2:] - segments[:, :2]).T) >= LINE_PIECE_TILES * size]  # shorter: grain
    pieces = np.zeros_like(grey)
    for x1, y1, x2, y2 in np.round(segments).astype(int):
        cv2.line(pieces, (x1, y1), (x2, y2), 255, 2)  # 2 px wide: pieces a pixel off one line still vote for it
    length = round(LINE_MIN_TILES * size)
    proposed = cv2.HoughLinesP(pieces, 1, np.pi / 360, threshold=round(0.6 * length), minLineLength=length,
                               maxLineGap=round(LINE_GAP_TILES * size))
    proposed = np.zeros((0, 4), np.float32) if proposed is None else proposed.reshape(-1, 4).astype(np.float32)
    return np.array([line for line in proposed if share_along(segments, line) >= 0.5], np.float32).reshape(-1, 4)


def share_along(segments, line):
    """The share of a line's length that segments running along it cover (a joint's two edges count twice)."""
    along = running_along(segments, line)
    return np.hypot(*(segments[along, 2:] - segments[along, :2]).T).sum() / np.hypot(*(line[2:] - line[:2]))


def running_along(segments, line, tolerance=2.0):
    """Which segments run along a line: parallel within 5 degrees, their middles within `tolerance`
    pixels of it and not beyond its ends."""
    start, end = line[:2], line[2:]
    length = np.hypot(*(end - start))
    unit = (end - start) / length
    normal = np.array([-unit[1], unit[0]])
    directions = segments[:, 2:] - segments[:, :2]
    middles = (segments[:, :2] + segments[:, 2:]) / 2 - start
    return ((np.abs(directions @ unit) >= np.cos(np.radians(5)) * np.hypot(*directions.T))
            & (np.abs(middles @ normal) <= tolerance)
            & (middles @ unit >= -tolerance) & (middles @ unit <= length + tolerance))


def crosses(line, corner, size):
    """Whether a line (x1, y1, x2, y2) passes through the size x size tile at corner (x, y)."""
    x1, y1, x2, y2 = (round(float(v)) for v in line)
    return cv2.clipLine((int(corner[0]), int(corner[1]), size, size), (x1, y1), (x2, y2))[0]


def without_straight_lines(resized, corner, lines, size):
    """The tile at `corner` with the straight lines through it taken out: whatever lies beyond a line,
    seen from the tile's centre, is replaced by the mirror image of the near side, the line itself
    and LINE_STRIP_TILES on either side included. A joint, an edge or a band along the border is
    gone; a crack on the near side stays, and one on the far side is seen by a neighbouring tile
    (tiles overlap by half).
    """
    strip = LINE_STRIP_TILES * size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    px, py = xs + corner[0], ys + corner[1]
    centre = corner + size / 2
    for _ in range(2):  # a pixel mirrored over one line may land beyond another where joints cross
        for line in lines:
            start, end = line[:2], line[2:]
            length = np.hypot(*(end - start))
            along_unit = (end - start) / length
            normal = np.array([-along_unit[1], along_unit[0]])
            side = 1 if (centre - start) @ normal >= 0 else -1
            distance = side * ((px - start[0]) * normal[0] + (py - start[1]) * normal[1])  # > 0: near side
            along = (px - start[0]) * along_unit[0] + (py - start[1]) * along_unit[1]
            beyond = (distance < strip) & (along > -strip) & (along < length + strip)
            shift = np.where(beyond, 2 * (strip - distance) * side, 0)  # mirrored over the strip's near edge
            px, py = px + shift * normal[0], py + shift * normal[1]
    return cv2.remap(resized, px.astype(np.float32), py.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


# ----------------------------------------------------------------------------------------------
# How sure it can be (train.py)


def calibrate(val_probs, val_y, threshold=0.5, val_sources=None):
    """VerdictRule.calibrate: the crack threshold (chosen on a site's validation images when fine-tuned
    with one, val_sources given: site_threshold) and the sure threshold, the lowest crack probability
    from which the validation split's crack calls are at least 99.9% right (thousands of validation
    images can show that). Below it, predict says "uncertain"."""
    calls, right = val_probs[:, 1], val_y == 1
    if val_sources is not None:
        threshold = site_threshold(calls, val_y, np.asarray(val_sources), threshold)
        # "sure" as the bundled model's is: on the dataset. A site's own false alarms left in its validation
        # tiles made it 0.99, and every crack photo of the site uncertain (docs/EXPERIMENTS.md, "Verdicts").
        calls, right = calls[np.asarray(val_sources) == 0], right[np.asarray(val_sources) == 0]
    sure = next((t for t in SURE_CANDIDATES if np.sum((calls >= t) & right) >= 0.999 * np.sum(calls >= t)),
                SURE_CANDIDATES[-1])
    return {"threshold": threshold, "sure_threshold": max(sure, threshold)}


def site_threshold(crack_probs, labels, sources, threshold=0.5):
    """The crack threshold at which the validation images are best told apart, each source and
    each class weighing the same (the mean of their recalls), or `threshold` when a site (a source
    after the first) has fewer than MIN_SITE_CHECKS validation images of a class.

    Fine-tuning on a site ranks its tiles well long before its thin cracks reach 0.5: on the road
    and drone sites most missed cracks sat between 0.1 and 0.5 (docs/EXPERIMENTS.md, "Correcting it
    on a site"). The dataset's own images read the same from 0.1 to 0.9, so the site decides.
    """
    site = sources > 0
    if any(np.sum(site & (labels == label)) < MIN_SITE_CHECKS for label in (0, 1)):
        return threshold

    def balanced_accuracy(t):
        recalls = [np.mean((crack_probs[(sources == s) & (labels == label)] >= t) == label)
                   for s in np.unique(sources) for label in (0, 1) if np.any((sources == s) & (labels == label))]
        return np.mean(recalls)

    scores = {t: balanced_accuracy(t) for t in [threshold, *SITE_THRESHOLDS]}
    best = max(scores.values())
    chosen = min((t for t, score in scores.items() if score == best), key=lambda t: abs(t - threshold))
    print(f"threshold {chosen:.2f}, chosen on the validation images of every source: crack and no crack recall "
          f"{best:.1%} on average ({scores[threshold]:.1%} at {threshold})")
    return chosen


# ----------------------------------------------------------------------------------------------
# Its classes by other names (data_prep.py's sources)


def classes_named(names):
    """Özgenel's pair when every name is one of the crack model's (crack, no crack, Positive, Negative, in
    any letter case), so that "crack" beside "stain" stays "crack"; else None."""
    crack_names = set(ALIASES) | {name.lower() for name in CRACK_CLASSES}
    return CRACK_CLASSES if {name.lower() for name in names} <= crack_names else None
