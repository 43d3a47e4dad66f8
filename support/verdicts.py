"""What a verdict is and how it is told: a model's kind (VerdictRule, built once from its info by
verdict_rule), the verdict an image's tiles give (image_result, a Result), and the words, columns and
cut probabilities that tell it.

Written for a model of any classes: its verdict is the class most of its sure tiles show, or
uncertain (judge_classes), told by its class names. A crack model's rules (crack / uncertain / no
crack, straight lines set aside, its own columns) are support/crack_rules.py's, put in place of
these by verdict_rule. The terminal, the CSVs, the figures and the report all tell a verdict from
here, so that they say the same; how a photo is cut into the tiles behind it is photos.py's.
"""

import dataclasses
from typing import Callable

import numpy as np

from support import calibration
from support.crack_rules import crack_rules
from support.model_files import CRACK_CLASSES, predicted_classes
from support.unfamiliar import UNFAMILIAR_SHARE
from support.wording import cut, percent, scale_line

LIMITS = ("The model points where to look; it does not diagnose: it knows only the classes and surfaces it "
          "was trained on, and a person on site decides.")


@dataclasses.dataclass(frozen=True)
class VerdictRule:
    """A model's kind: its classes and limits, how its verdicts are reached and told, how predict reads
    a photo for it and train.py trains it. verdict_rule builds one per model from its info: the values
    below for any model, a crack model's own where it has them (support/crack_rules.py)."""
    class_names: tuple
    crack_model: bool  # saved in the model's info under this key
    threshold: float  # two classes: the second class's probability from which it is called
    sure_threshold: float  # a verdict below it is uncertain
    smooth_below: float  # the texture floor (images.smoother_than)
    tile: int  # predict's default tile in photo pixels; 0: images whole, as data_prep read them
    # How its verdicts are reached and told (the terminal, the CSVs, the figures, the report)
    verdicts: list  # every verdict, in the order they are counted
    labels: list  # what a tile of each class is called where a person reads it: the report's marks
    flagged: tuple  # (name, what they are) of the tiles a result counts ("flagged" and "share" of image_result)
    report_title: str
    limits: str  # what the model cannot tell, said in the report's summary
    model_line: str  # what predict's line about the model says of its limits
    columns: list  # predict --csv's columns between the path and a comparison (csv_columns)
    tile_probabilities: list  # predict --tiles-csv's columns after a tile's box (tile_columns)
    mapped: str | None  # the class whose probability a figure maps unless --map-class says; None: the verdict's
    probability_labels: dict  # {class: its probability's name on a figure}, where not p(class)
    judge: Callable  # (probs, smooth, rule, far, set_aside) -> (verdict, reason, its column, flagged tiles, more)
    #   more: {field: value} of Result's fields for this kind of model (tile_classes, straight_line_tiles)
    csv_values: Callable  # Result -> the values of `columns`
    tile_values: Callable  # (counted, seen) -> a tile's values of `tile_probabilities`
    summary: Callable  # Result -> (the main measure, [further phrases]): predict's line, a figure's banner
    # How predict reads a photo, and the report tells it
    set_aside: Callable  # (photo at model scale, tile corners, size, seen, rule, classify) -> (counted, lines, count)
    counts_patches: bool  # whether an image classified whole is one tile counted (flagged, share)
    look_first: Callable  # (report rows, those with a probability) -> (heading, rows to look at first)
    figure_lines: int  # how many of figures.FIGURE_LINES its figures draw, for the report's legend
    scale: Callable  # (tile, model input size) -> the report's line on how photos reach the model
    # How train.py trains and calibrates it
    draws_cracks: bool  # from scratch, photos in other light and drawn hairlines by default (--capture, --thin-cracks)
    small_folders: bool  # its classes come in a few hundred images: it trains at least train.MIN_STEPS steps
    calibrate: Callable  # (val_probs, val_y, threshold, val_sources) -> {"threshold", "sure_threshold", ...}
    feature_statistics: bool  # whether inputs of no class are told by their features (support/unfamiliar.py)

    def csv_columns(self, compared=False):
        """predict --csv's columns."""
        before = ["verdict_before", "probability_before", "changed"] if compared else []
        return ["path", *self.columns, *before, "figure", "error"]

    def tile_columns(self):
        """predict --tiles-csv's columns: a tile's box and probabilities."""
        return ["image", "x", "y", "width", "height", *self.tile_probabilities]

    def mapped_class(self, chosen, result):
        """The class whose probability a figure maps: --map-class, else the model's, else the verdict's class."""
        return chosen or self.mapped or result.flagged_class

    def probability_label(self, mapped):
        return self.probability_labels.get(mapped, f"p({mapped})")


