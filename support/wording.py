"""How a verdict's numbers, and the way photos reach the model, are written: the same for a model of
any classes (support/verdicts.py) and for a crack model (support/crack_rules.py)."""

import numpy as np


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


def scale_line(tile, size):
    """VerdictRule.scale: the report's line on how photos reach the model."""
    if not tile:
        return f"images classified whole, each shrunk to {size} px as data_prep shrank the training images"
    return f"photos cut into tiles of {tile} px, each shrunk to {size} px for the model"
