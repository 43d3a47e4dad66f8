"""Peak memory and time of predict.py on an image of every format at the pixel limit, and on the hostile
files of issue 37 (a header that claims more than the data holds, a 3 GB file, 150,000 scans, a zip bomb).

    python benchmarks/bench_formats.py
    python benchmarks/bench_formats.py --repo ../other_checkout     # another version, to compare
    python benchmarks/bench_formats.py --only rle8 --only heic      # some rows

README's Limits promise one bound for every format: each row's peak should stay under 1.5 GB, or the file
be refused before it is decoded. The peak is the kernel's count for the predict process (bench_memory).
"""

import argparse
import json
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from bench_memory import peak_mb
from common import REPO, machine

from support import runner

PATCH = REPO / "sample_data" / "Negative" / "00264.jpg"


def concrete(side):
    """A side x side BGR image of concrete: a sample patch repeated, mirrored."""
    patch = cv2.imread(str(PATCH))
    tile = np.vstack([np.hstack([patch, patch[:, ::-1]]), np.hstack([patch[::-1], patch[::-1, ::-1]])])
    reps = -(-side // tile.shape[0])
    return np.tile(tile, (reps, reps, 1))[:side, :side]


def written(path, side, params=()):
    assert cv2.imwrite(str(path), concrete(side), list(params))
    return path


def heic(path, width, height):
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    Image.new("RGB", (width, height), (128, 128, 128)).save(path, quality=50)
    return path


def float_tiff(path, side):
    assert cv2.imwrite(str(path), concrete(side).astype(np.float32) / 255, [cv2.IMWRITE_TIFF_COMPRESSION, 8])
    return path


def rle8_bmp(path, side):
    """An 8-bit run-length BMP of side x side whose pixels are one 'end of bitmap': 1 KB that decodes to side^2."""
    palette, pixels = bytes(1024), b"\x00\x01"
    start = 14 + 40 + len(palette)
    path.write_bytes(struct.pack("<2sIHHI", b"BM", start + len(pixels), 0, 0, start) +
                     struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(pixels), 0, 0, 256, 0) + palette + pixels)
    return path


def deflate_tiff(path, side):
    from PIL import Image

    Image.new("RGB", (side, side), (128, 128, 128)).save(path, compression="tiff_adobe_deflate")
    return path


def stray_byte(path, side):
    """A baseline JPEG with a 0x00 after APP0, which a header parser reading markers in a row gave up on."""
    data = bytearray(cv2.imencode(".jpg", concrete(side))[1].tobytes())
    path.write_bytes(bytes(data[:20] + b"\x00" + data[20:]))
    return path


def sparse(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def many_scans(path, count):
    data = cv2.imencode(".jpg", concrete(512), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    scan = data.index(b"\xff\xda")
    length = int.from_bytes(data[scan + 2:scan + 4], "big")
    path.write_bytes(data[:-2] + (data[scan:scan + 2 + length] + b"\x00" * 12) * count + b"\xff\xd9")
    return path


def zip_bomb(path, padding):
    """The bundled model with its info padded with `padding` bytes of spaces (it unpacks to that)."""
    bundled = REPO / "pretrained" / "crack_cnn.keras"
    with zipfile.ZipFile(bundled) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.infolist():
            if member.filename != "crack_classifier.json":
                archive.writestr(member, source.read(member))
        with archive.open("crack_classifier.json", "w", force_zip64=True) as f:
            f.write(json.dumps(json.loads(source.read("crack_classifier.json"))).encode())
            for _ in range(padding // 2 ** 20):
                f.write(b" " * 2 ** 20)
    return path


CASES = {  # name: (what, how the file is made in a folder, extra predict options)
    "jpeg": ("baseline JPEG 20000x20000 (400 MP, read at half)", lambda d: written(d / "a.jpg", 20000), []),
    "progressive": ("progressive JPEG 10000x10000", lambda d: written(d / "a.jpg", 10000,
                                                                     [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), []),
    "png": ("PNG 10000x10000", lambda d: written(d / "a.png", 10000, [cv2.IMWRITE_PNG_COMPRESSION, 1]), []),
    "bmp": ("BMP 10000x10000 (300 MB)", lambda d: written(d / "a.bmp", 10000), []),
    "tiff": ("deflate TIFF 10000x10000", lambda d: deflate_tiff(d / "a.tif", 10000), []),
    "tiff-float": ("float32 deflate TIFF 10000x10000", lambda d: float_tiff(d / "a.tif", 10000), []),
    "webp": ("WebP 10000x10000", lambda d: written(d / "a.webp", 10000, [cv2.IMWRITE_WEBP_QUALITY, 80]), []),
    "heic-limit": ("HEIC 10000x10000", lambda d: heic(d / "a.heic", 10000, 10000), []),
    "rle8": ("hostile: RLE8 BMP 20000x20000 (1 KB)", lambda d: rle8_bmp(d / "a.bmp", 20000), []),
    "deflate": ("hostile: deflate TIFF 15000x15000", lambda d: deflate_tiff(d / "a.tif", 15000), []),
    "stray": ("hostile: JPEG 20000x20000, a 0x00 after APP0", lambda d: stray_byte(d / "a.jpg", 20000), []),
    "heic": ("hostile: HEIC 12000x9000 (108 MP)", lambda d: heic(d / "a.heic", 12000, 9000), []),
    "progressive-400": ("hostile: progressive JPEG 20000x20000", lambda d: written(
        d / "a.jpg", 20000, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), []),
    "3gb": ("hostile: a 3 GB file named .jpg", lambda d: sparse(d / "a.jpg", 3 * 2 ** 30), []),
    "scans": ("hostile: JPEG of 150,000 scans (4 MB)", lambda d: many_scans(d / "a.jpg", 150_000), []),
    "zip-bomb": ("hostile: .keras whose info unpacks to 1.5 GB", lambda d: PATCH,
                 lambda d: ["--model", str(zip_bomb(d / "bomb.keras", 1536 * 2 ** 20)), "--backend", "tensorflow"]),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose predict.py runs")
    parser.add_argument("--only", action="append", choices=sorted(CASES), help="run only this case (repeat)")
    args = parser.parse_args()
    print(f"{machine()}\npredict.py of {args.repo}\n")
    print(f"{'case':<50} {'peak MB':>8} {'s':>6}  exit  last line")
    for name in args.only or CASES:
        what, make, options = CASES[name]
        with tempfile.TemporaryDirectory(prefix="bench-formats-") as work:
            work = Path(work)
            image = make(work)
            extra = options(work) if callable(options) else options
            start = time.time()
            peak, status, last = peak_mb([sys.executable, str(args.repo / "predict.py"), str(image), "--out",
                                          str(work / "figures"), *extra], work)
            print(f"{what:<50} {peak:>8.0f} {time.time() - start:>6.1f} {status:>5}  {last[:120]}", flush=True)


if __name__ == "__main__":
    runner.run_script(main, "nothing more was measured")