@dataclasses.dataclass(frozen=True)
class Result:
    """An image's verdict and the figures that explain it (image_result): all that the terminal, the
    CSVs, a figure's banner and the report tell of it. Its probabilities are the highest of its tiles;
    a patch, or an image classified whole, is one tile."""
    verdict: str  # a class or "uncertain"; a crack model's own words (VerdictRule.verdicts)
    reason: str  # why it is uncertain; "" otherwise
    probability: float  # flagged_class's
    probabilities: dict  # {class: its probability}
    tiles: int
    flagged_class: str  # the verdict's class (the most common when uncertain); a crack model's Positive
    flagged: int  # the tiles flagged: those of flagged_class (a crack model's: at or above its threshold)
    share: float  # the share of the image they cover
    summary: tuple = None  # (the main measure, [further phrases]) of the fields above: VerdictRule.summary's
    tile_classes: dict = None  # a model of classes: {class: how many tiles are called it}
    straight_line_tiles: int = None  # a crack model: how many tiles fired only on long straight lines, not counted
    before: "Result" = None  # with predict --compare-with: the older model's, on the same image and tiles


def verdict_rule(info, threshold=None):
    """The VerdictRule of a model's info (or a cache's meta.json); `threshold` (--threshold) replaces its own."""
    names = tuple(info["class_names"])
    threshold = info.get("threshold", 0.5) if threshold is None else threshold
    sure = info.get("sure_threshold", threshold)  # none in a model saved before train.py calibrated its models
    # Its tile is that of the boxes it was trained on, 0 (whole images) if none; models saved before
    # train.py kept its recipe said 227 for every model, whatever it was trained on.
    rule = VerdictRule(
        class_names=names, crack_model=False, threshold=threshold, sure_threshold=sure,
        smooth_below=info.get("smooth_below", 0.0), tile=info.get("patch_size", 0) if "recipe" in info else 0,
        verdicts=[*names, "uncertain"], labels=list(names),
        flagged=("Tiles of its class",
                 "the tiles of the photo's class, counted, and the share of the photo they cover."),
        report_title=f"Report ({', '.join(names)})", limits=LIMITS, model_line=f"classes {', '.join(names)}",
        columns=["verdict", "reason", "probability", *(f"probability_{n}" for n in names), "tiles", "share"],
        tile_probabilities=[f"probability_{n}" for n in names], mapped=None, probability_labels={},
        judge=judge_by_class, csv_values=csv_values, tile_values=tile_values, summary=summary_by_class,
        set_aside=keep_every_tile, counts_patches=False, look_first=least_sure_first, figure_lines=1,
        scale=scale_line,
        draws_cracks=False, small_folders=True, calibrate=calibration.sure_calls, feature_statistics=True)
    return dataclasses.replace(rule, **crack_rules(info, threshold, sure))


def judge_by_class(probs, smooth, rule, far, set_aside):
    """VerdictRule.judge: the tiles of the verdict's class are flagged (of the most common class when
    uncertain); nothing is set aside."""
    names = rule.class_names
    verdict, reason = judge_classes(probs, rule, smooth, far)
    predicted = predicted_classes(probs, rule.threshold)
    label = names.index(verdict) if verdict in names else int(np.bincount(predicted, minlength=len(names)).argmax())
    return verdict, reason, label, predicted == label, {
        "tile_classes": {name: int(np.sum(predicted == i)) for i, name in enumerate(names)}}


def csv_values(result):
    return [result.verdict, result.reason, cut(result.probability, 5),
            *(cut(p, 5) for p in result.probabilities.values()), result.tiles, f"{result.share:.4f}"]


def tile_values(counted, seen):
    return [cut(v, 5) for v in counted]


def summary_by_class(result):
    ranked = sorted(result.probabilities.items(), key=lambda item: -item[1])
    if result.tiles == 1:
        return ", ".join(f"{name} {cut(p)}" for name, p in ranked), []
    counts = ", ".join(f"{name} {n}" for name, n in sorted(result.tile_classes.items(), key=lambda i: -i[1]))
    return (f"highest {result.flagged_class} tile probability {cut(result.probability)}",
            [f"tiles by class: {counts} of {result.tiles}",
             f"{result.flagged_class} on {percent(result.share)} of the photo"])


def keep_every_tile(resized, corners, size, seen, rule, classify):
    """VerdictRule.set_aside: every tile counts as the model saw it."""
    return seen, np.zeros((0, 4)), 0


def least_sure_first(rows, scored):
    """The report's photos to look at first: a class is no alarm, the least sure verdicts are where a
    person is needed."""
    return "Least sure, to look at first", sorted(scored, key=lambda i: rows[i]["probability"])


