"""An image file to model input: the one path from a file to pixels, for data_prep and predict alike.

Training and prediction must see pixels made exactly the same way, so both call load_image() (or
decode_image() then fit_to_model(), for a photo cut into tiles). The texture measures tell how
much grain a surface has, which predict uses to notice a surface unlike the training images.
"""

import collections
import itertools
import os
import stat
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from support.safe_io import printable

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif"}
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")  # an iPhone's photos
MIN_SIDE = 16  # pixels: a smaller image (or a thin strip) holds no surface to judge
OWN_OUTPUTS = ("_prediction.png", "_prediction.jpg")  # predict.py's figures (a report's: JPEG): never read back in
# An image of more pixels is refused before it is decoded: 100 MP take 300 MB as RGB, and the work on
# them about as much again (a 20000 x 20000 photo took 2.5 GB). A JPEG of up to four times as many is
# decoded at half its size instead (ReducedImage). OpenCV gets the same limit for the formats whose
# size is not read here from the header.
MAX_PIXELS = 100_000_000
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # bad files are reported by the scripts


class ImageError(Exception):
    """A file that cannot be used as an image; the message says why."""


class ReducedImage(np.ndarray):
    """A JPEG over MAX_PIXELS, decoded at 1/`reduction` of its size: libjpeg scales while it decodes, so
    the whole photo is never held. Its pixels stand for the file's everywhere (tiles, boxes, figures,
    labels), and predict's tiles shrink with it (photos.tiling), so the model sees the training
    patches' scale: a 227 px tile becomes 113 px, still more than the model's 64, so nothing it
    would see is lost."""

    def __array_finalize__(self, obj):
        self.reduction = getattr(obj, "reduction", 1)


def decode_image(path):
    """Read an image file as an upright RGB uint8 array, every pixel of it. Raises ImageError.

    Grayscale, RGBA and 16-bit files become 8-bit RGB; EXIF orientation is applied. HEIC/HEIF
    photos (an iPhone's default) are read with pillow-heif, where it is installed. The JPEG
    decoder's reduced scales (cv2.IMREAD_REDUCED_*, two to four times faster on a 12 MP photo)
    are used only beyond MAX_PIXELS (ReducedImage): below, resize() keeps a hairline crack that
    they would blur away.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # opening a FIFO would wait for a writer forever
            raise ImageError("not a regular file (a pipe, socket or device): not opened")
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it fails on non-ASCII paths on Windows
    except OSError as error:
        raise ImageError(error.strerror or str(error)) from None
    if data.size == 0:
        raise ImageError("empty file")
    width, height = header_size(data)
    reduction = 2 if data[:2].tobytes() == b"\xff\xd8" and width * height > MAX_PIXELS else 1
    if width * height > MAX_PIXELS * reduction ** 2:
        raise ImageError(f"too large: {width}x{height} px, over the limit of {MAX_PIXELS / 1e6:.0f} megapixels "
                         f"({4 * MAX_PIXELS / 1e6:.0f} for a JPEG, read at half size)")
    if data[4:8].tobytes() == b"ftyp" and data[8:12].tobytes() in HEIF_BRANDS:
        return check_size(decode_heif(path))
    # libjpeg quietly grey-fills a truncated JPEG; refuse it instead of learning from grey.
    if data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in data[-4096:].tobytes():
        raise ImageError("truncated JPEG (no end-of-image marker)")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_REDUCED_COLOR_2 if reduction == 2 else cv2.IMREAD_COLOR)
        if image is None:
            raise ImageError("not a readable image")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: a large photo is not held twice
    except cv2.error as error:  # OpenCV refuses some damaged or exotic files with an exception
        raise ImageError(f"OpenCV cannot decode it ({error.err})") from None
    if data[:2].tobytes() == b"\xff\xd8" and grey_filled(image):
        raise ImageError("truncated JPEG (its last blocks are missing)")
    if reduction > 1:
        image = image.view(ReducedImage)
        image.reduction = reduction
    return check_size(image)


def grey_filled(image):
    """Whether a decoded JPEG ends in the flat mid-grey that libjpeg puts where data is missing (a file
    cut short, even one whose end marker was put back): the last block of a photo is never exactly
    128 in every pixel and channel, and libjpeg decodes in order, so a cut file always ends so."""
    return bool(np.all(image[-8:, -8:] == 128)) and image.min() != image.max()


def header_size(data):
    """(width, height) from a JPEG's or PNG's header, read without decoding; (0, 0) for other files."""
    if data[:8].tobytes() == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24].tobytes()) if data.size >= 24 else (0, 0)
    position = 2 if data[:2].tobytes() == b"\xff\xd8" else len(data)
    while position + 9 < len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):  # a frame
            height, width = struct.unpack(">HH", data[position + 5:position + 9].tobytes())
            return width, height
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        position += 2 + (int(data[position + 2]) << 8 | int(data[position + 3]))
    return 0, 0


def check_size(image):
    if min(image.shape[:2]) < MIN_SIDE:
        raise ImageError(f"too small ({image.shape[1]}x{image.shape[0]} px; at least {MIN_SIDE} px a side)")
    return image


def decode_heif(path):
    """A HEIC/HEIF photo as upright RGB uint8 (OpenCV cannot read them)."""
    try:
        import pillow_heif
        from PIL import Image, ImageOps
    except ImportError:
        raise ImageError("a HEIC/HEIF photo needs pillow-heif: pip install pillow-heif") from None
    pillow_heif.register_heif_opener()
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except Exception as error:  # libheif raises its own types for a damaged file
        raise ImageError(f"not a readable HEIC/HEIF image ({str(error).splitlines()[0]})") from None


def fit_to_model(image, size):
    """Resize an RGB array to size x size (see resize)."""
    return image if image.shape[:2] == (size, size) else resize(image, size, size)


def resize(image, width, height):
    """Resize an RGB array so that a crack thinner than a pixel of the result stays dark.

    Shrinking by a factor k averages k x k pixels into one (INTER_AREA), which alone would fade a
    dark line one pixel wide to 1/k of its contrast: a hairline crack on a wide patch vanishes.
    So each pixel first takes the darkest value of the k x k pixels around it (an erosion, a
    minimum filter): the line becomes k pixels wide and keeps at least half of its contrast,
    still one or two pixels wide after the average. Every model's images are shrunk so, cracks or not:
    on four real classes that made no difference beyond seed noise, and one shrink keeps data_prep and
    predict on one path (docs/EXPERIMENTS.md, "Whole images, one shrink for every class"). Raises ImageError.
    """
    shrinking = image.shape[0] * image.shape[1] > width * height
    kernel = round(min(image.shape[1] / width, image.shape[0] / height))
    try:
        if kernel > 1:
            image = cv2.erode(image, np.ones((kernel, kernel), np.uint8))
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    except cv2.error as error:
        raise ImageError(f"OpenCV cannot resize it ({error.err})") from None


def load_image(path, size):
    """The model input for an image file: size x size x 3 uint8 RGB. Raises ImageError."""
    return fit_to_model(decode_image(path), size)


def surface_texture(images):
    """The grain of each model input (N x size x size x 3 uint8): the median absolute Laplacian of
    its grey levels. A median, so a crack's or an edge's own pixels do not count, only the surface's.
    Bare concrete has grain at the dataset's scale; a painted wall, or a photo taken far closer
    than the dataset's, is smoother than any training image (train.py stores the floor)."""
    magnitude = laplacian_magnitude(images).reshape(len(images), -1)
    middle = magnitude.shape[1] // 2  # the upper median: no mean of two values, so smoother_than is exact
    return np.partition(magnitude, middle, axis=1)[:, middle]


