"""The photos an inspector reviewed, as train.py learns from them and keeps them: bags of tiles.

support/notes.py cuts each photo given a verdict into predict's tiles (meta.json's "bags" names each
training and validation row's photo; some photos of each verdict are set aside for validation). A photo called crack says that some tile of it holds a crack, not which:
fine-tuning learns from its PER_PHOTO tiles that the model finds most crack-like, chosen by the
starting model and again by the model being trained after every epoch (multiple-instance learning:
as the clean photos teach what a joint is, a crack photo's most crack-like tiles move from its joints
to its crack), repeated to weigh as much as the clean photos' tiles, and leaves the others out, since
most tiles of a cracked photo show sound concrete. A
photo called no crack teaches through all its tiles: learning from the flagged ones alone let a road
site, where the model missed cracks, call every clean photo crack (docs/EXPERIMENTS.md). A model
trained from scratch has no guide: it learns from the clean photos and leaves the crack photos out.

After every epoch the crack photos, those learnt from and those set aside, are read as predict reads
a photo, by its most crack-like tile, and the epoch kept is the best one (validation loss) among those
that keep the most of them crack; train.py names any photo it could not keep, and says how many of
those set aside it kept: what to expect of the photos no one reviewed.
"""

import dataclasses

import numpy as np

from support.batches import predict_probabilities
from support.model_files import read_model_info
from support.tf_import import keras

PER_PHOTO = 2  # tiles learnt from each photo reviewed, at least (docs/EXPERIMENTS.md, "Verdicts per photo")
# After each epoch a crack photo is read by the READ_PER_PHOTO tiles the starting model finds most
# crack-like, not by all (a 12 MP photo has 850 at 227 px): its crack is among them.
READ_PER_PHOTO = 32
LOST_PHOTO_PENALTY = 1.0  # added to the validation loss per photo lost: more than any loss difference