def judge_classes(probs, rule, smooth=None, far=None):
    """(verdict, reason) for an image from its tiles' class probabilities (n tiles x classes).

    A tile is sure when its class's probability reaches the model's sure threshold, from which its
    validation calls were 99.5% right (train.py measures it: calibration.sure_cutoff). The verdict is
    the class most sure tiles show (for a patch: its class when sure); with no sure tile, it is uncertain.
    A tile unlike anything the model learned from is never sure, however high its probability: smoother
    than 99.5% of the training images (`smooth`), or `far` from them in the features the model's last
    layer reads (support/unfamiliar.py). Noise, a flat grey, a page of text are sure of some class
    otherwise. An image mostly of such tiles is uncertain for that reason.
    """
    smooth, far = (np.zeros(len(probs), bool) if flags is None else np.asarray(flags, bool) for flags in (smooth, far))
    unlike = smooth | far
    if unlike.mean() >= UNFAMILIAR_SHARE:
        return "uncertain", unlike_reason(smooth, far)
    predicted = predicted_classes(probs, rule.threshold)
    sure = (probs[np.arange(len(probs)), predicted] >= rule.sure_threshold) & ~unlike
    if not sure.any():
        where = "no tile reaches" if len(probs) > 1 else "below"
        return "uncertain", f"weak evidence: {where} {rule.sure_threshold:.2f}, the model's sure probability"
    return rule.class_names[np.bincount(predicted[sure], minlength=probs.shape[1]).argmax()], ""


def unlike_reason(smooth, far):
    """Why an image is unlike the training images: which of its tiles are, and how."""
    ways = list(filter(None, [smooth.any() and "smoother than 99.5% of them", far.any() and (
        "far from them in the features the model reads (farther than 99.5% of the validation images)")]))
    if len(smooth) == 1:
        return f"unlike the training images: {' and '.join(ways)}"
    return f"unlike the training images: {np.mean(smooth | far):.0%} of the tiles are {' or '.join(ways)}"


def image_result(probs, smooth, rule, image_shape=None, grid=None, set_aside=0, far=None):
    """The Result of one image from its tiles' probabilities (a patch: one tile, no grid); `smooth` and
    `far`: which tiles are unlike the training images (judge_classes, crack_rules.judge_cracks);
    `set_aside`: how many tiles fired only on what the model's rules set aside (photos.classify_photo).
    Its flagged tiles are those of the image's class, or at or above a crack model's threshold, and
    its share the part of the image they cover. Not an area of crack: a tile flagged for a hairline
    counts whole (README, "Flagged tiles")."""
    verdict, reason, label, flagged, more = rule.judge(probs, smooth, rule, far, set_aside)
    result = Result(verdict=verdict, reason=reason, probability=float(probs[:, label].max()),
                    probabilities=dict(zip(rule.class_names, probs.max(axis=0).tolist())), tiles=len(probs),
                    flagged_class=rule.class_names[label], flagged=int(flagged.sum()),
                    share=covered_share(image_shape, grid, flagged) if grid else float(flagged[0]), **more)
    return dataclasses.replace(result, summary=rule.summary(result))


def is_predict_header(header):
    """Whether a CSV's header is exactly one that predict writes (VerdictRule.csv_columns or tile_columns,
    for the crack model or for the classes the header names): only such a file is predict's to replace.
    A blank line, or a box file's `image,x,y,width,height,label`, is not."""
    names = tuple(column[len("probability_"):] for column in header if column.startswith("probability_")
                  and column not in ("probability_before", "probability_with_straight_lines"))
    rules = [verdict_rule({"class_names": CRACK_CLASSES})]
    if len(names) >= 2:
        rules.append(verdict_rule({"class_names": names, "crack_model": False}))
    return any(header in (rule.csv_columns(False), rule.csv_columns(True), rule.tile_columns()) for rule in rules)


# Changes of verdict from an older model to a newer (predict --compare-with), the worst first.
LOSSES = ["crack -> no crack", "crack -> uncertain", "uncertain -> no crack"]


def verdict_change(result):
    """'crack -> no crack' where the older model's verdict (result.before) differs, else ''."""
    before = result.before or result
    return f"{before.verdict} -> {result.verdict}" if before.verdict != result.verdict else ""


def change_rank(change):
    """Where a change of verdict (verdict_change) sorts: lost cracks first, then any other change."""
    return LOSSES.index(change) if change in LOSSES else len(LOSSES)


def banner(name, result):
    """The lines above a figure: the photo's name and verdict, the measure, why, and more."""
    main_measure, more = result.summary
    return [f"{name}: {result.verdict.upper()}, {main_measure}", *filter(None, [result.reason]), *more]


def covered_share(image_shape, grid, chosen):
    """Fraction of the photo covered by at least one chosen tile."""
    covered = np.zeros(image_shape[:2], bool)
    for (x, y, s), flag in zip(grid, chosen):
        if flag:
            covered[y:y + s, x:x + s] = True
    return float(covered.mean())
