"""Hostile input, round three (issue 37): which file is predict's to replace, one pixel guard for every
format, memory that does not grow with the folder, names of any bytes and length, hangs, signals and
links. Each test is one reproduction; the hostile files are made here, none is trained."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
from conftest import PRETRAINED, REPO, assert_clean_failure, run, sample_files

from support import atomic_files, cache, figures, images, labels, masks, model_files
from support.errors import InputError

PATCH = sample_files("Positive")[0]
ODD_NAME = os.fsdecode(b"caf\xe9 \xff.jpg")  # Latin-1 bytes from a zip archive: not UTF-8


def run_python(code, *args, cwd=None):
    """Python code run as a script is (predict's modules imported as predict.py imports them)."""
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


def jpeg(width=64, height=48, progressive=False):
    image = cv2.resize(cv2.imread(str(PATCH)), (width, height))
    return bytearray(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])[1].tobytes())


def claiming(data, width, height):
    """A JPEG whose frame header claims width x height pixels (its data stays that of a small one)."""
    frame = next(i for i in range(2, len(data)) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    data[frame + 5:frame + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return data


def rle8_bmp(width, height):
    """An 8-bit run-length BMP header of width x height whose pixels are one 'end of bitmap' (81 KB in the issue)."""
    pixels = b"\x00\x01"
    start = (14 + 40 + 1024).to_bytes(4, "little")
    header = b"BM" + (14 + 40 + 1024 + len(pixels)).to_bytes(4, "little") + bytes(4) + start
    info = (40).to_bytes(4, "little") + width.to_bytes(4, "little") + height.to_bytes(4, "little") + \
        (1).to_bytes(2, "little") + (8).to_bytes(2, "little") + (1).to_bytes(4, "little") + \
        len(pixels).to_bytes(4, "little") + bytes(8) + (256).to_bytes(4, "little") + bytes(4)
    return header + info + bytes(1024) + pixels


def deflate_tiff(path, width, height):
    """A deflate TIFF whose header says width x height (a 1.1 MB one of 15000 x 15000 in the issue)."""
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, compression="tiff_adobe_deflate")
    data = bytearray(path.read_bytes())
    directory = int.from_bytes(data[4:8], "little")
    for entry in range(int.from_bytes(data[directory:directory + 2], "little")):
        at = directory + 2 + 12 * entry
        tag, kind = int.from_bytes(data[at:at + 2], "little"), int.from_bytes(data[at + 2:at + 4], "little")
        if tag in (256, 257):
            size = 2 if kind == 3 else 4
            data[at + 8:at + 8 + size] = (width if tag == 256 else height).to_bytes(size, "little")
    path.write_bytes(bytes(data))
    return path


# ----------------------------------------------------------------------------------------------
# 1. Which file is predict's to replace


@pytest.mark.slow
def test_a_users_file_is_never_taken_for_one_of_predicts_csvs(tmp_path):
    (tmp_path / "notes.txt").write_text("\nMy field notes\n")
    (tmp_path / "budget.csv").write_bytes(b"\r\nconcrete,1200\r\n")
    (tmp_path / "my_boxes.csv").write_text("image,x,y,width,height,label\nwall.jpg,0,0,64,64,crack\n")
    for option, name in (("--csv", "notes.txt"), ("--csv", "budget.csv"), ("--tiles-csv", "my_boxes.csv")):
        before = (tmp_path / name).read_bytes()
        assert_clean_failure(run("predict.py", PATCH, option, tmp_path / name, "--no-figures", timeout=60),
                             "not a CSV that predict wrote")
        assert (tmp_path / name).read_bytes() == before
    assert run("predict.py", PATCH, "--csv", tmp_path / "r.csv", "--no-figures", timeout=60).returncode == 0
    assert run("predict.py", PATCH, "--csv", tmp_path / "r.csv", "--no-figures", timeout=60).returncode == 0  # its own


def test_two_runs_writing_one_file_never_share_a_partial_file(tmp_path):
    path = tmp_path / "tiles.csv"
    with atomic_files.writing(path) as first, atomic_files.writing(path) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("first run\n")
        second.write_text("second run\n")
    assert path.read_text() == "first run\n"  # each whole: the last to finish is the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles.csv"]


def test_a_killed_runs_partial_file_goes_with_the_next_write_and_a_live_runs_stays(tmp_path):
    """SIGKILL (or a power cut) leaves writing()'s temporary file; predict writing beside it removes it."""
    finished = subprocess.Popen([sys.executable, "-c", ""])
    finished.wait()  # its process id is no running process's now
    killed = tmp_path / f".partial-{finished.pid}-0123abcd.csv"
    live = tmp_path / f".partial-{os.getpid()}-89abcdef.csv"
    users = tmp_path / ".partial-notes.csv"
    for path in (killed, live, users):
        path.write_text("half a file\n")
    result = run("predict.py", PATCH, "--csv", tmp_path / "r.csv", "--no-figures", timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, users.name, "r.csv"])


