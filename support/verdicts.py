"""What a verdict is and how it is told: a model's kind (VerdictRule, built from its info by
verdict_rule), the verdict an image's tiles give (image_result), and the words, columns and cut
probabilities that tell it.

A crack model's verdict is crack / uncertain / no crack (judge_cracks); any other model's is the
class most of its sure tiles show, or uncertain (judge_classes). The terminal, the CSVs, the
figures and the report all tell a verdict from here, so that they say the same; how a photo is cut
into the tiles behind it is photos.py's.
"""

from dataclasses import dataclass

import numpy as np

from support.model_files import CRACK_CLASSES, PATCH_SIZE, is_crack_model, predicted_classes

UNFAMILIAR_SHARE = 0.5  # an image mostly smoother than the training images is outside what the model knows


@dataclass(frozen=True)
class VerdictRule:
    """What kind of model gives the verdicts: its classes and limits, and how its results are told
    (words, CSV columns, tile folders, the figure's label). One is built per model by verdict_rule."""
    class_names: tuple
    crack_model: bool
    threshold: float  # two classes: the second class's probability from which it is called
    sure_threshold: float  # a verdict below it is uncertain
    smooth_below: float  # a crack model's texture floor (images.smoother_than)
    tile: int  # predict's default tile in photo pixels; 0: images whole, as data_prep read them

    @property
    def verdicts(self):
        """Every verdict, in the order they are counted (terminal, report)."""
        return ["crack", "uncertain", "no crack"] if self.crack_model else [*self.class_names, "uncertain"]

    @property
    def labels(self):
        """What a tile of each class is called where a person reads it: the report's marks and their labels."""
        return ["no crack", "crack"] if self.crack_model else list(self.class_names)

    @property
    def flagged(self):
        """(name, what they are) of the tiles a result counts ("flagged" and "share" of image_result)."""
        counted = "counted, and the share of the photo they cover."
        if self.crack_model:
            return "Flagged tiles", (f"the tiles whose crack probability reaches the threshold ({self.threshold}), "
                                     f"{counted} It says how much of the photo to look at, not how large a crack "
                                     "is: a tile with a hairline counts whole.")
        return "Tiles of its class", f"the tiles of the photo's class, {counted}"

    @property
    def report_title(self):
        return "Crack report" if self.crack_model else f"Report ({', '.join(self.class_names)})"

    @property
    def limits(self):
        """What the model cannot tell, said in the report's summary."""
        if self.crack_model:
            return ("The model points where to look; it does not diagnose: it learned bare concrete photographed at "
                    "phone scale, reads straight joints, grout and edges as cracks, misses fine cracks on other "
                    "surfaces, and a person on site decides (README, Limits).")
        return ("The model points where to look; it does not diagnose: it knows only the classes and surfaces it "
                "was trained on, and a person on site decides.")

    def mapped_class(self, chosen, result):
        """The class whose probability a figure maps: --map-class, else cracks, else the verdict's class."""
        return chosen or (CRACK_CLASSES[1] if self.crack_model else result["class"])

    def probability_label(self, mapped):
        return "p(crack)" if self.crack_model and mapped == CRACK_CLASSES[1] else f"p({mapped})"

    def csv_columns(self, compared=False):
        """predict --csv's columns: the crack model's (kept as they were), or a probability a class."""
        before = ["verdict_before", "probability_before", "changed"] if compared else []
        if self.crack_model:
            return ["path", "crack_probability", "verdict", "reason", "tiles", "cracked_tiles", "cracked_share",
                    "straight_line_tiles", *before, "figure", "error"]
        return ["path", "verdict", "reason", "probability", *(f"probability_{n}" for n in self.class_names),
                "tiles", "share", *before, "figure", "error"]

    def csv_values(self, result):
        """The columns of a result between path and the comparison, as csv_columns names them."""
        if self.crack_model:
            return [cut(result["probability"], 5), result["verdict"], result["reason"], result["tiles"],
                    result["flagged"], f"{result['share']:.4f}", result["straight_line_tiles"]]
        return [result["verdict"], result["reason"], cut(result["probability"], 5),
                *(cut(p, 5) for p in result["probabilities"].values()), result["tiles"], f"{result['share']:.4f}"]

    def tile_columns(self):
        """predict --tiles-csv's columns: a tile's box and probabilities."""
        extra = (["probability", "probability_with_straight_lines"] if self.crack_model
                 else [f"probability_{n}" for n in self.class_names])
        return ["image", "x", "y", "width", "height", *extra]

    def tile_values(self, counted, seen):
        """A tile's probabilities as tile_columns names them: what counted (and, for cracks, what the model saw)."""
        return [cut(counted[1], 5), cut(seen[1], 5)] if self.crack_model else [cut(v, 5) for v in counted]

    def summary(self, result):
        """(the main measure, [further phrases]) of a result, for predict's line and its figure's banner."""
        if self.crack_model:
            if result["tiles"] == 1:
                return f"crack probability {cut(result['probability'])}", []
            more = [f"flagged tiles: {result['flagged']} of {result['tiles']} ({percent(result['share'])} of the photo)"]
            if result["straight_line_tiles"]:
                more.append(f"{result['straight_line_tiles']} more fired only on long straight lines (joints, "
                            "edges): not counted")
            return f"highest tile probability {cut(result['probability'])}", more
        ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])
        if result["tiles"] == 1:
            return ", ".join(f"{name} {cut(p)}" for name, p in ranked), []
        counts = ", ".join(f"{name} {n}" for name, n in sorted(result["tile_classes"].items(), key=lambda i: -i[1]))
        return (f"highest {result['class']} tile probability {cut(result['probability'])}",
                [f"tiles by class: {counts} of {result['tiles']}",
                 f"{result['class']} on {percent(result['share'])} of the photo"])


