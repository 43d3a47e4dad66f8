"""Training batches: a tf.data pipeline over the cache, sources weighed alike, and augmentation.

Augmentation, for every model trained from scratch: the eight symmetries of the square (random
flips and 90-degree turns) and, with capture=True, other light and other cameras. For a crack
model only (its classes are Negative and Positive), with crack_shapes: a drawn hairline on some
clean images, labelled cracked, since the dataset's cracks are mostly wide and a model trained
on them alone misses other surfaces' fine ones (docs/EXPERIMENTS.md).
"""

import numpy as np

from support.cache import SPLITS
from support.crack_rules import THIN_CRACKS
from support.model_files import class_probabilities, with_features
from support.opencv import cv2
from support.plots import save_image_grid
from support.tf_import import tf

THIN_CRACK_SHAPES = 2048  # drawn once per run; flips, rotations and darkness vary them further


def make_datasets(data, meta, recipe, folder):
    """train.py's (training batches, validation batches) as its train.Recipe says, sources balanced;
    with augmentation, a figure of augmented training images in folder."""
    sources = {split: np.array(meta["file_sources"][split]) if len(meta.get("sources", [])) > 1 else None
               for split in SPLITS}
    shapes = crack_shapes(meta["image_size"], recipe.seed) if recipe.thin_cracks else None
    (train_x, train_y), (val_x, val_y) = data["train"], data["val"]
    train_ds = make_dataset(train_x, train_y, recipe.batch_size, shuffle=True, augment=recipe.augment,
                            capture=recipe.capture, seed=recipe.seed, sources=sources["train"],
                            crack_shapes=shapes, site_share=recipe.site_share)
    val_ds = make_dataset(val_x, val_y, recipe.batch_size, sources=sources["val"])
    if recipe.augment:
        save_augmentation_examples(train_x, train_y, recipe.seed, folder / "augmentation.png", recipe.capture, shapes)
    return train_ds, val_ds


def make_dataset(x, y, batch_size, shuffle=False, augment=False, capture=False, seed=None, sources=None,
                 crack_shapes=None, site_share=None):
    """A tf.data pipeline of (uint8 image, float label, weight) batches gathered from numpy arrays.

    Only a batch's rows are read at a time, so a memory-mapped cache larger than RAM works and
    no float copy of the data set is ever made (the model scales pixels itself).

    `sources` (each row's --src index, from a cache of several sources) makes every source weigh
    the same: a shuffled training set draws its rows from each source equally often (a site folder
    of 100 images next to 20,000 dataset images is not drowned), and otherwise each row's weight is
    inversely proportional to its source's size, so the validation loss is the mean of the
    sources' losses and choosing the best epoch weighs all of them.

    `site_share`: the share of every shuffled training batch drawn from the sources after the first
    (a site's own images), together; the first source (the dataset) gives the rest. None: all alike.
    """
    image_shape = x.shape[1:]
    weights = np.ones(len(x), np.float32)
    balanced = sources is not None and len(np.unique(sources)) > 1
    if balanced:
        counts = np.bincount(sources)
        weights = (len(x) / (np.count_nonzero(counts) * counts[sources])).astype(np.float32)

    def gather(rows):
        rows = np.sort(rows)  # in file order: sequential reads from a memory map
        return x[rows], y[rows].astype(np.float32), weights[rows]

    def read_batch(rows):
        images, labels, row_weights = tf.numpy_function(gather, [rows], (tf.uint8, tf.float32, tf.float32))
        return (tf.ensure_shape(images, (None, *image_shape)), tf.ensure_shape(labels, (None,)),
                tf.ensure_shape(row_weights, (None,)))

    if shuffle and balanced:
        per_source = [tf.data.Dataset.from_tensor_slices(np.flatnonzero(sources == s)).repeat()
                      .shuffle(np.count_nonzero(sources == s), seed=seed, reshuffle_each_iteration=True)
                      for s in np.unique(sources)]
        shares = None
        if site_share is not None:
            shares = [1 - site_share] + [site_share / (len(per_source) - 1)] * (len(per_source) - 1)
        dataset = tf.data.Dataset.sample_from_datasets(per_source, weights=shares, seed=seed).take(len(x))
        weights[:] = 1  # the sampling already balances the sources
    else:
        dataset = tf.data.Dataset.range(len(x))
        if shuffle:
            dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(read_batch, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(3, drop_remainder=True)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda batch, s: augment_batch(*batch, s, capture, crack_shapes), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def random_symmetry(images, seeds):
    """Each image flipped and rotated by a random multiple of 90 degrees.

    Cracks have no preferred direction. A random transpose plus random left-right and up-down
    flips gives all eight symmetries of the square (Keras has no 90-degree rotation layer), and
    the stateless ops keep a seeded run repeatable inside a parallel pipeline.
    """
    images = tf.cast(images, tf.float32)  # oneDNN has uint8 kernels only on AVX-512 CPUs
    images = tf.image.stateless_random_flip_left_right(images, seed=seeds[0:2])
    images = tf.image.stateless_random_flip_up_down(images, seed=seeds[1:3])
    transpose = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed=seeds[::2]) < 0.5
    return tf.where(transpose, tf.transpose(images, [0, 2, 1, 3]), images)


