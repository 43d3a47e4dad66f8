"""An image file to model input: the one path from a file to pixels, for data_prep and predict alike.

Training and prediction must see pixels made exactly the same way, so both call load_image() (or
decode_image() then fit_to_model(), for a photo cut into tiles). The texture measures tell how
much grain a surface has, which predict uses to notice a surface unlike the training images.
read_exif() reads when, with what and where a photo was taken, for predict's report.
"""

import collections
import itertools
import os
import re
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

from support.errors import InputError
from support.opencv import MAX_PIXELS, cv2
from support.output_folders import MARKER
from support.runner import quiet_stderr
from support.safe_text import printable

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif"}
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")  # an iPhone's photos
MIN_SIDE = 16  # pixels: a smaller image (or a thin strip) holds no surface to judge
OWN_OUTPUTS = ("_prediction.png", "_prediction.jpg")  # predict.py's figures (a report's: JPEG): never read back in
# Every image is sized from its header, whatever its format, and refused over MAX_PIXELS before any pixel
# is decoded (support/opencv.py). A baseline JPEG of up to four times as many is decoded at half its size
# instead (ReducedImage); a progressive one is not: libjpeg holds all its coefficients, up to 6 bytes a pixel.
# A file is read whole: over MAX_FILE_BYTES it is refused from its size (a 100 MP BMP is 300 MB, a JPEG 50).
MAX_FILE_BYTES = 512 * 2 ** 20
# Decoding work grows with the scans of a JPEG, not its pixels: 150,000 scans of 26 bytes took 153 s.
# A progressive photo has about 10 (libjpeg's default script) and a few more in its thumbnails.
MAX_JPEG_SCANS = 100
Image.MAX_IMAGE_PIXELS = None  # Pillow's own warning (two lines naming site-packages): check_pixels says it
# DECODER_CHATTER: libjpeg prints a warning of its own straight to stderr for a JPEG it decodes anyway
# ("Corrupt JPEG data: 2 extraneous bytes before marker 0xd9"), beside the scripts' lines. OpenCV's log
# level does not reach it (OPENCV_LOG_LEVEL=SILENT still prints it), and Pillow, which decodes silently,
# holds a photo more than once (24 MP: 237 MB at peak against OpenCV's 145) and is another decoder, whose
# verdict on a damaged file may differ. So OpenCV decodes with file descriptor 2 pointed at the null
# device (runner.quiet_stderr: safe on read_ahead's threads; the scripts' own lines still show; 25-40 µs
# a call, 1% of a 227 px patch's decoding).


class ImageError(Exception):
    """A file that cannot be used as an image; the message says why, not which file.

    Not an errors.InputError: an unreadable image among many is reported and the run goes on (predict
    names it on stderr and in its CSV, data_prep skips it), so each caller catches it where it reads the
    image; one that cannot go on without it (a photo a labels file names) raises InputError naming the file.
    """


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
    they would blur away. The file's size, pixels and scans are checked before any pixel is decoded.
    """
    size = file_size(path)
    width, height, kind = header_size(path)
    reduction = 2 if kind == "JPEG" and width * height > MAX_PIXELS else 1
    check_pixels(width, height, kind, reduction)
    if kind == "HEIF":
        return check_size(decode_heif(path))
    data = read_file(path, size)
    if kind.startswith("JPEG"):
        check_jpeg(data)
    try:
        with quiet_stderr():  # libjpeg's own line for a damaged JPEG: see DECODER_CHATTER
            image = cv2.imdecode(np.frombuffer(data, np.uint8),
                                 cv2.IMREAD_REDUCED_COLOR_2 if reduction == 2 else cv2.IMREAD_COLOR)
        del data  # a large file is not held beside its pixels
        if image is None:
            raise ImageError("not a readable image")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)  # in place: a large photo is not held twice
    except cv2.error as error:  # OpenCV refuses some damaged or exotic files with an exception
        raise ImageError(f"OpenCV cannot decode it ({error.err})") from None
    if kind.startswith("JPEG") and grey_filled(image):
        raise ImageError("truncated JPEG (its last blocks are missing)")
    if reduction > 1:
        image = image.view(ReducedImage)
        image.reduction = reduction
    return check_size(image)


def file_size(path):
    """The size of a regular file in bytes; raises ImageError for anything else, or a file too large to read."""
    try:
        if os.path.islink(path) and not os.path.exists(path):
            raise ImageError(not_a_file(path))
        status = os.stat(path)
    except OSError as error:
        raise ImageError(error.strerror or str(error)) from None
    if not stat.S_ISREG(status.st_mode):  # opening a FIFO would wait for a writer forever
        raise ImageError(not_a_file(path))
    if status.st_size == 0:
        raise ImageError("empty file")
    if status.st_size > MAX_FILE_BYTES:
        raise ImageError(f"too large a file: {status.st_size / 2 ** 20:.0f} MB, over the limit of "
                         f"{MAX_FILE_BYTES / 2 ** 20:.0f} MB; not read")
    return status.st_size


def not_a_file(path):
    """Why a path that is no regular file is not opened, said as what it is."""
    if os.path.islink(path) and not os.path.exists(path):
        return f"a broken symbolic link (to {printable(os.readlink(path))}): not opened"
    return "not a regular file (a pipe, socket or device): not opened"


def read_file(path, size):
    """The file's bytes, at most `size` of them (file_size): a file that grew meanwhile is not read on."""
    data = bytearray(size)
    try:
        with open(path, "rb") as f:  # not cv2.imread: it fails on non-ASCII paths on Windows
            data = data[:f.readinto(data)]
    except OSError as error:
        raise ImageError(error.strerror or str(error)) from None
    return data