def verdict_rule(info, threshold=None):
    """The VerdictRule of a model's info; `threshold` (--threshold) replaces its own."""
    threshold = info.get("threshold", 0.5) if threshold is None else threshold
    crack_model = is_crack_model(info)
    # A model saved before train.py calibrated its models has no sure threshold or texture floor.
    sure = info.get("sure_threshold", threshold)
    # Another model's tile is that of the boxes it was trained on, 0 (whole images) if none; models saved
    # before train.py kept its recipe said 227 for every model, whatever it was trained on.
    tile = info.get("patch_size", PATCH_SIZE) if crack_model else info.get("patch_size", 0) if "recipe" in info else 0
    return VerdictRule(tuple(info["class_names"]), crack_model, threshold,
                       max(threshold, sure) if crack_model else sure, info.get("smooth_below", 0.0), tile)


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


def judge_classes(probs, rule, smooth=None, far=None):
    """(verdict, reason) for an image from its tiles' class probabilities (n tiles x classes).

    A tile is sure when its class's probability reaches the model's sure threshold, from which its
    validation calls were 99.5% right (train.py measures it: evaluation.sure_cutoff). The verdict is
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


def image_result(probs, smooth, rule, image_shape=None, grid=None, fired_on_lines=0, far=None):
    """The verdict and the figures that explain it, for one image from its tiles' probabilities
    (a patch: one tile, no grid); `smooth` and `far`: which tiles are unlike the training images
    (judge_cracks, judge_classes). "flagged" and "share": the tiles at or above a crack model's
    threshold, or of the image's class, and the share of the image they cover. Not an area of crack:
    a tile flagged for a hairline counts whole (README, "Flagged tiles")."""
    names = rule.class_names
    result = {"tiles": len(probs), "probabilities": dict(zip(names, probs.max(axis=0).tolist()))}
    if rule.crack_model:
        verdict, reason = judge_cracks(probs[:, 1], smooth, rule)
        flagged, label = probs[:, 1] >= rule.threshold, 1
        result |= {"straight_line_tiles": fired_on_lines}
    else:
        verdict, reason = judge_classes(probs, rule, smooth, far)
        predicted = predicted_classes(probs, rule.threshold)
        label = names.index(verdict) if verdict in names else int(np.bincount(predicted, minlength=len(names)).argmax())
        flagged = predicted == label
        result |= {"class": names[label], "tile_classes": {name: int(np.sum(predicted == i)) for i, name in enumerate(names)}}
    share = covered_share(image_shape, grid, flagged) if grid else float(flagged[0])
    result |= {"verdict": verdict, "reason": reason, "probability": float(probs[:, label].max()),
               "flagged": int(flagged.sum()), "share": share}
    return result | {"summary": rule.summary(result)}


def is_predict_header(header):
    """Whether a CSV's header is exactly one that predict writes (VerdictRule.csv_columns or tile_columns,
    for the crack model or for the classes the header names): only such a file is predict's to replace.
    A blank line, or a box file's `image,x,y,width,height,label`, is not."""
    names = tuple(column[len("probability_"):] for column in header if column.startswith("probability_")
                  and column not in ("probability_before", "probability_with_straight_lines"))
    rules = [VerdictRule(tuple(CRACK_CLASSES), True, 0.5, 0.5, 0.0, PATCH_SIZE)]
    if len(names) >= 2:
        rules.append(VerdictRule(names, False, 0.5, 0.5, 0.0, 0))
    return any(header in (rule.csv_columns(False), rule.csv_columns(True), rule.tile_columns()) for rule in rules)


