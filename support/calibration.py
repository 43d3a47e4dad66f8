"""How sure a model can be, measured by train.py on its own data and saved in its info, which
predict.py uses to say "uncertain": the top probability from which its validation calls are right
enough (sure_calls), and the texture below which an image is unlike its training images (texture_floor).
A crack model is sure by a rule of its own (support/crack_rules.py, calibrate).
"""

import math

import numpy as np

from support.images import surface_texture
from support.model_files import predicted_classes

GENERIC_CANDIDATES = [round(0.5 + 0.01 * i, 2) for i in range(50)]  # top probabilities tried as "sure"
SURE_ERROR = 0.005  # the share of sure calls that may be wrong on validation (see sure_cutoff)


def sure_calls(val_probs, val_y, threshold=0.5, val_sources=None):
    """VerdictRule.calibrate for any model: `threshold` kept, and the sure threshold sure_cutoff chooses,
    with what it leaves uncertain in `sure_calls`; what "uncertain" will cost is said (printed) before the
    test figures. Below it, predict says "uncertain"."""
    calibration = sure_cutoff(val_probs.max(axis=1), predicted_classes(val_probs, threshold) == val_y)
    print(describe_sure_calls(calibration))
    return {"threshold": threshold, **calibration}


def texture_floor(train_x):
    """The texture 99.5% of the training images exceed (images.surface_texture), read 4,096 at a time."""
    texture = np.concatenate([surface_texture(np.asarray(train_x[i:i + 4096])) for i in range(0, len(train_x), 4096)])
    return round(float(np.percentile(texture, 0.5)), 3)


def sure_cutoff(top, right, target=SURE_ERROR):
    """The lowest top probability from which at most `target` of the validation calls are wrong;
    the highest candidate if none is.

    A few hundred validation images cannot show 99.9%: asking for it made 0.99 the cut-off of most
    models of other classes, and left right answers uncertain (docs/EXPERIMENTS.md, "The 'sure'
    cut-off of other classes"). At 0.5% a sample under 200 sure calls must have no error at all,
    so a tiny validation split falls back to the strict rule by itself. What the sample can vouch
    for is said beside it: the sure calls' accuracy and its one-sided 95% lower bound.
    """
    top, right = np.asarray(top), np.asarray(right, bool)
    cut = next((t for t in GENERIC_CANDIDATES
                if 0 < np.sum(top >= t) and np.sum(~right & (top >= t)) <= target * np.sum(top >= t)),
               GENERIC_CANDIDATES[-1])
    sure = top >= cut
    n, k = int(sure.sum()), int(np.sum(sure & ~right))
    return {"sure_threshold": float(cut), "sure_calls": {
        "target_error": target, "validation_images": len(top), "uncertain_share": round(1 - n / max(len(top), 1), 4),
        "accuracy": round(1 - k / n, 4) if n else None, "accuracy_lower_95": round(1 - error_upper_bound(k, n), 4)}}


def error_upper_bound(errors, n, confidence=0.95):
    """One-sided Clopper-Pearson upper bound on an error rate after `errors` in `n` trials."""
    if errors >= n:
        return 1.0
    low, high = errors / n, 1.0
    for _ in range(50):  # bisection: the chance of seeing so few errors falls as the rate rises
        mid = (low + high) / 2
        low, high = (mid, high) if binomial_cdf(errors, n, mid) > 1 - confidence else (low, mid)
    return high


def binomial_cdf(k, n, p):
    """The chance of at most k errors in n trials at error rate p (in logs: n may be thousands)."""
    log_q = math.log1p(-p)
    return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
                        + (n - i) * log_q) for i in range(k + 1)) if p > 0 else 1.0


def describe_sure_calls(calibration):
    """One line for train.py: the chosen cut-off and what it means on the validation split."""
    sure, cut = calibration["sure_calls"], calibration["sure_threshold"]
    if sure["accuracy"] is None:
        return f"sure from top probability {cut:.2f}: no validation image reaches it, every verdict will be uncertain"
    missed = (f"; no cut-off kept {1 - sure['target_error']:.1%} of them right, so the strictest is used"
              if sure["accuracy"] < 1 - sure["target_error"] else "")
    return (f"sure from top probability {cut:.2f}: {sure['uncertain_share']:.1%} of the {sure['validation_images']} "
            f"validation images left uncertain, the sure ones {sure['accuracy']:.1%} right (at least "
            f"{sure['accuracy_lower_95']:.1%} with 95% confidence: a larger validation split tells more){missed}")