def random_capture(images, seed):
    """Each image as if taken by another camera in other light (float 0-255 in and out).

    The data set's patches come from one camera on one campus; users' photos differ in exposure,
    contrast, white balance, colourfulness, tone curve and sensor noise. Varying these (by amounts
    a phone photo plausibly differs) raised validation accuracy and made false alarms on real walls
    and paving fewer (docs/EXPERIMENTS.md). Blur is left out: it erases the
    thin cracks a 64 px input still shows; shrinking images (photos from farther away) did not help.
    """
    keys = tf.random.experimental.stateless_split(seed, num=7)
    n = tf.shape(images)[0]

    def per_image(key, low, high, channels=1):
        return tf.random.stateless_uniform([n, 1, 1, channels], seed=key, minval=low, maxval=high)

    x = images / 255.0
    x = x * per_image(keys[0], 0.7, 1.3) + per_image(keys[1], -0.1, 0.1)  # contrast, brightness
    grey = tf.reduce_mean(x, axis=3, keepdims=True)
    x = grey + (x - grey) * per_image(keys[2], 0.3, 1.7)  # colourfulness
    x = x * per_image(keys[3], 0.9, 1.1, channels=3)  # white balance
    x = tf.clip_by_value(x, 1e-3, 1.0) ** per_image(keys[4], 0.7, 1.4)  # tone curve
    x = x + tf.random.stateless_normal(tf.shape(x), seed=keys[5]) * per_image(keys[6], 0.0, 0.03)  # noise
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def crack_shapes(size, seed):
    """The hairlines a training run draws from (see add_thin_cracks), as a tensor."""
    return tf.constant(thin_crack_shapes(THIN_CRACK_SHAPES, size, seed))


def thin_crack_shapes(count, size, seed, oversample=4):
    """`count` hairline cracks as darkness masks (float32 0-1, size x size): jagged walks 0.75-1.75 px wide.

    Each crosses the patch in a general direction, wavering at every step and sometimes branching,
    drawn anti-aliased at `oversample` times the size and shrunk, with a darkness that varies along
    it as a real crack opens and closes.
    """
    rng = np.random.default_rng(seed)
    big = size * oversample
    shapes = np.zeros((count, size, size), np.float32)
    for i in range(count):
        canvas = np.zeros((big, big), np.uint8)
        for branch in range(1 + (rng.random() < 0.3)):
            heading = rng.uniform(0, 2 * np.pi)
            direction = np.array([np.cos(heading), np.sin(heading)])
            point = rng.uniform(0.2, 0.8, 2) * big if branch else big / 2 - 0.75 * big * direction
            angle, points = heading, [point]
            for _ in range(int(big * (rng.uniform(0.15, 0.4) if branch else 0.32))):
                angle = heading + 0.7 * (angle - heading) + rng.normal(0, 0.45)
                point = point + rng.uniform(3, 7) * np.array([np.cos(angle), np.sin(angle)])
                points.append(point)
            fixed_point = np.round(np.array(points) * 16).astype(np.int32)  # 4 fractional bits
            cv2.polylines(canvas, [fixed_point], False, 255, thickness=int(rng.integers(3, 8)),
                          lineType=cv2.LINE_AA, shift=4)
        darkness = cv2.resize(rng.uniform(0.4, 1.0, (4, 4)).astype(np.float32), (size, size),
                              interpolation=cv2.INTER_CUBIC)
        shapes[i] = np.clip(cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA) / 255 * darkness, 0, 1)
    return shapes