# ----------------------------------------------------------------------------------------------
# 2. One pixel guard for every format, before any decoding


@pytest.mark.parametrize("name, make", [
    ("rle.bmp", lambda path: path.write_bytes(rle8_bmp(20000, 20000))),
    ("deflate.tif", lambda path: deflate_tiff(path, 15000, 15000)),
    ("stray.jpg", lambda path: path.write_bytes(bytes(claiming(jpeg(), 30000, 30000)[:20] + b"\x00" +
                                                      claiming(jpeg(), 30000, 30000)[20:]))),
    ("progressive.jpg", lambda path: path.write_bytes(bytes(claiming(jpeg(progressive=True), 12000, 9000)))),
])
def test_an_image_over_the_limit_is_refused_from_its_header_in_every_format(tmp_path, name, make, monkeypatch):
    make(tmp_path / name)
    monkeypatch.setattr(cv2, "imdecode", lambda *_: pytest.fail("decoded"))
    with pytest.raises(images.ImageError, match=r"too large: \d+x\d+ px, over the limit of 100 megapixels.*not decod"):
        images.decode_image(tmp_path / name)


def test_a_stray_byte_after_app0_does_not_hide_a_jpegs_size(tmp_path):
    data = claiming(jpeg(), 20000, 20000)
    (tmp_path / "stray.jpg").write_bytes(bytes(data[:20] + b"\x00" + data[20:]))  # APP0 is bytes 2-19
    assert images.header_size(tmp_path / "stray.jpg") == (20000, 20000, "JPEG")  # read at half size, 100 MP


def test_a_108_mp_heic_is_refused_before_decoding_and_without_pillows_warning(tmp_path, recwarn):
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image

    pillow_heif.register_heif_opener()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.heic")
    data = bytearray((tmp_path / "big.heic").read_bytes())
    size = data.index(b"ispe") + 8  # the image's spatial extent: width, height
    data[size:size + 8] = (12000).to_bytes(4, "big") + (9000).to_bytes(4, "big")
    (tmp_path / "big.heic").write_bytes(bytes(data))
    with pytest.raises(images.ImageError, match="too large: 12000x9000 px"):
        images.decode_image(tmp_path / "big.heic")
    assert not recwarn.list


def test_opencv_reads_its_pixel_limit_however_the_scripts_import_it(tmp_path):
    (tmp_path / "rle.bmp").write_bytes(rle8_bmp(20000, 20000))
    result = run_python("import sys, numpy as np, predict\nfrom support.opencv import cv2\n"
                        "cv2.imdecode(np.fromfile(sys.argv[1], np.uint8), cv2.IMREAD_COLOR)", tmp_path / "rle.bmp")
    assert "pixels <= CV_IO_MAX_IMAGE_PIXELS" in result.stderr  # refused by OpenCV itself, not decoded


def test_a_huge_file_is_refused_from_its_size_unread(tmp_path, monkeypatch):
    with open(tmp_path / "h.jpg", "wb") as f:
        f.truncate(3 * 2 ** 30)  # sparse: 3 GB that take no disk
    monkeypatch.setattr(images, "read_file", lambda *_: pytest.fail("read"))
    with pytest.raises(images.ImageError, match="too large a file: 3072 MB"):
        images.decode_image(tmp_path / "h.jpg")