@dataclasses.dataclass
class CrackPhotos:
    """The photos the inspector called crack: the tiles of each read after every epoch (READ_PER_PHOTO)."""
    names: list  # photo paths
    tiles: np.ndarray  # those tiles of every such photo (n x size x size x 3 uint8)
    photo: np.ndarray  # each tile's photo (index into names)
    crack_before: np.ndarray  # whether the starting model read each photo as crack (at its sure threshold)
    held: np.ndarray  # whether each photo was set aside for validation (data_prep), not learnt from
    slots: np.ndarray = None  # the training split's rows that hold the learnt photos' most crack-like tiles
    train_x: np.ndarray = None  # the training split's images, in memory: relearn() rewrites the slots' rows

    def highest(self, probabilities):
        """Each photo's highest crack probability, from its tiles' (as predict's verdict reads a photo)."""
        return highest_per_photo(probabilities, self.photo, len(self.names))

    def read(self, model):
        """Each photo's highest crack probability by the model: how predict would read it."""
        return self.highest(predict_probabilities(model, self.tiles)[:, -1])

    def relearn(self, probabilities):
        """Put each learnt photo's most crack-like tiles, by these probabilities, into its training rows."""
        learnt = np.flatnonzero(~self.held[self.photo])
        chosen = self.tiles[learnt[most_crack_like(probabilities[learnt], self.photo[learnt])]]
        self.train_x[self.slots] = np.repeat(chosen, len(self.slots) // len(chosen), axis=0)


@dataclasses.dataclass
class CleanPhotos:
    """The photos the inspector called no crack that data_prep set aside for validation (not learnt
    from), read before and after fine-tuning: how many no longer read as crack is what to expect of the
    false alarms on photos no one reviewed, as CrackPhotos' set-aside ones are of the cracks."""
    tiles: np.ndarray  # every tile of those photos (n x size x size x 3 uint8)
    photo: np.ndarray  # each tile's photo (0 .. photos - 1)
    before: np.ndarray  # each photo's highest crack probability by the starting model
    threshold_before: float  # the starting model's threshold: below it, no crack


def highest_per_photo(probabilities, photo, photos):
    """Each photo's highest crack probability, from its tiles' (as predict's verdict reads a photo)."""
    best = np.zeros(photos)
    np.maximum.at(best, photo, probabilities)
    return best


def clean_photos_set_aside(data, meta, model, init_from):
    """The CleanPhotos of a cache with reviewed photos, read by the starting model; None without any."""
    if "bags" not in meta or model is None:
        return None
    rows = np.array(meta["bags"]["val"], dtype=int)
    clean = np.flatnonzero((rows >= 0) & (np.asarray(data["val"][1]) == 0))
    if not len(clean):
        return None
    tiles, photo = np.asarray(data["val"][0][clean]), np.unique(rows[clean], return_inverse=True)[1]
    before = highest_per_photo(predict_probabilities(model, tiles)[:, -1], photo, photo.max() + 1)
    return CleanPhotos(tiles, photo, before, read_model_info(init_from).get("threshold", 0.5))


def check_cleared(model, clean, threshold):
    """Print, and return for metrics.json, how many of the clean photos set aside read as no crack now
    (no tile at the threshold) and before fine-tuning."""
    after = highest_per_photo(predict_probabilities(model, clean.tiles)[:, -1], clean.photo, len(clean.before))
    cleared, before = int(np.sum(after < threshold)), int(np.sum(clean.before < clean.threshold_before))
    print(f"your verdicts: photos you called no crack, set aside to check it (not learnt from): {cleared} of "
          f"{len(after)} read as no crack (before fine-tuning {before})")
    return {"set_aside": len(after), "no_crack": cleared, "no_crack_before": before, "threshold": threshold}


def most_crack_like(probabilities, photo, count=PER_PHOTO):
    """The indices of each photo's `count` most crack-like tiles, photo by photo (the order of slots)."""
    ranked = np.lexsort((-probabilities, photo))  # by photo, the most crack-like first
    first = np.searchsorted(photo[ranked], photo[ranked], side="left")
    return ranked[np.arange(len(ranked)) - first < count]


def crack_probabilities(model, x, rows, chunk=256):
    """The model's crack probability of x's rows, a chunk at a time: x is memory-mapped (100 phone
    photos are 85,000 tiles)."""
    return np.concatenate([predict_probabilities(model, np.asarray(x[rows[i:i + chunk]]))[:, -1]
                           for i in range(0, len(rows), chunk)] or [np.zeros(0)])


def choose_tiles(data, meta, model, init_from):
    """(data, meta, CrackPhotos or None): the training split with each crack photo's PER_PHOTO most
    crack-like tiles by the starting model, its other tiles left out, and every tile of the photos
    called no crack; the validation split without the tiles of crack photos set aside (most show sound
    concrete: they are read as photos, by the guard). Unchanged for a cache without reviewed photos.

    model: the starting model, the very one train.py then fine-tunes (None from scratch); init_from:
    the file it was loaded from, whose sure threshold says which photos it reads as crack."""
    if "bags" not in meta:
        return data, meta, None
    rows = {split: np.array(meta["bags"][split]) for split in ("train", "val")}
    cracked = {split: np.flatnonzero((rows[split] >= 0) & (data[split][1] == 1)) for split in rows}
    keep = {split: np.setdiff1d(np.arange(len(rows[split])), cracked[split]) for split in rows}
    names, photos = sorted(set(rows["train"][cracked["train"]]) | set(rows["val"][cracked["val"]])), None
    if model is None and names:
        print(f"note: the {len(names)} photos called crack are left out: which of their tiles holds the crack is "
              "read by the model being fine-tuned (--init-from); a model trained from scratch has none")
    elif names:
        x = {split: data[split][0] for split in rows}
        crack = {split: crack_probabilities(model, x[split], cracked[split]) for split in rows}
        photo = {split: np.searchsorted(names, rows[split][cracked[split]]) for split in rows}
        learnt = most_crack_like(crack["train"], photo["train"])  # in the order of photo, as relearn() puts them
        # Each learnt tile is repeated so that the crack photos' tiles weigh as much as the clean photos'
        # (a drone site: 124 against 1,421): fewer crack photos lost, fewer clean ones cleared (EXPERIMENTS.md)
        clean = np.sum((rows["train"] >= 0) & (data["train"][1] == 0))
        repeat = max(1, round(clean / max(1, len(learnt))))
        keep["train"] = np.sort(np.concatenate([keep["train"], np.repeat(cracked["train"][learnt], repeat)]))
        read = {split: np.sort(most_crack_like(crack[split], photo[split], READ_PER_PHOTO)) for split in rows}
        photos = CrackPhotos([meta["bag_photos"][i] for i in names],
                             np.concatenate([x[split][cracked[split][read[split]]] for split in rows]),
                             np.concatenate([photo[split][read[split]] for split in rows]), None,
                             held=~np.isin(names, rows["train"][cracked["train"]]),
                             slots=(np.searchsorted(keep["train"], cracked["train"][learnt])[:, None]
                                    + np.arange(repeat)).ravel())
        photos.crack_before = photos.highest(np.concatenate([crack[split][read[split]] for split in rows])) \
            >= sure_threshold(init_from)
        print(f"your verdicts: {len(names)} photos called crack, {int(photos.held.sum())} of them set aside to check "
              f"the fine-tuning on; the others learnt from their {len(learnt)} most crack-like tiles by {init_from} "
              f"(of {len(cracked['train'])}, chosen again after each epoch; each shown {repeat} times, as many as "
              f"the {clean} tiles of photos called no crack)")
    data = data | {split: (np.asarray(data[split][0][keep[split]]), data[split][1][keep[split]]) for split in rows}
    if photos:
        photos.train_x = data["train"][0]
    files = {key: meta[key] | {split: [meta[key][split][i] for i in keep[split]] for split in rows}
             for key in ("files", "file_sources")}
    counts = meta["counts"] | {split: {"total": len(keep[split]), **{
        name: int(np.sum(data[split][1] == i)) for i, name in enumerate(meta["class_names"])}} for split in rows}
    meta = meta | files | {"counts": counts, "bags": {split: rows[split][keep[split]].tolist() for split in rows}}
    return data, meta, photos


def sure_threshold(model_path):
    """The crack probability from which a model's verdict is crack (crack_rules.judge_cracks)."""
    info = read_model_info(model_path)
    return max(info.get("threshold", 0.5), info.get("sure_threshold", 0.5))


def guard(model, photos, sure_threshold):
    """A callback that reads the crack photos after each epoch and adds to its logs crack_photos_kept
    (at the sure threshold, where predict says crack; those set aside and those learnt from) and
    guarded_val_loss, the validation loss plus LOST_PHOTO_PENALTY for every photo that read as crack
    before fine-tuning and no longer does: EarlyStopping keeps the best epoch by it. A photo the starting
    model missed is a crack to find, not one to keep: counting those too made a road site's clean photos
    crack (docs/EXPERIMENTS.md, "Verdicts per photo")."""
    def read_photos(epoch, logs):
        probabilities = predict_probabilities(model, photos.tiles)[:, -1]
        kept = photos.highest(probabilities) >= sure_threshold
        logs.update(crack_photos_kept=int(kept.sum()),
                    guarded_val_loss=logs["val_loss"] + LOST_PHOTO_PENALTY * float(np.sum(~kept & photos.crack_before)))
        photos.relearn(probabilities)
    return keras.callbacks.LambdaCallback(on_epoch_end=read_photos)


def sure_for_crack_photos(highest, calibration):
    """The calibration with its sure threshold lowered, if need be, to the highest tile of the least sure
    photo called crack that still reaches the threshold: those photos read as crack, not uncertain.

    The sure threshold is where the dataset's validation crack calls are 99.9% right; after fine-tuning
    a few false calls there raised it from 0.5 to 0.7-0.8, and photos you had called crack became
    uncertain (docs/EXPERIMENTS.md, "Verdicts per photo"). highest: each photo's highest crack
    probability by the model trained (CrackPhotos.read), as check_kept reads them."""
    reached = highest[highest >= calibration["threshold"]]
    if not len(reached) or reached.min() >= calibration["sure_threshold"]:
        return calibration
    sure = max(calibration["threshold"], np.floor(reached.min() * 100) / 100)
    print(f"sure threshold {sure:.2f}, not {calibration['sure_threshold']}: the photos you called crack are no weak evidence")
    return calibration | {"sure_threshold": float(sure)}


def check_kept(photos, highest, threshold, sure_threshold):
    """Print, and return for metrics.json, which photos called crack read as crack with the model kept
    (at its own thresholds; highest: each photo's highest crack probability by it, CrackPhotos.read)
    and which it could not keep; apart, those set aside: what to expect of photos it never saw."""
    lost = [f"{name} ({p:.2f})" for name, p in zip(photos.names, highest) if p < sure_threshold]
    held = highest[photos.held] >= sure_threshold
    print(f"your verdicts: of the {len(photos.names)} photos you called crack, {len(photos.names) - len(lost)} read as crack "
          f"(before fine-tuning {int(photos.crack_before.sum())})"
          + (f"; of the {len(held)} set aside to check it (not learnt from), {int(held.sum())}" if len(held) else "")
          + (f"; could not keep {len(lost)}: {', '.join(lost)} (its highest tile under {sure_threshold:.2f})"
             if lost else ""))
    return {"photos": len(photos.names), "kept": len(photos.names) - len(lost), "lost": lost,
            "set_aside": len(held), "set_aside_kept": int(held.sum()),
            "threshold": threshold, "sure_threshold": sure_threshold}