def header_size(path):
    """(width, height, kind) from an image's header, decoding no pixel: Pillow reads only the header
    of every format read here (kind: Pillow's format name, "JPEG progressive", or "HEIF")."""
    start = b""
    try:
        with open(path, "rb") as f:
            start = f.read(16)
        if start[4:8] == b"ftyp" and start[8:12] in HEIF_BRANDS:
            register_heif()
        with Image.open(path) as image:
            kind = image.format
            if kind in ("JPEG", "MPO"):  # MPO: a phone's JPEG with more pictures after the first
                kind = "JPEG progressive" if image.info.get("progressive") else "JPEG"
            elif kind in ("HEIF", "AVIF"):
                kind = "HEIF"
            return image.size[0], image.size[1], kind
    except ImageError:
        raise
    except Exception:  # Pillow raises many types for a damaged header
        if start[:4] in (b"II*\0", b"MM\0*"):  # a TIFF of samples Pillow cannot hold (float RGB): its tags
            return tiff_size(path)
        raise ImageError("not a readable image (no image header of a kind read here)") from None


def tiff_size(path):
    try:
        with open(path, "rb") as f:
            directory = TiffImagePlugin.ImageFileDirectory_v2(f.read(8))
            f.seek(directory.next)
            directory.load(f)
        return int(directory[256]), int(directory[257]), "TIFF"
    except Exception:
        raise ImageError("not a readable TIFF image (its header is damaged)") from None


def check_pixels(width, height, kind, reduction):
    """Refuse, before decoding, an image of more pixels than MAX_PIXELS at the size it would be decoded at."""
    if width * height > MAX_PIXELS * reduction ** 2:
        half = "; a baseline JPEG up to 4 times as many, read at half size" if kind == "JPEG progressive" else \
            f" ({4 * MAX_PIXELS / 1e6:.0f} for a JPEG, read at half size)" if kind == "JPEG" else ""
        raise ImageError(f"too large: {width}x{height} px, over the limit of {MAX_PIXELS / 1e6:.0f} megapixels"
                         f"{half}; not decoded")


def check_jpeg(data):
    """Refuse a JPEG whose decoding would not end well: cut short, or of more scans than MAX_JPEG_SCANS.
    A start-of-scan marker can only stand as a marker: inside entropy-coded data a 0xFF byte is followed
    by 0x00, so counting the pair counts the scans (and those of any thumbnail) without decoding."""
    # libjpeg quietly grey-fills a truncated JPEG; refuse it instead of learning from grey.
    if b"\xff\xd9" not in data[-4096:]:
        raise ImageError("truncated JPEG (no end-of-image marker)")
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise ImageError(f"a JPEG of {scans} scans (at most {MAX_JPEG_SCANS}): its decoding would take minutes; "
                         "not decoded")


def grey_filled(image):
    """Whether a decoded JPEG ends in the flat mid-grey that libjpeg puts where data is missing (a file
    cut short, even one whose end marker was put back): the last block of a photo is never exactly
    128 in every pixel and channel, and libjpeg decodes in order, so a cut file always ends so."""
    return bool(np.all(image[-8:, -8:] == 128)) and image.min() != image.max()


def image_pixels(path):
    """An image's pixels from its header (0 if it has none): what decoding it will hold."""
    try:
        file_size(path)  # a FIFO is never opened
        width, height, _ = header_size(path)
    except (ImageError, OSError):
        return 0
    return width * height


def read_exif(path):
    """(taken, camera, place) from a photo's EXIF, "" for what is absent or unreadable; never raises.

    taken is "YYYY-MM-DD HH:MM:SS" (DateTimeOriginal, else DateTime); camera is make and model;
    place the GPS position as text, "51.50740° N, 0.12780° W" (no map: the page stays offline).
    """
    def text(value):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return str(value or "").replace("\x00", "").strip()

    try:
        with Image.open(path) as image:  # reads the header only, not the pixels
            exif = image.getexif()
            taken = text(exif.get_ifd(0x8769).get(36867) or exif.get(306))
            make, model = text(exif.get(271)), text(exif.get(272))
            place = gps_text(exif.get_ifd(0x8825))
    except Exception:  # any damaged or exotic file: the report goes on without its metadata
        return "", "", ""
    if not taken.strip(" :0"):  # "0000:00:00 00:00:00" and blanks mean "not set"
        taken = ""
    elif re.fullmatch(r"\d{4}:\d\d:\d\d(\s.*)?", taken):
        taken = taken[:10].replace(":", "-") + taken[10:]
    camera = model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    return taken, camera, place