def smoother_than(images, floor):
    """surface_texture(images) < floor, without sorting: a median lies below the floor exactly
    when more than half the values do. For 910 tiles counting takes 0.5 ms where the partial sort
    takes 38 ms, and predict.py needs only this answer."""
    magnitude = laplacian_magnitude(images)
    return np.count_nonzero(magnitude < floor, axis=(1, 2)) > magnitude[0].size // 2


def laplacian_magnitude(images):
    """|Laplacian| of the grey levels of each image's inner pixels (N x size-2 x size-2, float32)."""
    # The batch as one tall image, so that OpenCV converts and filters it in one call each (train.py
    # measures the whole training split); only each image's inner pixels, untouched by its
    # neighbours in the tall image, count.
    n, height, width, _ = images.shape
    grey = cv2.cvtColor(np.ascontiguousarray(images).reshape(n * height, width, 3).astype(np.float32),
                        cv2.COLOR_RGB2GRAY)
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=1).reshape(n, height, width)[:, 1:-1, 1:-1]
    return np.abs(laplacian)


def check_not_among_images(option, out, enough=10):
    """Refuse an output folder where images are read from: right inside a folder of `enough` images or
    more (a class folder, a folder of photos), whose files data_prep or predict would then take for
    images. Only the folder it is in, and only a folder of images: a photo or two beside the scripts
    (my_wall.jpg) or in /tmp says nothing."""
    folder = out.parent
    if not folder.is_dir():
        return
    images = (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if len(list(itertools.islice(images, enough))) == enough:  # counting stops there: a folder may hold 100,000
        raise SystemExit(f"error: {option} {out} is inside {folder}, a folder of images: its files would "
                         "be read as images; choose another")


def list_images(folder, others=None):
    """Image files below folder, recursively, in a stable order (os.walk: fast on 100,000 files).

    Hidden files (such as a temporary .partial- file) and the figures predict.py writes are left
    out, so an output that lands in an input folder is never read back as an image. The other
    files found are appended to `others`, if given, so that none is dropped silently.
    """
    found, other = [], []
    for root, _, names in os.walk(folder):
        for name in names:
            if name.startswith(".") or name.endswith(OWN_OUTPUTS):
                continue
            if not os.path.isfile(os.path.join(root, name)):  # a FIFO would hang whoever opens it
                print(f"note: skipping {printable(os.path.join(root, name))}: not a regular file (a pipe, socket "
                      "or device)", file=sys.stderr)
                continue
            is_image = os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            (found if is_image else other).append(os.path.join(root, name))
    if others is not None:
        others += [Path(path) for path in sorted(other)]
    return [Path(path) for path in sorted(found)]


def read_ahead(items, budget, most):
    """(item, RGB image or ImageError) for each item (its first element a path), in order, decoded
    ahead on threads (OpenCV releases the GIL, so the next images decode while the model runs):
    as many as fit in `budget` pixels at the size of the largest image so far, and at most `most`.
    Memory stays the same for 8 photos or 500."""
    workers = max(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        queue, largest = collections.deque(), 0
        for number, item in enumerate(items):
            queue.append(pool.submit(_read, item))
            if number == 0:  # its size tells how many fit: nothing is decoded beside it
                queue[0].result()
            while True:
                largest = max([largest] + [_pixels(future.result()) for future in queue if future.done()])
                # Nothing is decoded ahead of an image larger than the budget: two are never decoded at once.
                if len(queue) <= (min(most, budget // largest) if largest else workers):
                    break
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def _read(item):
    try:
        return item, decode_image(item[0])
    except ImageError as error:
        return item, error


def _pixels(result):
    image = result[1]
    return 0 if isinstance(image, ImageError) else image.shape[0] * image.shape[1]