def test_a_jpeg_of_150000_scans_is_refused_before_decoding(tmp_path):
    data = jpeg(progressive=True)
    scan = data.index(b"\xff\xda")
    length = int.from_bytes(data[scan + 2:scan + 4], "big")
    one_scan = bytes(data[scan:scan + 2 + length]) + b"\x00" * 12  # a 26-byte scan, as in the issue
    (tmp_path / "scans.jpg").write_bytes(bytes(data[:-2]) + one_scan * 150_000 + b"\xff\xd9")
    with pytest.raises(images.ImageError, match=r"a JPEG of 1500\d\d scans"):
        images.decode_image(tmp_path / "scans.jpg")
    assert images.decode_image(PATCH).shape == (227, 227, 3)  # a real one has a handful


def test_a_zip_bomb_model_is_refused_from_its_declared_sizes(tmp_path):
    bomb = tmp_path / "bomb.keras"
    shutil.copy(PRETRAINED, bomb)
    with zipfile.ZipFile(PRETRAINED) as archive:
        info = json.loads(archive.read(model_files.INFO_NAME))
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:  # the info padded to 2 MB of spaces
        archive.writestr(model_files.INFO_NAME, json.dumps(info) + " " * (2 * model_files.MAX_INFO_BYTES))
    assert bomb.stat().st_size < 20_000
    with pytest.raises(InputError, match="unpacks to more than 1 MB"):
        model_files.read_model_info(bomb)
    assert_clean_failure(run("predict.py", PATCH, "--model", bomb, "--backend", "tensorflow", timeout=60),
                         "unpacks to more than")


# ----------------------------------------------------------------------------------------------
# 3. Memory that grows with the folder


def test_the_read_ahead_holds_pixels_not_images_whatever_comes_first(tmp_path, monkeypatch):
    shutil.copy(PATCH, tmp_path / "0_patch.jpg")  # a small image first sized the queue from it
    photo = cv2.resize(cv2.imread(str(PATCH)), (1000, 1000))
    for number in range(1, 9):
        cv2.imwrite(str(tmp_path / f"{number}_photo.jpg"), photo)
    started = []
    read = images._read
    monkeypatch.setattr(images, "_read", lambda item: started.append(item) or read(item))
    held = []
    for number, (item, image) in enumerate(images.read_ahead([(p,) for p in images.list_images(tmp_path)],
                                                             2_500_000, 256)):
        assert image.shape[:2] in ((227, 227), (1000, 1000))
        held.append(sum(images.image_pixels(path) for path, in started[number:]))
    assert max(held) <= 2_500_000 and len(started) == 9


def test_a_labels_box_smaller_than_a_tile_is_refused_in_one_line(tmp_path):
    shutil.copy(PATCH, tmp_path / "wall.jpg")
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([labels.COLUMNS, ("wall.jpg", 0, 0, 64, 64, "crack"),
                                 ("wall.jpg", 5, 5, 1, 1, "crack")])
    with pytest.raises(InputError, match="box 5,5,1,1 of .*wall.jpg is smaller than 32 px a side"):
        labels.cut_boxes(tmp_path / "labels.csv", None, 64)


def test_boxes_cut_are_kept_on_disk_and_read_back_as_they_were_cut(tmp_path):
    shutil.copy(PATCH, tmp_path / "wall.jpg")
    boxes = [(x, y, 64, 64, "crack" if x else "no crack") for x in range(0, 160, 32) for y in range(0, 160, 32)]
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([labels.COLUMNS, *(("wall.jpg", *box) for box in boxes),
                                 ("wall.jpg", 0, 0, 40, 90, "crack")])
    _, cut = labels.cut_boxes(tmp_path / "labels.csv", None, 64)
    tiles = [tile for name in cut for _, tile in cut[name]]
    assert len(tiles) == 26 and not any(isinstance(tile, np.ndarray) for tile in tiles)  # none held in memory
    image = images.decode_image(tmp_path / "wall.jpg")
    expected = dict(labels.model_inputs(image, [box[:4] for box in boxes] + [(0, 0, 40, 90)], 64))
    assert np.array_equal(np.asarray(cut["Positive"][-1][1]), expected[25])
    assert np.array_equal(np.stack([tile for _, tile in cut["Negative"][:2]]), np.stack([expected[0], expected[1]]))


