"""What train.py prints by default, for a person who is not a programmer: what the marks did, which
were held back to check the model and why, and how the final check went, in a few lines.

The network's layer table, Keras's line per epoch and the test split's precision/recall tables are
held back (train.py --verbose prints them as they come); the few lines of them that a person acts on
(the threshold and "sure" cut-off chosen, how the marks read before and after) are said again.
"""

import contextlib
import io

import numpy as np

from support.inspection import last_part
from support.wording import percent

KEPT = ("threshold ", "sure from ", "sure threshold ", "unlike the training images ", "your site's ",
        "your verdicts: ")  # lines of the held output said again
FEW = 30  # test images under which an accuracy vouches for little (one image is 3 points or more)


class HeldOutput:
    """Standard output kept in memory from now until release() (nothing held with verbose)."""

    def __init__(self, verbose):
        self.verbose, self.buffer = verbose, io.StringIO()
        self.redirect = None if verbose else contextlib.redirect_stdout(self.buffer)
        if self.redirect:
            self.redirect.__enter__()

    def release(self):
        """Print to the terminal again; returns the held lines worth saying again."""
        if self.redirect:
            self.redirect.__exit__(None, None, None)
            self.redirect = None
        return [line for line in self.buffer.getvalue().splitlines() if line.startswith(KEPT)]


def hold_details(verbose):
    return HeldOutput(verbose)


def print_summary(held, report, data, meta):
    """The summary after training: the marks (a cache of several sources), the lines kept, the final check."""
    kept = held.release()
    lines = marks_lines(data, meta) if len(meta.get("sources") or []) > 1 else []
    print("\n".join(lines + ([] if held.verbose else kept) + test_lines(report, meta)))


def marks_lines(data, meta):
    """How many of the site's images (the sources after the first: your marks) were learnt from and how
    many held back to check the model, per class, naming the sources they came from. The tiles of photos
    given a verdict are not marks: support/bags.py tells of those photos."""
    sources, names, bags = meta["sources"], meta["class_names"], meta.get("bags", {})
    source_of = {split: np.array(meta["file_sources"][split], int) for split in ("train", "val", "test")}
    site = {split: (source_of[split] > 0) & (np.array(bags.get(split, -1)) < 0) for split in source_of}
    count = {split: int(mask.sum()) for split, mask in site.items()}
    total = sum(count.values())
    if not total:
        return []
    # named by the sources that gave them: a notes.csv gives verdicts, no marks
    marked = np.unique(np.concatenate([source_of[split][site[split]] for split in site]))
    named = ", ".join(last_part(sources[i]) for i in marked)
    per_class = ", ".join(
        f"{name} {int(np.sum(np.asarray(data['train'][1])[site['train']] == i))} of "
        f"{sum(int(np.sum(np.asarray(data[split][1])[site[split]] == i)) for split in site)}"
        for i, name in enumerate(names))
    return [f"your marks ({named}): {total} images, {count['train']} learnt from "
            f"({per_class}); {count['val'] + count['test']} held back, never learnt, to check the model on marks it "
            f"has not seen: {count['val']} to choose the best epoch (and the threshold), {count['test']} for the final "
            "check (data_prep holds back the same share of every source)"]


def test_lines(report, meta):
    """The final check on the test split, overall and on each site, with how little a few images tell."""
    images = report.get("images", 0)
    if not images:
        return ["final check: no test images were held back, so none was made"]
    lines = [f"final check on {images} test images it never learnt from: {right(report['accuracy'], images)}"]
    for name, source in list((report.get("per_source") or {}).items())[1:]:  # the dataset's is most of the above
        if source["images"]:
            lines.append(f"  of them from {last_part(name)}: {right(source['accuracy'], source['images'])}")
    return lines


def right(accuracy, images):
    correct = round(accuracy * images)
    return f"{correct} of {images} right ({percent(accuracy)})" + (
        f"; {images} images vouch for little: each is {100 / images:.0f} points" if images < FEW else "")
