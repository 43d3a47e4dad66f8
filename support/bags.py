"""The photos an inspector reviewed, as train.py learns from them and keeps them: bags of tiles.

support/notes.py cuts each photo given a verdict into predict's tiles (meta.json's "bags" names each
training row's photo). A photo called crack says that some tile of it holds a crack, not which:
fine-tuning learns from its PER_PHOTO tiles that the model finds most crack-like, chosen by the
starting model and again by the model being trained after every epoch (multiple-instance learning:
as the clean photos teach what a joint is, a crack photo's most crack-like tiles move from its joints
to its crack), and leaves the others out, since most tiles of a cracked photo show sound concrete. A
photo called no crack teaches through all its tiles: learning from the flagged ones alone let a road
site, where the model missed cracks, call every clean photo crack (docs/EXPERIMENTS.md). A model
trained from scratch has no guide: it learns from the clean photos and leaves the crack photos out.

After every epoch the crack photos are read as predict reads a photo, by its most crack-like tile,
and the epoch kept is the best one (validation loss) among those that keep the most of them crack;
train.py names any photo it could not keep.
"""

import dataclasses

import numpy as np

from support.batches import predict_probabilities
from support.model_files import load_classifier, read_model_info
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
    slots: np.ndarray = None  # the training split's rows that hold each photo's most crack-like tiles
    train_x: np.ndarray = None  # the training split's images, in memory: relearn() rewrites the slots' rows

    def highest(self, probabilities):
        """Each photo's highest crack probability, from its tiles' (as predict's verdict reads a photo)."""
        best = np.zeros(len(self.names))
        np.maximum.at(best, self.photo, probabilities)
        return best

    def most_crack_like(self, probabilities, count=PER_PHOTO):
        """The indices of each photo's `count` most crack-like tiles, photo by photo (the order of slots)."""
        ranked = np.lexsort((-probabilities, self.photo))  # by photo, the most crack-like first
        first = np.searchsorted(self.photo[ranked], self.photo[ranked], side="left")
        return ranked[np.arange(len(ranked)) - first < count]

    def relearn(self, probabilities):
        """Put each photo's most crack-like tiles, by these probabilities, into its training rows."""
        self.train_x[self.slots] = self.tiles[self.most_crack_like(probabilities)]


def choose_tiles(data, meta, init_from):
    """(data, meta, CrackPhotos or None): the training split with each crack photo's PER_PHOTO most
    crack-like tiles by the starting model, its other tiles left out, and every tile of the photos
    called no crack. Unchanged for a cache without reviewed photos."""
    if "bags" not in meta:
        return data, meta, None
    bags = np.array(meta["bags"])
    x, y = data["train"]
    in_bag = np.flatnonzero(bags >= 0)
    cracked = in_bag[y[in_bag] == 1]
    names = [meta["bag_photos"][i] for i in np.unique(bags[cracked])]
    photos, chosen = None, np.array([], int)
    if not init_from:
        print(f"note: the {len(names)} photos called crack are left out: which of their tiles holds the crack is "
              "read by the model being fine-tuned (--init-from); a model trained from scratch has none")
        chosen = in_bag[y[in_bag] == 0]
    elif len(in_bag):
        classify, _ = load_classifier(init_from, "tensorflow")
        # read from the memory-mapped cache a batch at a time: 100 phone photos are 85,000 tiles
        crack = np.concatenate([classify(x[in_bag[i:i + 256]])[0] for i in range(0, len(in_bag), 256)])[:, 1]
        in_crack = y[in_bag] == 1
        top = np.isin(np.arange(len(in_bag)), CrackPhotos(names, None, bags[in_bag], None).most_crack_like(crack))
        chosen = in_bag[(top & in_crack) | ~in_crack]
        photos = CrackPhotos(names, None, np.unique(bags[in_bag[in_crack]], return_inverse=True)[1], None)
        photos.crack_before = photos.highest(crack[in_crack]) >= sure_threshold(init_from)
        read = np.sort(photos.most_crack_like(crack[in_crack], READ_PER_PHOTO))  # the tiles read after each epoch
        photos.tiles, photos.photo = np.asarray(x[in_bag[in_crack][read]]), photos.photo[read]
        print(f"your verdicts: {len(names)} photos called crack, learnt from their {np.sum(top & in_crack)} most "
              f"crack-like tiles by {init_from} (of {np.sum(in_crack)}, chosen again after each epoch); "
              f"{len(set(bags[in_bag[~in_crack]]))} called no crack, {np.sum(~in_crack)} training tiles")
    keep = np.sort(np.concatenate([np.flatnonzero(bags < 0), chosen]))
    data = data | {"train": (np.asarray(x[keep]), y[keep])}
    if photos:  # the crack photos' chosen rows, photo by photo, in the order most_crack_like gives them
        rows = np.searchsorted(keep, in_bag[top & (y[in_bag] == 1)])
        photos.slots, photos.train_x = rows[np.argsort(bags[keep][rows], kind="stable")], data["train"][0]
    train = {key: [meta[key]["train"][i] for i in keep] for key in ("files", "file_sources")}
    counts = meta["counts"] | {"train": {"total": len(keep), **{name: int(np.sum(y[keep] == i))
                                                                for i, name in enumerate(meta["class_names"])}}}
    meta = meta | {"counts": counts, "bags": bags[keep].tolist()} | {
        key: meta[key] | {"train": train[key]} for key in train}
    return data, meta, photos if photos and len(names) else None