def gps_text(gps):
    """EXIF GPS tags (1-4: latitude N/S and degrees, minutes, seconds; longitude E/W and the same) as text."""
    try:
        (lat_ref, lat), (lon_ref, lon) = (gps[1], gps[2]), (gps[3], gps[4])
        lat, lon = (float(d) + float(m) / 60 + float(s) / 3600 for d, m, s in (lat, lon))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return ""
    if not (0 <= lat <= 90 and 0 <= lon <= 180) or str(lat_ref) not in "NS" or str(lon_ref) not in "EW":
        return ""
    return f"{lat:.5f}° {lat_ref}, {lon:.5f}° {lon_ref}"


def check_size(image):
    if min(image.shape[:2]) < MIN_SIDE:
        raise ImageError(f"too small ({image.shape[1]}x{image.shape[0]} px; at least {MIN_SIDE} px a side)")
    return image


def register_heif():
    """Pillow reads HEIC/HEIF (an iPhone's photos) once pillow-heif registers its opener."""
    try:
        import pillow_heif
    except ImportError:
        raise ImageError("a HEIC/HEIF photo needs pillow-heif: pip install pillow-heif") from None
    pillow_heif.register_heif_opener()


def decode_heif(path):
    """A HEIC/HEIF photo as upright RGB uint8 (OpenCV cannot read them), read-only: pillow-heif's own
    buffer, not copied (through Pillow, a 100 MP photo was held three times: 1.5 GB). libheif turns it
    upright as it decodes (the file's rotation and mirroring, which a phone writes for its EXIF one)."""
    register_heif()
    import pillow_heif

    try:
        image = np.asarray(pillow_heif.open_heif(path, convert_hdr_to_8bit=True))
    except Exception as error:  # libheif raises its own types for a damaged file
        raise ImageError(f"not a readable HEIC/HEIF image ({str(error).splitlines()[0]})") from None
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB) if image.shape[2] == 4 else image


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
        raise InputError(f"{option} {out} is inside {folder}, a folder of images: its files would "
                         "be read as images; choose another")


def list_images(folder, others=None):
    """Image files below folder, recursively, in a stable order (os.walk: fast on 100,000 files).

    Hidden files (such as a temporary .partial- file), the figures predict.py writes and the folders
    this project wrote (a report: output_folders.MARKER in it) are left out, so an output that lands in an
    input folder is never read back as an image. Symbolic links to folders are followed, each folder
    read once (a link back up would loop). The other files found are appended to `others`, if
    given, so that none is dropped silently.
    """
    found, other, seen = [], [], set()
    for root, folders, names in os.walk(folder, followlinks=True):
        seen.add(os.path.realpath(root))
        folders[:] = [name for name in folders if readable_folder(os.path.join(root, name), seen)]
        for name in names:
            path = os.path.join(root, name)
            if name.startswith(".") or name.endswith(OWN_OUTPUTS):
                continue
            if not os.path.isfile(path):  # a FIFO would hang whoever opens it
                print(f"note: skipping {printable(path)}: {not_a_file(path)}", file=sys.stderr)
                continue
            is_image = os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            (found if is_image else other).append(path)
    if others is not None:
        others += [Path(path) for path in sorted(other)]
    return [Path(path) for path in sorted(found)]


def readable_folder(path, seen):
    """Whether list_images reads a sub-folder: not one it read already through a link, nor one this
    project wrote (a report of predict's, whose photos and thumbnails are no inputs); a note says why."""
    if os.path.realpath(path) in seen:
        print(f"note: skipping {printable(path)}: a link to a folder read already", file=sys.stderr)
        return False
    if os.path.isfile(os.path.join(path, MARKER)):
        print(f"note: skipping {printable(path)}: written by this project (a report)", file=sys.stderr)
        return False
    return True


def read_ahead(items, budget, most):
    """(item, RGB image or ImageError) for each item (its first element a path), in order, decoded
    ahead on threads (OpenCV releases the GIL, so the next images decode while the model runs):
    as many as their headers say fit in `budget` pixels, and at most `most`; one at least, however
    large. Memory stays the same for 8 photos or 500, whichever image comes first."""
    workers = max(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        queue, held = collections.deque(), 0  # held: the pixels of the images queued
        for item in items:
            pixels = image_pixels(item[0])
            while queue and (held + pixels > budget or len(queue) >= most):
                held -= queue[0][1]
                yield queue.popleft()[0].result()
            queue.append((pool.submit(_read, item), pixels))
            held += pixels
        while queue:
            yield queue.popleft()[0].result()


def _read(item):
    try:
        return item, decode_image(item[0])
    except ImageError as error:
        return item, error