def add_thin_cracks(images, labels, weights, shapes, seed, share=THIN_CRACKS):
    """A hairline drawn on `share` of a batch's clean images, now labelled cracked (float images).

    Weights keep the two classes' total weight as it was, so the network's notion of how common
    cracks are does not shift with `share`.
    """
    keys = tf.random.experimental.stateless_split(seed, num=3)
    n = tf.shape(images)[0]
    drawn = (tf.random.stateless_uniform([n], seed=keys[0]) < share) & (labels < 0.5)
    shape = tf.gather(shapes, tf.random.stateless_uniform([n], seed=keys[1], maxval=len(shapes), dtype=tf.int32))
    darkness = tf.random.stateless_uniform([n, 1, 1], seed=keys[2], minval=0.3, maxval=0.8)
    images = images * (1 - tf.where(drawn[:, None, None], darkness * shape, 0.0))[..., None]
    labels = tf.where(drawn, 1.0, labels)
    weights = weights * tf.where(labels > 0.5, 1 / (1 + share), 1 / (1 - share))
    return images, labels, weights


def augment_batch(images, labels, weights, seeds, capture=True, crack_shapes=None, crack_share=THIN_CRACKS):
    """A uint8 training batch turned (random symmetry), given hairlines (with crack_shapes) and taken
    in other light (with capture); float images out."""
    images = random_symmetry(images, seeds)
    if crack_shapes is not None:
        images, labels, weights = add_thin_cracks(images, labels, weights, crack_shapes, seeds[1:], crack_share)
    return (random_capture(images, seeds[:2]) if capture else images), labels, weights


def predict_probabilities(model, x, batch_size=256):
    """(rows, classes) probabilities of every row of x, in order.

    The model is called directly rather than through model.predict, which under a multi-worker
    strategy would wait for every worker to predict too.
    """
    dataset = make_dataset(x, np.zeros(len(x), np.uint8), batch_size)
    return class_probabilities(np.concatenate([model(images, training=False).numpy() for images, _, _ in dataset]))


def predict_features(model, x, batch_size=256):
    """(rows, features) of what the model's last layer reads (support/unfamiliar.py), every row of x in order."""
    both = with_features(model)
    dataset = make_dataset(x, np.zeros(len(x), np.uint8), batch_size)
    return np.concatenate([np.asarray(both(images, training=False)[1], np.float32) for images, _, _ in dataset])


def save_augmentation_examples(x, y, seed, path, capture=True, crack_shapes=None, count=6):
    """The first training images beside augmented copies of them: what augmentation feeds the model.

    With crack_shapes, half the clean ones get a hairline (training draws on fewer) so the figure shows some.
    """
    originals, labels = np.asarray(x[:count]), np.asarray(y[:count], np.float32)
    seeds = tf.constant([seed, seed + 1, seed + 2], tf.int64)
    augmented, new_labels, _ = augment_batch(tf.constant(originals), tf.constant(labels), tf.ones(count), seeds,
                                             capture, crack_shapes, crack_share=0.5)
    augmented = np.round(augmented.numpy()).astype(np.uint8)
    titles = [title for old, new in zip(labels, new_labels.numpy())
              for title in ("original", "hairline drawn" if new != old else "augmented")]
    save_image_grid([image for pair in zip(originals, augmented) for image in pair], titles, path,
                    "Augmentation: flips, 90-degree rotations" + (", capture conditions" if capture else "")
                    + (", drawn hairlines" if crack_shapes is not None else ""), columns=4)
    return originals, augmented