def sure_threshold(model_path):
    """The crack probability from which a model's verdict is crack (verdicts.judge_cracks)."""
    info = read_model_info(model_path)
    return max(info.get("threshold", 0.5), info.get("sure_threshold", 0.5))


def guard(model, photos, sure_threshold):
    """A callback that reads the crack photos after each epoch and adds to its logs crack_photos_kept
    (at the sure threshold, where predict says crack) and guarded_val_loss, the validation loss plus
    LOST_PHOTO_PENALTY for every photo that is no longer crack: EarlyStopping keeps the best epoch by it."""
    def read_photos(epoch, logs):
        probabilities = predict_probabilities(model, photos.tiles)[:, -1]
        kept = photos.highest(probabilities) >= sure_threshold
        logs.update(crack_photos_kept=int(kept.sum()),
                    guarded_val_loss=logs["val_loss"] + LOST_PHOTO_PENALTY * float(np.sum(~kept)))
        photos.relearn(probabilities)
    return keras.callbacks.LambdaCallback(on_epoch_end=read_photos)


def sure_for_crack_photos(model, photos, calibration):
    """The calibration with its sure threshold lowered, if need be, to the highest tile of the least sure
    photo called crack that still reaches the threshold: those photos read as crack, not uncertain.

    The sure threshold is where the dataset's validation crack calls are 99.9% right; after fine-tuning
    a few false calls there raised it from 0.5 to 0.7-0.8, and photos you had called crack became
    uncertain (docs/EXPERIMENTS.md, "Verdicts per photo")."""
    highest = photos.highest(predict_probabilities(model, photos.tiles)[:, -1])
    reached = highest[highest >= calibration["threshold"]]
    if not len(reached) or reached.min() >= calibration["sure_threshold"]:
        return calibration
    sure = max(calibration["threshold"], np.floor(reached.min() * 100) / 100)
    print(f"sure threshold {sure:.2f}, not {calibration['sure_threshold']}: the photos you called crack are no weak evidence")
    return calibration | {"sure_threshold": float(sure)}


def check_kept(model, photos, threshold, sure_threshold):
    """Print, and return for metrics.json, which photos called crack read as crack with the model kept
    (at its own thresholds) and which it could not keep."""
    after = photos.highest(predict_probabilities(model, photos.tiles)[:, -1])
    lost = [f"{name} ({p:.2f})" for name, p in zip(photos.names, after) if p < sure_threshold]
    print(f"your verdicts: of the {len(photos.names)} photos you called crack, {len(photos.names) - len(lost)} read as crack "
          f"(before fine-tuning {int(photos.crack_before.sum())})"
          + (f"; could not keep {len(lost)}: {', '.join(lost)} (its highest tile under {sure_threshold:.2f})"
             if lost else ""))
    return {"photos": len(photos.names), "kept": len(photos.names) - len(lost), "lost": lost,
            "threshold": threshold, "sure_threshold": sure_threshold}