def test_masks_stride_is_bounded():
    with pytest.raises(SystemExit):
        masks.parse_args(["i", "m", "--out", "x.csv", "--tile", "64", "--stride", "1"])
    assert masks.parse_args(["i", "m", "--out", "x.csv", "--tile", "64", "--stride", "8"]).stride == 8


# ----------------------------------------------------------------------------------------------
# 4. Names: every byte, every length


def test_a_name_that_is_not_utf8_is_drawn_escaped():
    banner = figures.add_banner(np.zeros((100, 300, 3), np.uint8), [f"{ODD_NAME}: CRACK"], (200, 0, 0))
    assert banner.shape[1] == 300 and figures.drawable(ODD_NAME) == "caf\\udce9 \\udcff.jpg"
    assert figures.colour_bar(200, f"p({ODD_NAME})").shape[0] == 200


@pytest.mark.slow
def test_a_name_that_is_not_utf8_goes_through_every_output(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(PATCH, os.fsencode(site) + b"/caf\xe9 \xff.jpg")
    result = run("predict.py", site, "--report", tmp_path / "r", "--csv", tmp_path / "r.csv", "--tiles-csv",
                 tmp_path / "t.csv", "--save-tiles", tmp_path / "tiles", timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert b"/caf\xe9 \xff.jpg," in (tmp_path / "r.csv").read_bytes()  # the path opens the file
    assert len(list((tmp_path / "tiles" / "Positive").iterdir())) == 1
    assert (tmp_path / "r" / "index.html").is_file()
    named = site / ODD_NAME
    assert run("predict.py", named, "--out", tmp_path / "figures", timeout=60).returncode == 0
    assert len(list((tmp_path / "figures").iterdir())) == 1


def test_a_name_too_long_for_its_figure_is_that_images_error(tmp_path):
    shutil.copy(PATCH, tmp_path / ("a" * 240 + ".jpg"))  # 244 bytes: its figure's name, 255, still fits
    shutil.copy(PATCH, tmp_path / ("b" * 246 + ".jpg"))  # 250 bytes: its figure's cannot be made
    shutil.copy(PATCH, tmp_path / "c.jpg")
    result = run("predict.py", *sorted(tmp_path.glob("*.jpg")), "--out", tmp_path / "f", "--csv", tmp_path / "r.csv",
                 timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {tmp_path / ('b' * 246 + '.jpg')}: file name too long to name its figure or tiles after it"]
    with open(tmp_path / "r.csv") as f:
        assert [row["verdict"] for row in csv.DictReader(f)] == ["crack", "error", "crack"]
    assert len(list((tmp_path / "f").glob("*_prediction.png"))) == 2


def test_an_error_line_prints_a_name_escaped(tmp_path):
    model = tmp_path / "m\n\x1b[31merror: forged.keras"
    result = run("predict.py", PATCH, "--model", model, timeout=60)
    assert_clean_failure(result, "\\n\\x1b[31merror: forged.keras does not exist")
    assert len(result.stderr.splitlines()) == 1


def test_a_class_name_never_becomes_a_path_unchecked(monkeypatch, tmp_path):
    import predict

    for names in (["../../x", "Positive"], ["/tmp/x", "y"], ["..", "y"]):
        info = {"class_names": names, "image_size": 64, "crack_model": False}
        monkeypatch.setattr(predict, "load_classifier", lambda *_: (None, info))
        args = predict.parse_args([str(PATCH), "--save-tiles", str(tmp_path / "tiles")])
        with pytest.raises(InputError, match="cannot be a folder's name"):
            predict.load_model(args, args.model)
    assert not (tmp_path / "tiles").exists()


# ----------------------------------------------------------------------------------------------
# 5. Hangs, signals, links, full disk


def test_a_fifo_given_as_report_info_or_model_is_refused_unopened(tmp_path):
    os.mkfifo(tmp_path / "info")
    os.mkfifo(tmp_path / "model.keras")
    assert_clean_failure(run("predict.py", PATCH, "--report", tmp_path / "r", "--report-info", tmp_path / "info",
                             timeout=60), "not a regular file")
    assert_clean_failure(run("predict.py", PATCH, "--model", tmp_path / "model.keras", timeout=60),
                         "is not a regular file")


INTERRUPTED_AT_THE_REPORT = """
import signal, sys
import predict
from support import run_report, runner
run_report.write_run_report = lambda *_: signal.raise_signal(signal.SIGINT)
sys.argv = ["predict.py", *sys.argv[1:]]
runner.run_script(predict.main, predict.interrupted)
"""

INTERRUPTED_IN_A_DEL = """
import signal
from support import runner

class Bar:  # as tqdm's: an exception raised in __del__ is printed and swallowed
    def __del__(self):
        signal.raise_signal(signal.SIGINT)

def main():
    Bar()
    print("went on")

runner.run_script(main, "nothing was written")
"""


def test_ctrl_c_near_the_end_says_what_was_written_once_and_fails(tmp_path):
    result = run_python(INTERRUPTED_AT_THE_REPORT, PATCH, "--csv", tmp_path / "t.csv", "--report", tmp_path / "r",
                        cwd=tmp_path)
    assert result.returncode == 130, result.stderr
    assert result.stderr.count("interrupted:") == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"interrupted: {tmp_path / 't.csv'} written whole;" in result.stderr
    assert (tmp_path / "t.csv").is_file()
    # a Ctrl-C raised in a finalizer (tqdm's lock, multiprocessing's semaphores): the run still ends, with the
    # one line and no "Exception ignored ... Traceback" from Python
    result = run_python(INTERRUPTED_IN_A_DEL)
    assert result.returncode == 130 and result.stderr.strip() == "interrupted: nothing was written", result.stderr


DECODED_ON_THREADS = """
import os, sys
from support import images, runner
def main():
    for (path,), image in images.read_ahead([(path,) for path in sys.argv[1:]], 10 ** 9, 8):
        print(f"read {os.path.basename(path)}: {image.shape}", file=sys.stderr)
    os.write(2, b"descriptor 2 is back\\n")
runner.run_script(main, "")
"""


def test_libjpegs_own_line_is_silenced_on_every_thread_and_none_of_ours(tmp_path):
    """read_ahead decodes on threads (images.DECODER_CHATTER) while the script prints: each of its lines shows."""
    data = PATCH.read_bytes()
    end = data.rindex(b"\xff\xd9")
    paths = [tmp_path / f"stray{i:02}.jpg" for i in range(24)]
    for path in paths:
        path.write_bytes(data[:end] + b"\x00\x01" + data[end:])
    result = run_python(DECODED_ON_THREADS, *paths)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"read {path.name}: (227, 227, 3)" for path in paths] + [
        "descriptor 2 is back"]


def test_cache_files_take_their_disk_blocks_before_they_are_mapped(tmp_path):
    offset = cache.new_array_file(tmp_path / "x.npy", (100, 64, 64, 3))
    status = os.stat(tmp_path / "x.npy")
    assert status.st_blocks * 512 >= status.st_size == offset + 100 * 64 * 64 * 3  # not sparse: no SIGBUS


FULL_DISK = """
import errno, os, runpy, sys
def full(*_):
    raise OSError(errno.ENOSPC, "No space left on device")
os.posix_fallocate = full
sys.argv = ["data_prep.py", *sys.argv[1:]]
runpy.run_path("data_prep.py", run_name="__main__")
"""


def test_data_prep_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    result = run_python(FULL_DISK, "--src", REPO / "sample_data", "--out", tmp_path / "cache", "--workers", "1")
    assert_clean_failure(result, "No space left on device")
    assert not list(tmp_path.iterdir())  # no partial cache, no lock


@pytest.mark.slow
def test_out_a_link_to_a_folder_is_followed_and_the_link_kept(tmp_path):
    (tmp_path / "disk").mkdir()
    (tmp_path / "cache").symlink_to(tmp_path / "disk")
    for _ in range(2):  # made, then replaced
        result = run("data_prep.py", "--src", REPO / "sample_data", "--out", tmp_path / "cache", "--workers", "1",
                     timeout=120)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "cache").is_symlink() and (tmp_path / "disk" / "meta.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "disk"]


def test_linked_folders_are_read_once_and_broken_links_called_so(tmp_path, capsys):
    (tmp_path / "site" / "north").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(PATCH, tmp_path / "site" / "north" / "a.jpg")
    shutil.copy(PATCH, tmp_path / "elsewhere" / "b.jpg")
    (tmp_path / "site" / "south").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "site" / "north" / "loop").symlink_to(tmp_path / "site")
    (tmp_path / "site" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    assert [p.relative_to(tmp_path / "site").as_posix() for p in images.list_images(tmp_path / "site")] == [
        "north/a.jpg", "south/b.jpg"]
    err = capsys.readouterr().err
    assert "loop: a link to a folder read already" in err and "gone.jpg: a broken symbolic link" in err
    with pytest.raises(images.ImageError, match="a broken symbolic link"):
        images.decode_image(tmp_path / "site" / "gone.jpg")


@pytest.mark.slow
def test_a_report_inside_an_input_folder_is_not_read_back(tmp_path):
    (tmp_path / "site").mkdir()
    shutil.copy(PATCH, tmp_path / "site" / "a.jpg")
    assert run("predict.py", tmp_path / "site", "--report", tmp_path / "report", timeout=60).returncode == 0
    result = run("predict.py", tmp_path, "--csv", tmp_path / "all.csv", timeout=60)
    assert result.returncode == 0 and "report: written by this project" in result.stderr, result.stderr
    with open(tmp_path / "all.csv") as f:
        assert [row["path"] for row in csv.DictReader(f)] == [str(tmp_path / "site" / "a.jpg")]


@pytest.mark.slow
def test_the_reports_saved_csvs_neutralise_formulas(tmp_path):
    """The page's own quoting, run in Chromium: a note such as =1+1 is text in a spreadsheet."""
    from support import html_report

    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("no chromium")
    code = "\n".join(line for line in html_report.page_file("report.js").splitlines()
                     if line.startswith(("const neutral", "const quoted")))
    page = tmp_path / "quoted.html"
    page.write_text(f"<html><body><script>{code}\ndocument.body.textContent = JSON.stringify(['=1+1 recheck', "
                    "'+1', '-1', '@SUM', '\\tx', 'plain, with a comma', 'ok', 3].map(quoted));</script></body></html>")
    dom = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60).stdout
    cells = json.loads(re.search(r"<body>(.*)</body>", dom, re.S).group(1).replace("&amp;", "&"))
    assert cells == ["'=1+1 recheck", "'+1", "'-1", "'@SUM", "'\tx", '"plain, with a comma"', "ok", "3"]


def test_small_refusals_of_a_model_are_one_line(tmp_path, monkeypatch):
    import predict

    info = {"class_names": ["Negative", "Positive"], "image_size": 64, "patch_size": "227"}
    assert model_files.info_problem(info) == "patch_size must be a whole number of pixels, not '227'"
    crack = {"class_names": ["Negative", "Positive"], "image_size": 64}
    other = {"class_names": ["a", "b"], "image_size": 64}
    shutil.copy(PRETRAINED, tmp_path / "older.keras")
    args = predict.parse_args([str(PATCH), "--compare-with", str(tmp_path / "older.keras")])
    monkeypatch.setattr(predict, "load_classifier", lambda *_: (None, crack))
    predict.load_model(args, args.model)
    monkeypatch.setattr(predict, "load_classifier", lambda *_: (None, other))
    with pytest.raises(InputError, match="tells a, b apart, --model Negative, Positive: compare two models"):
        predict.load_model(args, args.compare_with)