# Changes of verdict from an older model to a newer (predict --compare-with), the worst first.
LOSSES = ["crack -> no crack", "crack -> uncertain", "uncertain -> no crack"]


def verdict_change(result):
    """'crack -> no crack' where the older model's verdict (result["before"]) differs, else ''."""
    before = result.get("before") or result
    return f"{before['verdict']} -> {result['verdict']}" if before["verdict"] != result["verdict"] else ""


def change_rank(result):
    """Where a change of verdict sorts: lost cracks first, then any other change."""
    change = verdict_change(result)
    return LOSSES.index(change) if change in LOSSES else len(LOSSES)


def cut(p, decimals=3):
    """A probability as text, cut rather than rounded: 0.98968 is not shown as 0.990, which would
    seem to reach a 0.99 threshold that it missed. The one cutting of the terminal, the CSVs (to 5
    decimals, whose first 3 are then what the figure and the report show), figures and report."""
    scale = 10 ** decimals
    return f"{np.floor((p + 1e-9) * scale) / scale:.{decimals}f}"  # 1e-9: 0.29 * 1000 is 289.99999999999997


def percent(share, decimals=1):
    """A share as a percentage, cut rather than rounded, like cut(): 44 tiles of 45 or 99.96% of a photo is
    not 100.0%; and a share above nothing is not 0.0% either, but "<0.1%"."""
    if 0 < share < 10 ** -(decimals + 2):
        return f"<{10 ** -decimals:.{decimals}f}%"
    return f"{cut(min(share, 1) * 100, decimals)}%"


def banner(name, result):
    """The lines above a figure: the photo's name and verdict, the measure, why, and more."""
    main_measure, more = summary(result)
    return [f"{name}: {result['verdict'].upper()}, {main_measure}", *filter(None, [result["reason"]]), *more]


def summary(result):
    """(the main measure, [further phrases]) of a result, as its model's kind words it (VerdictRule.summary)."""
    return result["summary"]


def covered_share(image_shape, grid, chosen):
    """Fraction of the photo covered by at least one chosen tile."""
    covered = np.zeros(image_shape[:2], bool)
    for (x, y, s), flag in zip(grid, chosen):
        if flag:
            covered[y:y + s, x:x + s] = True
    return float(covered.mean())
