"""The HTML report (support/html_report.py) as a person sees it: opened from disk in headless Chromium.

The browser tests need Debian's chromium and chromium-driver (.ci/run installs them) and the
selenium package; without them they are skipped, saying which one is missing. Selenium is pointed
at /usr/bin/chromium and /usr/bin/chromedriver, so Selenium Manager never downloads a browser.
"""

import collections
import csv
import dataclasses
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, assert_clean_failure, run, visible_text

from support import figures, html_report, images, run_report, verdicts, wording

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HOSTILE = '<img src=x onerror="window.pwned=1">.jpg'  # would run if a name reached the page as markup
# (input path, verdict, probability, cracked share): two same-named photos from two days, names
# with a space, '#', '%' and markup, and one input that failed.
INPUTS = [("site/day 1/wall #1.jpg", "crack", 0.97, 0.12),
          ("site/day 2/wall #1.jpg", "no crack", 0.00004, 0.0),  # '4e-05' in the page: sorted as a number
          ("<script>.jpg", "uncertain", 0.62, 0.02),
          (HOSTILE, "no crack", 0.11, 0.0),
          ("pavement 100%.jpg", "crack", 0.884, 0.31),
          ("broken.jpg", "error", None, None)]
PROBABILITY_COLUMN = 5  # 1-based, as in CSS :nth-child


def concrete(seed, height=240, width=320, crack=True):
    """A grey, grainy surface, with a dark diagonal crack if asked."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(150 + 10 * seed, 18, (height, width, 1)), 0, 255).repeat(3, axis=2).astype(np.uint8)
    if crack:
        cv2.line(image, (20, 30), (width - 30, height - 20), (40, 40, 40), 4)
    return image


def make_report(folder):
    """A report of INPUTS in folder, with thumbnails and figures beside it; returns (index.html, rows)."""
    rows = []
    for seed, (path, verdict, probability, share) in enumerate(INPUTS):
        row = dict(path=path, verdict=verdict, reason="", probability=probability, share=share, figure=None,
                   thumbnail=None, taken="", camera="", error="")
        if verdict == "error":
            row["error"] = "not a readable image (OpenCV cannot decode it)"
        else:
            image = concrete(seed, crack=verdict != "no crack")
            stem = Path(path).with_suffix("").as_posix()  # sub-folders mirrored: the two wall #1 never collide
            row["thumbnail"] = f"thumbnails/{stem}.jpg"
            row["figure"] = f"figures/{stem}_prediction.png"
            run_report.save_thumbnail(image, folder / row["thumbnail"], path)
            (folder / row["figure"]).parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(folder / row["figure"]), np.vstack([np.full((40, 320, 3), 200, np.uint8), image]))
            row["reason"] = {"crack": "3 tiles above 0.90", "uncertain": "weak evidence: no tile reaches 0.90",
                             "no crack": ""}[verdict]
            row["taken"], row["camera"] = f"2024-05-0{seed + 1} 10:15:00", "Apple iPhone 13"
        rows.append(row)
    index = html_report.write_report(folder, "Crack report: <b>site survey</b>",
                                     ["model: pretrained/crack_cnn.tflite (run by LiteRT)",
                                      "trained on: SDNET2018 and Özgenel patches"], rows)
    return index, rows


# ----------------------------------------------------------------------------------------------
# Without a browser


def test_thumbnail_is_small_and_atomic_and_exif_is_read(tmp_path):
    image = concrete(1, height=800, width=1200)
    thumbnail = run_report.save_thumbnail(image, tmp_path / "façade.jpg", "façade.jpg")
    small = cv2.cvtColor(cv2.imread(str(thumbnail)), cv2.COLOR_BGR2RGB)
    assert small.shape == (107, 160, 3)
    assert abs(small.mean() - image.mean()) < 3  # the same surface, only smaller
    tiny = run_report.save_thumbnail(concrete(2, height=50, width=100), tmp_path / "tiny.jpg", "tiny.jpg")
    assert cv2.imread(str(tiny)).shape == (50, 100, 3)  # never enlarged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["façade.jpg", "tiny.jpg"]  # no partial files left

    exif = Image.Exif()
    exif[271], exif[272], exif[306] = "Canon", "Canon EOS 80D", "2024:05:01 09:00:00"
    exif.get_ifd(0x8769)[36867] = "2024:04:30 16:42:05"  # when taken, preferred to when last saved (306)
    Image.fromarray(image).save(tmp_path / "original.jpg", exif=exif)
    assert images.read_exif(tmp_path / "original.jpg") == ("2024-04-30 16:42:05", "Canon EOS 80D", "")
    exif = Image.Exif()
    exif[271], exif[272], exif[306] = "Apple", "iPhone 13\x00", "2023:12:24 18:00:01"
    Image.fromarray(image).save(tmp_path / "saved.jpg", exif=exif)
    assert images.read_exif(tmp_path / "saved.jpg") == ("2023-12-24 18:00:01", "Apple iPhone 13", "")

    exif = Image.Exif()
    exif[306] = "2024:05:01 09:00:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "S", (33.0, 51.0, 54.0), "E", (151.0, 12.0, 36.0)  # Sydney
    Image.fromarray(image).save(tmp_path / "located.jpg", exif=exif)
    assert images.read_exif(tmp_path / "located.jpg") == ("2024-05-01 09:00:00", "", "33.86500° S, 151.21000° E")

    (tmp_path / "text.jpg").write_text("not an image")
    for path in (thumbnail, tmp_path / "text.jpg", tmp_path / "missing.jpg"):  # no EXIF, unreadable, absent
        assert images.read_exif(path) == ("", "", "")


def test_page_escapes_names_and_percent_encodes_links(tmp_path):
    index, _ = make_report(tmp_path)
    page = index.read_text(encoding="utf-8")
    assert "&lt;script&gt;.jpg" in page and "<script>.jpg" not in page
    assert "<img src=x" not in page and "<b>site" not in page
    assert 'href="figures/site/day%201/wall%20%231_prediction.png"' in page
    assert 'src="thumbnails/pavement%20100%25.jpg"' in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from the network
    assert not list(tmp_path.glob(".partial-*"))


def test_a_probability_is_cut_not_rounded(tmp_path):
    rows = [dict(path=f"wall{i}.jpg", verdict="no crack", reason="", probability=p, share=0.0, figure=None,
                 thumbnail=None, taken="", camera="", error="") for i, p in enumerate((0.98968, 0.98999996, 0.9999996))]
    page = html_report.write_report(tmp_path, "t", [], rows).read_text(encoding="utf-8")
    # 0.990 would seem to reach a 0.99 threshold that it missed; the CSV's 5 decimals are cut alike
    assert '"0.98968">0.989<' in page and '"0.98999">0.989<' in page and '"0.99999">0.999<' in page
    assert ">0.990<" not in page and ">1.000<" not in page


def test_the_figure_names_its_photo_and_verdict():
    result = verdicts.Result(tiles=48, verdict="crack", reason="", probability=0.98999996, probabilities={},
                             flagged_class="Positive", flagged=6, share=0.127, straight_line_tiles=0)
    result = dataclasses.replace(result, summary=html_report.CRACK_RULE.summary(result))
    assert verdicts.banner("day 1/wall.jpg", result) == [
        "day 1/wall.jpg: CRACK, highest tile probability 0.989", "flagged tiles: 6 of 48 (12.7% of the photo)"]



def test_a_share_is_cut_never_100_percent_nor_0_percent_when_it_is_not(tmp_path):
    rows = [dict(path=f"wall{i}.jpg", verdict="crack", reason="", probability=0.9, share=share, flagged=flagged,
                 tiles=45, figure=None, thumbnail=None, taken="", camera="", error="")
            for i, (share, flagged) in enumerate([(44 / 45, 44), (0.99996, 44), (0.00004, 1), (1.0, 45), (0.0, 0)])]
    page = html_report.write_report(tmp_path, "t", [], rows).read_text(encoding="utf-8")
    for shown in ("97.7% (44 of 45)", "99.9% (44 of 45)", "&lt;0.1% (1 of 45)", "100.0% (45 of 45)", "0.0% (0 of 45)"):
        assert shown in page
    assert "100.0% (44 of 45)" not in page and "0.0% (1 of 45)" not in page  # as they were
    result = verdicts.Result(tiles=45, verdict="crack", reason="", probability=0.97, probabilities={},
                             flagged_class="Positive", flagged=44, share=0.99996, straight_line_tiles=0)
    assert html_report.CRACK_RULE.summary(result)[1] == ["flagged tiles: 44 of 45 (99.9% of the photo)"]

def test_a_lone_flagged_tile_is_outlined_in_red_and_the_legend_names_every_line_the_figure_draws(tmp_path):
    image, size = concrete(2, 240, 320, crack=False), 80
    grid = [(x, y, size) for y in range(0, 240, size) for x in range(0, 320, size)]
    values = [0.55 if (x, y) == (80, 80) else 0.05 for x, y, _ in grid]  # one tile just flagged: JET's green
    figure = figures.draw_figure(image, ["wall.jpg: CRACK"], (200, 0, 0), grid, values, 0.5, lines=[(10, 230, 310, 230)])
    top, scale = figures.photo_area(figure, image.shape, True)
    x0, y0, x1, y1 = (round(v * scale) for v in (80, 80 + top / scale, 160, 160 + top / scale))
    drawn = {colour for colour, *_ in figures.FIGURE_LINES if (figure == colour).all(axis=2).any()}
    assert drawn == {colour for colour, *_ in figures.FIGURE_LINES}  # each kind of line is in this figure
    edge = np.concatenate([figure[y0, x0:x1], figure[y1 - 1, x0:x1], figure[y0:y1, x0], figure[y0:y1, x1 - 1]])
    red = (edge == figures.OUTLINE_COLOUR).all(axis=1)
    assert red.mean() > 0.9, edge[~red]  # the lone tile's outline is the alarm's colour: was JET's green
    rows = [dict(path="wall.jpg", verdict="crack", reason="", probability=0.55, share=1 / 12, flagged=1, tiles=12,
                 figure=None, thumbnail=None, taken="", camera="", error="")]
    page = html_report.write_report(tmp_path, "t", [], rows).read_text(encoding="utf-8")
    legend = re.search(r'<p class="legend">(.*?)</p>', page).group(1)
    for colour, name, _ in figures.FIGURE_LINES:
        assert f'--c:rgb{colour}"></span>a {name}:' in legend
    assert "a red outline: around flagged tiles" in legend and "white double line" in legend and "colour bar" in legend

def printed_text_height(shape):
    """The height (mm) on paper of a figure's first banner line for a photo of shape, the figure fitted as
    the report prints it: into the page's width (190 mm) and 120 mm (STYLE's tr.sheet img)."""
    image = concrete(1, *shape)
    size = 80
    grid = [(x, y, size) for y in range(0, shape[0] - size + 1, size) for x in range(0, shape[1] - size + 1, size)]
    figure = figures.draw_figure(image, ["wall.jpg: CRACK", "flagged tiles: 6 of 48"], (200, 0, 0), grid,
                                 [0.1] * len(grid))
    top, _ = figures.photo_area(figure, image.shape, True)
    inked = np.flatnonzero((figure[:top] < 200).any(axis=(1, 2)))
    first_line = inked[:np.argmax(np.diff(inked) > 1)] if (np.diff(inked) > 1).any() else inked
    pixels = first_line[-1] - first_line[0] + 1
    return pixels * min(190 / figure.shape[1], 120 / figure.shape[0]), pixels


def test_the_banner_reads_the_same_size_on_paper_for_a_landscape_a_portrait_and_a_small_photo():
    heights = {name: printed_text_height(shape) for name, shape in [
        ("landscape", (3000, 4000)), ("portrait", (4000, 3000)), ("small", (480, 640)), ("tiny", (90, 120))]}
    on_paper = [mm for mm, _ in heights.values()]
    assert max(on_paper[:3]) < 1.15 * min(on_paper[:3]), heights  # was 2.2 mm (portrait) to 5.1 mm (small)
    assert 2 < min(on_paper) and max(on_paper) < 4, heights  # mm: legible, not a headline
    assert min(pixels for _, pixels in heights.values()) >= 10, heights  # a tiny image's at the smallest legible

@pytest.mark.slow
def test_a_header_file_is_json_or_field_lines_and_a_bad_one_is_one_line(tmp_path):
    text = tmp_path / "site.txt"
    text.write_text("# survey of May\nTitle: North car park\ninspector: A. Inspector\nnotes: level 2\n  ramp too\n")
    assert run_report.read_info_file(text) == {"title": "North car park", "inspector": "A. Inspector",
                                                "notes": "level 2\nramp too"}
    as_json = tmp_path / "site.json"
    as_json.write_text(json.dumps({"site": "Block C", "notes": "east wall"}))
    assert run_report.read_info_file(as_json) == {"site": "Block C", "notes": "east wall"}
    photo = REPO / "sample_data" / "Positive" / "08545.jpg"
    (tmp_path / "bad.json").write_text('{"site": "Block C", "weather": "rain"}')
    (tmp_path / "bad.txt").write_text("Block C\n")
    for args, fragment in (([photo, "--title", "x"], "add --report DIR"),
                           ([photo, "--report", tmp_path / "r", "--report-info", tmp_path / "bad.json"], "'weather'"),
                           ([photo, "--report", tmp_path / "r", "--report-info", tmp_path / "bad.txt"], "line 1"),
                           ([photo, "--report", tmp_path / "r", "--report-info", tmp_path / "none.txt"], "none.txt")):
        result = run("predict.py", *args, cwd=tmp_path)
        assert_clean_failure(result, fragment)
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------------------------
# In the browser


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    for program, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not program.is_file():
            pytest.skip(f"no {program}: the report is checked in Debian's {package} (apt-get install chromium "
                        "chromium-driver, as .ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000", "--hide-scrollbars"):
        options.add_argument(argument)  # no sandbox: CI runs as root; small /dev/shm in containers
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return make_report(tmp_path_factory.mktemp("report") / "report of site")


@pytest.fixture
def page(browser, report):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(report[0].as_uri())
    browser.get_log("browser")  # the log of earlier tests' pages goes; this page's is kept
    # Every thumbnail decoded: its percent-encoded relative link found the file.
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('#inputs td.thumb img')).every(image => image.complete)"))
    broken = browser.execute_script("return Array.from(document.querySelectorAll('#inputs td.thumb img'))"
                                    ".filter(image => !image.naturalWidth).map(image => image.src)")
    assert not broken
    return browser


def visible_rows(driver):
    from selenium.webdriver.common.by import By

    return [row for row in driver.find_elements(By.CSS_SELECTOR, "#inputs tbody tr:first-child") if row.is_displayed()]


def cells(driver, column):
    from selenium.webdriver.common.by import By

    return [row.find_element(By.CSS_SELECTOR, f"td:nth-child({column})").text for row in visible_rows(driver)]


def click(driver, selector):
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, selector).click()


@pytest.mark.slow
def test_every_input_has_a_row_with_its_verdict_and_the_counts(page, report):
    from selenium.webdriver.common.by import By

    _, rows = report
    shown = visible_rows(page)
    assert len(shown) == len(INPUTS)
    for row, (path, verdict, probability, share) in zip(shown, INPUTS):
        text = row.text
        assert Path(path).name in text and verdict in text
        if probability is not None:
            assert f"{probability:.3f}" in text and f"{share:.1%}" in text
    assert "not a readable image" in shown[-1].text  # the failed input, with its error
    assert page.find_element(By.TAG_NAME, "h1").text == "Crack report: <b>site survey</b>"
    assert "model: pretrained/crack_cnn.tflite (run by LiteRT)" in page.find_element(By.TAG_NAME, "header").text
    counts = [button.text for button in page.find_elements(By.CSS_SELECTOR, ".filter button")]
    assert counts == ["All 6", "crack 2", "uncertain 1", "no crack 2", "error 1"]


@pytest.mark.slow
def test_clicking_the_probability_header_sorts_rows_up_then_down(page):
    known = [f"{p:.3f}" for p in sorted(p for _, _, p, _ in INPUTS if p is not None)]
    header = f"#inputs th:nth-child({PROBABILITY_COLUMN})"
    assert page.find_element("css selector", header).text.startswith("PROBABILITY")
    click(page, header)
    assert cells(page, PROBABILITY_COLUMN) == known + [""]  # the failed input has none: last either way
    click(page, header)
    assert cells(page, PROBABILITY_COLUMN) == known[::-1] + [""]


@pytest.mark.slow
def test_the_verdict_filter_shows_only_that_verdict(page):
    for verdict, expected in (("crack", 2), ("no crack", 2), ("error", 1), ("uncertain", 1)):
        click(page, f'.filter button[data-filter="{verdict}"]')
        assert cells(page, 3) == [verdict] * expected
    click(page, '.filter button[data-filter=""]')
    assert len(visible_rows(page)) == len(INPUTS)


@pytest.mark.slow
def test_a_figure_link_opens_the_figure_beside_the_report(page, report):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    links = page.find_elements(By.LINK_TEXT, "figure")
    assert len(links) == len(INPUTS) - 1
    for link in links:  # the browser's own resolution of each relative, percent-encoded link
        path = Path(unquote(urlparse(link.get_attribute("href")).path))
        assert path.is_file() and report[0].parent in path.parents, path
    link = page.find_element(By.CSS_SELECTOR, '#inputs tbody[data-verdict="uncertain"] a[href*="_prediction"]')
    link.click()
    WebDriverWait(page, 10).until(lambda d: d.current_url.endswith("_prediction.png"))
    WebDriverWait(page, 10).until(lambda d: d.execute_script("return document.images[0].complete"))
    assert page.execute_script("return document.images[0].naturalHeight") == 240 + 40


@pytest.mark.slow
def test_hostile_names_show_as_text_and_run_nothing(page):
    names = cells(page, 2)
    assert any(name.startswith("<script>.jpg") for name in names)
    assert any(name.startswith(HOSTILE) for name in names)
    assert page.execute_script("return window.pwned === undefined && document.scripts.length === 2 "  # data, code
                               "&& !document.querySelector('[onerror]')")
    assert page.title == "Crack report: <b>site survey</b>"


@pytest.mark.slow
def test_no_console_error_and_the_page_is_not_blank(page):
    click(page, f"#inputs th:nth-child({PROBABILITY_COLUMN})")
    click(page, '.filter button[data-filter="crack"]')
    click(page, '.filter button[data-filter=""]')
    errors = [entry for entry in page.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert not errors
    page.execute_script("console.error('probe')")  # the log is really read: an error would be seen
    assert any("probe" in entry["message"] for entry in page.get_log("browser"))

    screenshot = cv2.imdecode(np.frombuffer(page.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
    assert screenshot.shape[0] > 500 and screenshot.std() > 20
    colours = screenshot.reshape(-1, 3).astype(int)  # BGR: the verdict badges, red and green
    assert ((colours[:, 2] > 150) & (colours[:, 1] < 80)).sum() > 100
    assert ((colours[:, 1] > 100) & (colours[:, 2] < 80)).sum() > 100


@pytest.mark.slow
def test_printing_keeps_every_row_and_drops_the_hint(page):
    page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not page.find_element("css selector", ".hint").is_displayed()
        assert len(visible_rows(page)) == len(INPUTS)
    finally:
        page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert page.print_page().startswith("JVBERi")  # base64 of "%PDF"


# ----------------------------------------------------------------------------------------------
# A real run of predict.py --report, end to end


@pytest.mark.slow
def test_predict_report_of_a_folder_opens_sorts_filters_and_links(browser, tmp_path, negative_patches,
                                                                  positive_patches):
    from conftest import mosaic, run, write_rgb
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    site = tmp_path / "site"
    (site / "day1").mkdir(parents=True)
    write_rgb(site / "day1" / "wall.jpg", mosaic(negative_patches[6], positive_patches[6], 4, 3, {(2, 1)}))
    write_rgb(site / "day1" / "floor.jpg", mosaic(negative_patches[7], positive_patches[7], 4, 3, set()))
    cv2.imwrite(str(site / "patch.png"), cv2.imread(str(REPO / "sample_data" / "Positive" / "08545.jpg")))
    (site / "notes.txt").write_text("second floor")
    result = run("predict.py", site, "--report", tmp_path / "report", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr  # notes.txt is not an image
    assert f"report: {tmp_path / 'report' / 'index.html'} (4 inputs" in result.stdout
    page = (tmp_path / "report" / "index.html").read_text()
    assert "pretrained/crack_cnn.tflite (the bundled model" in page and "trained on: Özgenel" in page

    browser.get((tmp_path / "report" / "index.html").as_uri())
    browser.get_log("browser")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('#inputs td.thumb img')).every(i => i.complete && i.naturalWidth > 0)"))
    assert len(visible_rows(browser)) == 4
    names = cells(browser, 2)
    assert [name.splitlines()[0] for name in names] == ["floor.jpg", "wall.jpg", "patch.png", "notes.txt"]
    assert cells(browser, 3) == ["no crack", "crack", "crack", "error"]  # inputs that failed come last
    click(browser, f"#inputs th:nth-child({PROBABILITY_COLUMN})")
    shown = [float(p) for p in cells(browser, PROBABILITY_COLUMN) if p]
    assert shown == sorted(shown) and len(shown) == 3 and cells(browser, PROBABILITY_COLUMN)[-1] == ""
    click(browser, '.filter button[data-filter="crack"]')
    assert cells(browser, 3) == ["crack", "crack"]
    click(browser, '.filter button[data-filter=""]')
    for link in browser.find_elements(By.LINK_TEXT, "figure"):
        path = Path(unquote(urlparse(link.get_attribute("href")).path))
        assert path.is_file() and (tmp_path / "report" / "figures") in path.parents
    assert not [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    screenshot = cv2.imdecode(np.frombuffer(browser.get_screenshot_as_png(), np.uint8), cv2.IMREAD_COLOR)
    assert screenshot.std() > 20


@pytest.mark.slow
def test_tiles_marked_in_the_report_are_saved_as_a_labels_file(browser, tmp_path, negative_patches,
                                                               positive_patches):
    from conftest import mosaic, run, write_rgb
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "site" / "wall.jpg"
    photo.parent.mkdir()
    write_rgb(photo, mosaic(negative_patches[8], positive_patches[8], 4, 3, {(1, 1)}))
    assert run("predict.py", photo.parent, "--report", tmp_path / "report", cwd=tmp_path).returncode == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    browser.get((tmp_path / "report" / "index.html").as_uri())
    browser.get_log("browser")
    click(browser, "button.mark")
    picture = browser.find_element(By.CSS_SELECTOR, "#marker .stage img")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "const i = document.querySelector('#marker .stage img'); return i.complete && i.naturalWidth > 0"))
    mark = json.loads(browser.find_element(By.ID, "marking").get_attribute("textContent"))["0"]
    k = browser.execute_script("return arguments[0].clientWidth / arguments[0].naturalWidth", picture)

    def click_photo(x, y):  # a point of the photo, in its own pixels; Selenium's offsets are from the centre
        left, top = x * mark["scale"] * k, (mark["top"] + y * mark["scale"]) * k
        ActionChains(browser).move_to_element_with_offset(
            picture, round(left - picture.size["width"] / 2), round(top - picture.size["height"] / 2)).click().perform()

    click_photo(110, 110)  # no mark type chosen yet: nothing is marked, and the dialog says what to do
    assert browser.find_element(By.ID, "marked").text == "Choose no crack or crack first, then click a tile."
    browser.find_element(By.CSS_SELECTOR, '#marker input[value="Negative"]').click()
    click_photo(110, 110)  # "no crack": the tile at the top left corner
    click_photo(600, 500)  # and another, clicked twice: unmarked again
    click_photo(600, 500)
    browser.find_element(By.CSS_SELECTOR, '#marker input[value="Positive"]').click()
    click_photo(340, 340)  # "crack": the tile centred on the planted crack
    assert browser.find_element(By.ID, "marked").text == "2 tiles marked"
    boxes = browser.find_elements(By.CSS_SELECTOR, "#marker .box")
    assert [box.text for box in boxes] == ["no crack", "crack"]
    # Marks in colours the heat map and its outlines never use (jet: blue to red): white dashed, magenta.
    styles = [browser.execute_script("const s = getComputedStyle(arguments[0]); return [s.borderTopColor, "
                                     "s.borderTopStyle]", box) for box in boxes]
    assert styles == [["rgb(255, 255, 255)", "dashed"], ["rgb(224, 0, 224)", "solid"]]

    # Zoomed in, the figure is larger and a click still finds the same tile of the photo.
    width = picture.size["width"]
    click(browser, "#zoom-in")
    assert browser.find_element(By.ID, "zoom").text == "150%" and abs(picture.size["width"] - 1.5 * width) < 2
    k = browser.execute_script("return arguments[0].clientWidth / arguments[0].naturalWidth", picture)
    assert [box.size["width"] for box in browser.find_elements(By.CSS_SELECTOR, "#marker .box")] == [
        pytest.approx(227 * mark["scale"] * k, abs=1.5)] * 2
    click_photo(340, 340)  # unmarked, then marked again: the same tile under the click
    assert browser.find_element(By.ID, "marked").text == "1 tile marked"
    click_photo(340, 340)
    click(browser, "#zoom-out")
    assert browser.find_element(By.ID, "zoom").text == "100%"
    click(browser, "#save-labels")
    WebDriverWait(browser, 10).until(lambda _: (downloads / "labels.csv").is_file())
    with open(downloads / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["x"], r["y"], r["width"], r["height"], r["label"]) for r in rows] == [
        (str(photo.resolve()), "0", "0", "227", "227", "Negative"),
        (str(photo.resolve()), "226", "226", "227", "227", "Positive")]
    assert not [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


# ----------------------------------------------------------------------------------------------
# A survey to hand over: 17 photos through predict.py --report with a header, its CSV beside it

SURVEY_PHOTOS = 17


@pytest.fixture(scope="module")
def survey(tmp_path_factory, negative_patches, positive_patches):
    """(report's index.html, {path: CSV row}) of predict.py on 17 photos taken on three days, each with
    its GPS position in its EXIF, 11 with a planted crack; the header from options and a file."""
    from conftest import mosaic

    work = tmp_path_factory.mktemp("survey")
    (work / "site" / "day 2").mkdir(parents=True)
    for i in range(SURVEY_PHOTOS):
        photo = mosaic(negative_patches[i], positive_patches[i], 4, 3, {(i % 4, i % 3)} if i % 3 else set())
        exif = Image.Exif()
        exif[0x8769] = {36867: f"2024:05:{1 + i % 3:02d} 10:{i:02d}:00"}
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2], gps[3], gps[4] = "N", (51.0, 30.0, float(i)), "W", (0.0, 7.0, 39.0)
        Image.fromarray(photo).save(work / "site" / ("day 2" if i >= 12 else "") / f"IMG_{i + 1:04d}.jpg", exif=exif)
    (work / "info.txt").write_text("inspector: A. Inspector\nnotes: North wall, from the scaffold.\n  <b>Not</b> the roof.\n")
    result = run("predict.py", work / "site", "--report", work / "report", "--csv", work / "survey.csv",
                 "--title", "Block C <survey>", "--site", "12 Quay Street", "--report-info", work / "info.txt", cwd=work)
    assert result.returncode == 0, result.stderr
    with open(work / "survey.csv", newline="") as f:
        return work / "report" / "index.html", {row["path"]: row for row in csv.DictReader(f)}


@pytest.fixture
def survey_page(browser, survey):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(survey[0].as_uri())
    browser.get_log("browser")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('td.thumb img')).every(i => i.complete && i.naturalWidth > 0)"))
    return browser


@pytest.mark.slow
def test_the_header_and_summary_say_who_where_when_and_what_to_look_at_first(survey_page, survey):
    from selenium.webdriver.common.by import By

    page, rows = survey_page, survey[1]
    assert page.find_element(By.TAG_NAME, "h1").text == page.title == "Block C <survey>"
    about = page.find_element(By.CSS_SELECTOR, ".about").text.splitlines()
    assert about == ["Site", "12 Quay Street", "Inspector", "A. Inspector", "Photos taken", "2024-05-01 to 2024-05-03",
                     "Notes", "North wall, from the scaffold.", "<b>Not</b> the roof."]
    summary = page.find_element(By.CSS_SELECTOR, ".summary").text
    verdicts = collections.Counter(row["verdict"] for row in rows.values())
    assert verdicts["crack"] and verdicts["no crack"]
    assert (f"{SURVEY_PHOTOS} inputs: {verdicts['crack']} crack, {verdicts['uncertain']} uncertain, "
            f"{verdicts['no crack']} no crack.") in summary
    first = [item.text for item in page.find_elements(By.CSS_SELECTOR, ".summary ol li")]
    flagged = sorted((row for row in rows.values() if row["verdict"] != "no crack"),  # strongest, then fewest flagged
                     key=lambda row: (-float(row["crack_probability"][:5]), float(row["cracked_share"])))
    site = survey[0].parent.parent / "site"
    assert [item.split(": ")[0] for item in first] == [Path(row["path"]).relative_to(site).as_posix()
                                                        for row in flagged[:5]]  # below the folder given
    assert "Flagged tiles: the tiles whose crack probability reaches the threshold (0.5)" in summary
    assert "does not diagnose" in page.find_element(By.CSS_SELECTOR, ".limits").text
    page.find_element(By.CSS_SELECTOR, ".summary ol a").click()  # to the photo's row
    assert page.execute_script("return location.hash") == "#row-" + str(list(rows).index(flagged[0]["path"]))


@pytest.mark.slow
def test_the_page_shows_the_csvs_probabilities_flagged_tiles_and_gps(survey_page, survey):
    from selenium.webdriver.common.by import By

    shown = survey_page.find_elements(By.CSS_SELECTOR, "#inputs tbody tr:first-child")
    assert len(shown) == SURVEY_PHOTOS == len(survey[1])
    for tr, row in zip(shown, survey[1].values()):
        probability = tr.find_element(By.CSS_SELECTOR, f"td:nth-child({PROBABILITY_COLUMN}) span")
        assert probability.text == row["crack_probability"][:5] and probability.get_attribute("title") == row[
            "crack_probability"]  # the CSV's 5 decimals, cut alike
        assert tr.find_element(By.CSS_SELECTOR, "td:nth-child(6)").text == (
            f"{wording.percent(float(row['cracked_share']))} ({row['cracked_tiles']} of {row['tiles']})")
        assert "51.50" in tr.text and "° N, 0.12750° W" in tr.text
    assert survey_page.find_element(By.CSS_SELECTOR, "thead th:nth-child(6)").text == "FLAGGED TILES"


@pytest.mark.slow
def test_printed_to_pdf_every_photo_has_its_heat_map(survey_page, survey):
    import base64
    import re

    figure_width = cv2.imread(str(next((survey[0].parent / "figures").glob("*.jpg")))).shape[1]
    pdf = base64.b64decode(survey_page.print_page())
    assert pdf.startswith(b"%PDF")
    widths = [int(w) for w in re.findall(rb"/Subtype\s*/Image\b[^>]*?/Width\s+(\d+)", pdf)
              + re.findall(rb"/Width\s+(\d+)[^>]*?/Subtype\s*/Image\b", pdf)]
    assert widths.count(figure_width) == SURVEY_PHOTOS, widths  # each figure once, at its full resolution
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= SURVEY_PHOTOS // 2



def test_printing_flows_from_the_summary_the_first_row_on_page_1_and_a_row_with_its_figure(browser, tmp_path):
    import base64

    rows = []
    for i in range(4):  # portrait photos' figures, each taller than what a long header leaves of page 1
        figure = f"figures/PHOTO_{i}_prediction.jpg"
        (tmp_path / "figures").mkdir(exist_ok=True)
        assert cv2.imwrite(str(tmp_path / figure), concrete(i, 1600, 1200))
        rows.append(dict(path=f"site/PHOTO_{i}.jpg", verdict="crack", reason="3 tiles above 0.90", probability=0.9,
                         share=0.1, flagged=4, tiles=40, figure=figure, thumbnail=None, taken="", camera="", error=""))
    notes = "\n".join(f"line {i} of the notes" for i in range(12))
    index = html_report.write_report(tmp_path, "t", ["model: m"], rows, header={"site": "12 Quay", "notes": notes})
    browser.get(index.as_uri())
    pages = pdf_pages(base64.b64decode(browser.print_page()))
    row = "PHOTO_{0}.jpgsite/PHOTO_{0}.jpgcrack3tilesabove0.90"  # a row of the table (the summary names photos too)
    assert "line11ofthenotes" in pages[0] and row.format(0) in pages[0]  # not a half-blank page 1
    for i in range(1, 4):  # every later row at the top of a page, its figure below it
        assert [page.split("INSPECTOR")[1].startswith(row.format(i)) for page in pages].count(True) == 1
    assert len(pages) <= len(rows) + 1


def test_a_long_note_shows_3_lines_in_its_row_and_all_of_it_on_paper_below_the_row(browser, tmp_path):
    import base64

    from selenium.webdriver.common.by import By

    (tmp_path / "figures").mkdir()
    assert cv2.imwrite(str(tmp_path / "figures" / "wall_prediction.jpg"), concrete(1))
    mark = {"source": "site/wall.jpg", "tile": 80, "before": None, "older": None, "w": 320, "h": 240, "tw": 80,
            "th": 80, "xs": [0, 80, 160, 240], "ys": [0, 80, 160], "top": 40, "scale": 1, "labels": ["noncrack", "crack"],
            "shown": ["no crack", "crack"], "badges": ["v-no-crack", "v-crack"], "photo": None}
    rows = [dict(path=f"site/wall {i}.jpg", verdict="crack", reason="3 tiles above 0.90", probability=0.9, share=0.1,
                 flagged=4, tiles=12, figure="figures/wall_prediction.jpg", thumbnail=None, taken="2024-05-02 10:01:00",
                 camera="Apple iPhone 13", place="51.50028° N, 0.12750° W", error="", mark=mark) for i in range(2)]
    note = " ".join(f"word{i} of a long note the inspector wrote about this wall" for i in range(12)) + " THE-END"
    short = "a joint of the formwork, not a crack: seen on site today"  # whole in its row, on paper too
    index = html_report.write_report(tmp_path, "t", [], rows, notes={0: {"verdict": "", "note": note},
                                                                     1: {"verdict": "no crack", "note": short}})
    browser.get(index.as_uri())

    def lines_shown():
        return browser.execute_script("const n = document.querySelector('#row-0 .note');"
                                      "return n.clientHeight / parseFloat(getComputedStyle(n).lineHeight)")

    shown = browser.find_element(By.CSS_SELECTOR, "#row-0 .note")
    assert shown.get_attribute("title") == note and round(lines_shown()) == 3  # was 8 lines and more
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert round(lines_shown()) == 3
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    printed = pdf_text(base64.b64decode(browser.print_page()))
    assert squashed(f"The inspector's note: {note}") in printed and printed.count("THE-END") == 1
    assert squashed(short) in printed and printed.count("Theinspector'snote") == 1

def open_marking(driver, row):
    """Open the marking dialog of a row; returns (the figure's <img>, its marking data)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    click(driver, f"#row-{row} button.mark")
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "const i = document.querySelector('#marker .stage img'); return i.complete && i.naturalWidth > 0"
        f" && document.getElementById('marker-name').textContent === JSON.parse("
        f"document.getElementById('marking').textContent)['{row}'].path"))
    mark = json.loads(driver.find_element(By.ID, "marking").get_attribute("textContent"))[str(row)]
    return driver.find_element(By.CSS_SELECTOR, "#marker .stage img"), mark


def click_tile(driver, picture, mark, x, y):
    """Click a point of the photo in the dialog, in the photo's own pixels (Selenium's offsets are from the centre)."""
    from selenium.webdriver.common.action_chains import ActionChains

    k = driver.execute_script("return arguments[0].clientWidth / arguments[0].naturalWidth", picture)
    left, top = x * mark["scale"] * k, (mark["top"] + y * mark["scale"]) * k
    ActionChains(driver).move_to_element_with_offset(
        picture, round(left - picture.size["width"] / 2), round(top - picture.size["height"] / 2)).click().perform()


def leaving_asks(driver):
    return driver.execute_script("const e = new Event('beforeunload', {cancelable: true}); "
                                 "window.dispatchEvent(e); return e.defaultPrevented")


@pytest.mark.slow
def test_notes_verdicts_and_marks_per_photo_survive_a_reload_and_are_saved(survey_page, survey, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from support.labels import read_labels

    page, paths = survey_page, list(survey[1])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    assert not leaving_asks(page)
    picture, mark = open_marking(page, 1)
    page.find_element(By.CSS_SELECTOR, '#marker input[value="Negative"]').click()
    click_tile(page, picture, mark, 110, 110)
    click_tile(page, picture, mark, 340, 340)
    assert page.find_element(By.ID, "marked").text == "2 tiles marked"

    plain = page.find_element(By.CSS_SELECTOR, "#marker img.plain")  # the surface without the heat map's tint
    assert not plain.is_displayed()
    click(page, "#plain")
    WebDriverWait(page, 10).until(lambda d: plain.is_displayed() and d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", plain))
    k = page.execute_script("return arguments[0].clientWidth / arguments[0].naturalWidth", picture)
    assert abs(plain.size["width"] - mark["w"] * mark["scale"] * k) < 1.5
    assert abs(plain.location["y"] - picture.location["y"] - mark["top"] * k) < 1.5
    assert len(page.find_elements(By.CSS_SELECTOR, "#marker .box")) == 2  # the marks stay drawn over it
    click(page, "#plain")
    assert not plain.is_displayed()

    Select(page.find_element(By.ID, "override")).select_by_value("no crack")
    page.find_element(By.ID, "note").send_keys("hairline in the render, <b>not</b> structural")
    click(page, '#marker button[value="close"]')
    said = "hairline in the render, <b>not</b> structural"
    assert page.find_element(By.CSS_SELECTOR, "#row-1 .inspector").text == said
    assert page.find_element(By.CSS_SELECTOR, "#row-1 td.verdict").text == "no crack\ninspector; model: crack"
    assert page.find_element(By.CSS_SELECTOR, "#row-1 button.mark").text == "mark (2)"
    picture, mark = open_marking(page, 2)  # another photo: its own count, note and verdict
    assert page.find_element(By.ID, "marked").text == "0 tiles marked"
    assert page.find_element(By.ID, "note").get_attribute("value") == "" and not page.find_elements(
        By.CSS_SELECTOR, "#marker .box")
    assert Select(page.find_element(By.ID, "override")).first_selected_option.text == "as the model: crack"
    assert page.find_element(By.CSS_SELECTOR, '#marker input[value="Negative"]').is_selected()  # as chosen before
    page.find_element(By.CSS_SELECTOR, '#marker input[value="Positive"]').click()
    click_tile(page, picture, mark, 340, 340)
    assert page.find_element(By.ID, "marked").text == "1 tile marked"
    click(page, '#marker button[value="close"]')
    assert leaving_asks(page)  # not saved yet: the browser asks before the page goes

    page.refresh()
    WebDriverWait(page, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#row-1 .inspector").text == said)
    assert page.find_element(By.CSS_SELECTOR, "#row-2 button.mark").text == "mark (1)"
    assert leaving_asks(page)
    open_marking(page, 1)
    assert page.find_element(By.ID, "marked").text == "2 tiles marked"
    assert [box.text for box in page.find_elements(By.CSS_SELECTOR, "#marker .box")] == ["no crack", "no crack"]
    assert page.find_element(By.ID, "note").get_attribute("value") == "hairline in the render, <b>not</b> structural"
    click(page, "#save-labels")
    click(page, "#save-notes")
    WebDriverWait(page, 10).until(lambda _: (downloads / "labels.csv").is_file() and (downloads / "notes.csv").is_file())
    assert not leaving_asks(page)
    source = [str(Path(path).resolve()) for path in paths]
    assert [(str(p), box, label) for p, box, label in read_labels(downloads / "labels.csv")] == [  # data_prep reads it
        (source[1], (0, 0, 227, 227), "Negative"), (source[1], (226, 226, 227, 227), "Negative"),
        (source[2], (226, 226, 227, 227), "Positive")]
    with open(downloads / "notes.csv", newline="") as f:
        notes = list(csv.DictReader(f))
    assert [row["path"] for row in notes] == source
    assert notes[1] == {"path": source[1], "model_verdict": "crack", "inspector_verdict": "no crack",
                        "note": "hairline in the render, <b>not</b> structural", "marked_tiles": "2", "tile": "227"}
    assert notes[2]["marked_tiles"] == "1" and notes[2]["inspector_verdict"] == notes[2]["note"] == ""

    # Another report, even of the same photos in the same folder, keeps its own notes and marks.
    index = survey[0]
    other = index.with_name("other.html")
    text = index.read_text(encoding="utf-8")
    other.write_text(text.replace(f'data-report="{page.find_element(By.TAG_NAME, "body").get_attribute("data-report")}"',
                                  'data-report="another"'), encoding="utf-8")
    page.get(other.as_uri())
    assert page.find_element(By.CSS_SELECTOR, "#row-1 .inspector").text == ""
    assert page.find_element(By.CSS_SELECTOR, "#row-1 button.mark").text == "mark"
    assert not [entry for entry in page.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


@pytest.mark.slow
def test_a_model_of_other_classes_has_its_class_names_and_a_colour_each(browser, tmp_path):
    from selenium.webdriver.common.by import By

    names = ["blotch", "clean", "line"]
    rows = [dict(path=f"{name}.jpg", verdict=name, reason="", probability=0.9, share=0.5, flagged=3, tiles=6,
                 figure=None, thumbnail=None, taken="", camera="", error="") for name in [*names, "uncertain"]]
    index = html_report.write_report(tmp_path, "Report (blotch, clean, line)", [], rows,
                                     verdicts.verdict_rule({"class_names": names}))
    browser.get(index.as_uri())
    buttons = [button.text for button in browser.find_elements(By.CSS_SELECTOR, ".filter button")]
    assert buttons == ["All 4", "blotch 1", "clean 1", "line 1", "uncertain 1", "error 0"]
    assert "the tiles of the photo's class, counted" in browser.find_element(By.CSS_SELECTOR, ".summary").text
    badges = browser.find_elements(By.CSS_SELECTOR, "#inputs .badge")
    colours = [browser.execute_script("return getComputedStyle(arguments[0]).backgroundColor", b) for b in badges]
    # the figures' colour of each class (figures.verdict_colour), so a page and its figures agree
    assert colours == [f"rgb{figures.verdict_colour(v, names)}" for v in [*names, "uncertain"]]
    assert len(set(colours)) == 4


def test_the_before_column_and_its_filter_appear_only_when_two_models_were_compared(tmp_path):
    rows = [dict(path=f"{i}.jpg", verdict=verdict, reason="", probability=p, share=0.1, figure=None, thumbnail=None,
                 taken="", camera="", error="") for i, (verdict, p) in enumerate([("no crack", 0.2), ("crack", 0.9)])]
    page = html_report.write_report(tmp_path, "t", [], rows).read_text(encoding="utf-8")
    assert ">Before</th>" not in page and 'data-key="changed"' not in page
    rows[0] |= {"before": {"verdict": "crack", "probability": 0.97}, "changed": "crack -> no crack"}
    rows[1] |= {"before": {"verdict": "crack", "probability": 0.95}, "changed": None}
    page = html_report.write_report(tmp_path, "t", [], rows).read_text(encoding="utf-8")
    assert ">Before</th>" in page and '<tbody id="row-0" data-verdict="no crack" data-changed="crack -&gt; no crack">' in page
    assert ('<td data-sort="0"><b class="nowrap">crack -&gt; no crack</b><br>crack <span class="more">0.970</span>'
            '<span class="callout"></span></td>') in page
    assert 'data-filter="crack -&gt; no crack" aria-pressed="false">changed: crack -&gt; no crack <b>1</b>' in page


@pytest.mark.slow
def test_compare_with_lists_every_changed_verdict_in_the_terminal_the_csv_and_the_report(
        browser, trained_dir, tmp_path, negative_patches, positive_patches):
    """A model trained for two epochs against the bundled one on sample patches: the weak model changes
    some verdicts, and each change is said in all three places, lost cracks first; one against the
    inspector's verdict is called out as lost."""
    import re

    from conftest import mosaic, write_rgb
    from selenium.webdriver.support.ui import WebDriverWait

    from conftest import PRETRAINED, SAMPLE_DATA

    site = tmp_path / "site"
    site.mkdir()
    for name in ("Positive", "Negative"):
        for path in sorted((SAMPLE_DATA / name).glob("*.jpg"))[:12]:
            (site / f"{name}_{path.name}").write_bytes(path.read_bytes())
    write_rgb(site / "wall.jpg", mosaic(negative_patches[30], positive_patches[30], 4, 3, {(1, 1)}))  # cut into tiles
    result = run("predict.py", site, "--model", trained_dir / "model.keras", "--compare-with", PRETRAINED,
                 "--csv", tmp_path / "compared.csv", "--report", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    assert "compared with: pretrained/crack_cnn" in result.stdout
    with open(tmp_path / "compared.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        said = f"{row['verdict_before']} -> {row['verdict']}"
        assert row["changed"] == ("" if row["verdict_before"] == row["verdict"] else said), row
    changed = {row["path"]: row["changed"] for row in rows if row["changed"]}
    assert changed, "the two-epoch model agreed with the bundled one everywhere: nothing to compare"

    listed = re.findall(r"^  (.+ -> .+): (.+) \(\d\.\d{3} -> \d\.\d{3}\)$", result.stdout, re.M)
    assert f"verdicts changed on {len(changed)} of {len(rows)} images" in result.stdout
    assert {path: change for change, path in listed} == changed  # every change, each once
    ranks = [verdicts.LOSSES.index(change) if change in verdicts.LOSSES else len(verdicts.LOSSES) for change, _ in listed]
    assert ranks == sorted(ranks)  # lost cracks first

    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert str(tmp_path) not in page and str(trained_dir.parent) not in page  # the models named by their folder
    assert f"model: {trained_dir.name}/model." in page
    browser.get((tmp_path / "report" / "index.html").as_uri())
    headers = [th.text for th in browser.find_elements("css selector", "#inputs thead th")]
    column = headers.index("BEFORE") + 1
    for change, count in collections.Counter(changed.values()).items():
        click(browser, f'.filter button[data-key="changed"][data-filter="{change}"]')
        assert [text.split("\n")[0] for text in cells(browser, column)] == [change] * count
    click(browser, '.filter button[data-key="verdict"][data-filter=""]')
    assert len(visible_rows(browser)) == len(rows)
    summary = browser.find_element("css selector", ".summary .compared").text
    assert summary.startswith(f"Against the older model (Before): {len(changed)} of {len(rows)} verdicts changed (")

    # The inspector had agreed with the older model on the photos now changed: each is called out as lost.
    said = {path: change.split(" -> ")[0] for path, change in changed.items()
            if change.split(" -> ")[0] in ("crack", "no crack")}
    assert said, changed
    notes = tmp_path / "notes.csv"
    with open(notes, "w", newline="") as f:
        csv.writer(f).writerows([["path", "model_verdict", "inspector_verdict", "note", "marked_tiles", "tile"],
                                 *[[path, "", verdict, "", 0, 227] for path, verdict in said.items()]])
    browser.find_element("id", "load").send_keys(str(notes))
    order = [row["path"] for row in rows]
    for path, verdict in said.items():
        callout = browser.find_element("css selector", f"#row-{order.index(path)} .callout").text
        assert callout == f"lost: you said {verdict}"
    assert browser.find_element("id", "against").text.startswith(f"{len(said)} change")
    lost = [tr for tr in visible_rows(browser) if "lost: you said" in tr.text]
    assert len(lost) == len(said)

    # The photo cut into tiles: its flagged tiles before -> after, and the older model's heat map to toggle.
    wall = order.index(str(site / "wall.jpg"))
    before = browser.find_element("css selector", f"#row-{wall} td:nth-child({column})").text
    assert re.search(r"flagged \d+ \u2192 " + rows[wall]["cracked_tiles"] + "$", before, re.M), before
    picture, mark = open_marking(browser, wall)
    older = browser.find_element("css selector", "#marker img.older")
    assert not older.is_displayed()
    click(browser, "#older")
    WebDriverWait(browser, 10).until(lambda d: older.is_displayed() and d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", older))
    k = browser.execute_script("return arguments[0].clientWidth / arguments[0].naturalWidth", picture)
    assert abs(older.size["width"] - mark["w"] * mark["scale"] * k) < 1.5  # over the photo, where the new map is
    assert abs(older.location["y"] - picture.location["y"] - mark["top"] * k) < 1.5
    assert older.location["x"] == picture.location["x"]
    click(browser, '#marker button[value="close"]')


def test_a_report_of_other_classes_counts_tiles_only_when_it_cut_some(tmp_path):
    rule = verdicts.verdict_rule({"class_names": ["brick", "concrete"], "sure_threshold": 0.9})
    rows = [dict(path=f"{i}.jpg", verdict=verdict, reason="", probability=p, share=None, flagged=None, tiles=1,
                 figure=None, thumbnail=None, taken="", camera="", error="")
            for i, (verdict, p) in enumerate([("brick", 0.97), ("uncertain", 0.6), ("concrete", 0.99)])]
    page = html_report.write_report(tmp_path, "Report (brick, concrete)", [], rows, rule).read_text(encoding="utf-8")
    assert "crack" not in visible_text(page).lower()
    assert "Tiles of its class" not in page and "Flagged tiles" not in page
    assert 'Least sure, to look at first:</p><ol><li><a href="#row-1">1.jpg</a>: uncertain, probability 0.600</li>' in page
    rows[0] |= {"share": 0.25, "flagged": 3, "tiles": 12}  # one image cut into tiles (predict --tile)
    page = html_report.write_report(tmp_path, "t", [], rows, rule).read_text(encoding="utf-8")
    assert ">Tiles of its class</th>" in page and "<b>Tiles of its class</b>: the tiles of the photo's class" in page


# ----------------------------------------------------------------------------------------------
# The inspector's word is the report's: on screen, on paper, in a fresh browser, in a final copy


def pdf_text(pdf, pages=None):
    """The text of a PDF as Chromium prints it, each run decoded with its font's ToUnicode map, without
    white space (Chromium splits words where it kerns) and with the ligatures spelt out; pages: only the
    content streams it picks from {object number: body} (pdf_pages)."""
    import re
    import zlib

    objects = {int(n): body for n, body in re.findall(rb"(\d+) 0 obj(.*?)endobj", pdf, re.S)}

    def stream(body):
        data = re.search(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S).group(1)
        return zlib.decompress(data) if b"/FlateDecode" in body else data

    fonts = {}  # a font's resource name -> {glyph: text}
    for number, body in objects.items():
        found = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if found:
            cmap, text = {}, stream(objects[int(found.group(1))])
            for glyph, code in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s", b"".join(
                    re.findall(rb"beginbfchar(.*?)endbfchar", text, re.S))):
                cmap[int(glyph, 16)] = bytes.fromhex(code.decode()).decode("utf-16-be")
            for start, end, code in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", b"".join(
                    re.findall(rb"beginbfrange(.*?)endbfrange", text, re.S))):
                cmap |= {glyph: chr(int(code, 16) + i) for i, glyph in enumerate(range(int(start, 16), int(end, 16) + 1))}
            fonts |= {name: cmap for name in re.findall(rb"/(\w+) %d 0 R" % number, pdf)}
    runs = []
    for body in (objects.values() if pages is None else pages(objects)):
        if b"stream" not in body or b"/Subtype /Image" in body or b"/FontFile" in body or b"/Length1" in body:
            continue
        try:
            content = stream(body)
        except zlib.error:
            continue
        font = {}
        for name, shown in re.findall(rb"/(\w+) [\d.]+ Tf|(\[[^\]]*\]\s*TJ|<[0-9A-Fa-f]*>\s*Tj)", content):
            font = fonts.get(name, {}) if name else font
            runs += ["".join(font.get(int(part[i:i + 4], 16), "?") for i in range(0, len(part), 4))
                     for part in re.findall(rb"<([0-9A-Fa-f]*)>", shown)]
    return re.sub(r"\s", "", "".join(runs)).replace("\ufb01", "fi").replace("\ufb02", "fl")


def pdf_pages(pdf):
    """The text of each printed page, in order (as pdf_text)."""
    import re

    def page_contents(number):
        def contents(objects):
            listed = re.search(rb"/Contents\s*(\[[^\]]*\]|\d+ 0 R)", objects[number]).group(1)
            return [objects[int(n)] for n in re.findall(rb"(\d+) 0 R", listed)]
        return contents

    objects = {int(n): body for n, body in re.findall(rb"(\d+) 0 obj(.*?)endobj", pdf, re.S)}
    root = next(body for body in objects.values() if re.search(rb"/Type\s*/Pages\b", body))
    kids = [int(n) for n in re.findall(rb"(\d+) 0 R", re.search(rb"/Kids\s*\[([^\]]*)\]", root).group(1))]
    return [pdf_text(pdf, page_contents(kid)) for kid in kids]


def squashed(text):
    return "".join(text.split())


@pytest.fixture
def fresh_browser(browser):
    """Another browser with a profile of its own: nothing kept from the other's localStorage."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def summary_counts(driver):
    from selenium.webdriver.common.by import By

    return [button.text for button in driver.find_elements(By.CSS_SELECTOR, '.filter button[data-key="verdict"]')]


@pytest.mark.slow
def test_an_override_and_a_note_are_the_reports_on_screen_on_paper_in_a_fresh_browser_and_a_final_copy(
        survey_page, survey, fresh_browser, tmp_path):
    import base64

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    page, rows = survey_page, survey[1]
    page.execute_script("localStorage.clear()")  # other tests' marks of this report
    page.refresh()
    marking = json.loads(page.find_element(By.ID, "marking").get_attribute("textContent"))
    row = next(i for i, m in marking.items() if m["verdict"] == "crack")
    counts = collections.Counter(row["verdict"] for row in rows.values())
    assert page.find_element(By.ID, "inspected").text == (
        "The inspector: no verdict given yet; every verdict above is the model's.")

    open_marking(page, row)
    Select(page.find_element(By.ID, "override")).select_by_value("no crack")
    page.find_element(By.ID, "note").send_keys("a joint of the formwork, =not a crack")
    click(page, '#marker button[value="close"]')
    badge = f"#row-{row} td.verdict"
    assert page.find_element(By.CSS_SELECTOR, badge).text == "no crack\ninspector; model: crack"
    colour = page.execute_script(f"return getComputedStyle(document.querySelector('{badge} .badge')).backgroundColor")
    assert colour == f"rgb{figures.VERDICT_COLOURS['no crack']}"
    with_inspector = (f"The inspector: 1 verdict given, 1 not the model's. With them in place of the model's: "
                      f"{counts['crack'] - 1} crack, {counts['uncertain']} uncertain, {counts['no crack'] + 1} no crack.")
    assert page.find_element(By.ID, "inspected").text == with_inspector
    assert f"{SURVEY_PHOTOS} inputs: {counts['crack']} crack" in page.find_element(By.CSS_SELECTOR, ".summary").text
    assert summary_counts(page) == [f"All {SURVEY_PHOTOS}", f"crack {counts['crack'] - 1}", f"uncertain {counts['uncertain']}",
                                    f"no crack {counts['no crack'] + 1}", "error 0"]
    click(page, '.filter button[data-filter="no crack"]')  # the filter goes by the inspector's verdict
    assert f"row-{row}" in [tr.find_element(By.XPATH, "..").get_attribute("id") for tr in visible_rows(page)]
    click(page, '.filter button[data-filter=""]')

    printed = pdf_text(base64.b64decode(page.print_page()))  # on paper too
    for said in ("no crack", "inspector; model: crack", "a joint of the formwork, =not a crack", with_inspector):
        assert squashed(said) in printed, said

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    picture, mark = open_marking(page, row)
    page.find_element(By.CSS_SELECTOR, '#marker input[value="Negative"]').click()
    click_tile(page, picture, mark, 110, 110)
    click(page, "#save-notes")
    click(page, "#save-labels")
    WebDriverWait(page, 10).until(lambda _: (downloads / "notes.csv").is_file() and (downloads / "labels.csv").is_file())
    click(page, '#marker button[value="close"]')

    # A colleague's browser, nothing kept: the saved files load back, matched by the path below the folder
    # when the full path is another computer's.
    elsewhere = downloads / "moved"
    elsewhere.mkdir()
    site = str(survey[0].parent.parent / "site")
    for name in ("notes.csv", "labels.csv"):
        (elsewhere / name).write_text((downloads / name).read_text().replace(site, "C:\\Users\\colleague\\site"))
    fresh_browser.get(survey[0].as_uri())
    assert fresh_browser.find_element(By.CSS_SELECTOR, badge).text == "crack"
    fresh_browser.find_element(By.ID, "load").send_keys(f"{elsewhere / 'notes.csv'}\n{elsewhere / 'labels.csv'}")
    WebDriverWait(fresh_browser, 10).until(lambda d: "labels.csv" in d.find_element(By.ID, "loaded").text)
    assert fresh_browser.find_element(By.ID, "loaded").text == (
        f"notes.csv: {SURVEY_PHOTOS} rows loaded; labels.csv: 1 row loaded")
    assert fresh_browser.find_element(By.CSS_SELECTOR, badge).text == "no crack\ninspector; model: crack"
    assert fresh_browser.find_element(By.CSS_SELECTOR, f"#row-{row} .inspector").text == (
        "a joint of the formwork, =not a crack")
    assert fresh_browser.find_element(By.ID, "inspected").text == with_inspector
    assert fresh_browser.find_element(By.CSS_SELECTOR, f"#row-{row} button.mark").text == "mark (1)"

    # The final copy: predict writes the notes into a new report, shown in any browser with nothing kept.
    final = tmp_path / "final"
    result = run("predict.py", site, "--report", final, "--final-copy", downloads / "notes.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fresh_browser.execute_script("localStorage.clear()")
    fresh_browser.get((final / "index.html").as_uri())
    assert fresh_browser.execute_script("return localStorage.length") == 0  # nothing kept, nothing needed
    assert fresh_browser.find_element(By.CSS_SELECTOR, badge).text == "no crack\ninspector; model: crack"
    assert fresh_browser.find_element(By.ID, "inspected").text == with_inspector
    assert "final copy: the inspector's verdicts and notes" in fresh_browser.find_element(By.TAG_NAME, "header").text
    printed = pdf_text(base64.b64decode(fresh_browser.print_page()))
    assert squashed("a joint of the formwork, =not a crack") in printed and squashed(with_inspector) in printed

    with open(downloads / "notes.csv", newline="") as f:
        notes = list(csv.DictReader(f))
    assert [r["tile"] for r in notes] == ["227"] * SURVEY_PHOTOS  # the tile data_prep cuts a reviewed photo at
    (tmp_path / "other.csv").write_text("path,inspector_verdict,note\nIMG_0001.jpg,stain,\n")
    for notes_file, fragment in ((tmp_path / "other.csv", "'stain' is not one of this model's (no crack, crack)"),
                                 (REPO / "sample_data" / "Positive" / "08545.jpg", "is not a notes.csv"),
                                 (tmp_path / "none.csv", "No such file")):
        failed = run("predict.py", site, "--report", tmp_path / "refused", "--final-copy", notes_file, cwd=tmp_path)
        assert_clean_failure(failed, fragment)
        assert len(failed.stderr.strip().splitlines()) == 1 and not (tmp_path / "refused").exists()


# ----------------------------------------------------------------------------------------------
# A report to send: 16 phone-sized photos, the folder and its PDF each under 8 MB, no folder of this computer

SEND_LIMIT = 8_000_000  # bytes: what an e-mail carries


@pytest.fixture(scope="module")
def sixteen(tmp_path_factory, negative_patches, positive_patches):
    """(work folder, report folder) of predict.py --report on 16 photos of 2724 x 2043 px (a 5.6 MP
    phone picture's scale: 12 x 9 sample patches), some portrait, most with a planted crack."""
    from conftest import mosaic, write_rgb

    work = tmp_path_factory.mktemp("sixteen")
    (work / "site" / "level 2").mkdir(parents=True)
    for i in range(16):
        photo = mosaic(negative_patches[20 + i], positive_patches[20 + i], 12, 9, {(i % 12, i % 9)} if i % 4 else set())
        photo = photo.transpose(1, 0, 2) if i % 5 == 0 else photo
        write_rgb(work / "site" / ("level 2" if i >= 10 else "") / f"IMG_{i + 1:04d}.jpg", photo,
                  [cv2.IMWRITE_JPEG_QUALITY, 92])
    result = run("predict.py", work / "site", "--report", work / "report", "--csv", work / "site.csv", cwd=work)
    assert result.returncode == 0, result.stderr
    return work, work / "report"


@pytest.mark.slow
def test_a_report_of_16_photos_and_its_pdf_are_small_enough_to_send_and_name_no_folder_of_this_computer(
        browser, sixteen):
    import base64

    from selenium.webdriver.support.ui import WebDriverWait

    work, report = sixteen
    files = [path for path in report.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < SEND_LIMIT
    here = [str(work), str(work.resolve()), work.resolve().as_uri()]
    for path in files:  # the page, and the figures, photos and thumbnails (which name their photo inside)
        data = path.read_bytes()
        assert not [folder for folder in here if folder.encode() in data], path
    assert "/tmp/" not in visible_text((report / "index.html").read_text(encoding="utf-8"))

    browser.get((report / "index.html").as_uri())
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('td.thumb img')).every(i => i.complete && i.naturalWidth > 0)"))
    pdf = base64.b64decode(browser.print_page())
    assert len(pdf) < SEND_LIMIT
    assert pdf.count(b"/DCTDecode") >= 16  # every figure printed, as the JPEG it is
    printed = pdf_text(pdf)
    assert "IMG_0011.jpg" in printed and squashed("level 2/IMG_0011.jpg") in printed  # the path below the folder
    assert not [folder for folder in here if squashed(folder) in printed]

    with open(work / "site.csv", newline="") as f:  # the CSV keeps the full path: data_prep opens it
        assert all(Path(row["path"]).is_absolute() for row in csv.DictReader(f))


def test_a_notes_file_is_matched_to_its_photos_by_full_path_or_the_path_below_the_folder(tmp_path):
    from support import inspection

    site = tmp_path / "site"
    rows = [{"path": "day 1/IMG_1.jpg", "source": str(site / "day 1" / "IMG_1.jpg")},
            {"path": "IMG_1.jpg", "source": str(site / "IMG_1.jpg")},
            {"path": "broken.txt"}]  # failed: no photo to note
    notes = tmp_path / "notes.csv"
    with open(notes, "w", newline="") as f:
        csv.writer(f).writerows([inspection.NOTES_COLUMNS,
                                 [site / "IMG_1.jpg", "crack", "no crack", "'=joint", 2, 227],  # this computer's
                                 ["D:\\survey\\site\\day 1\\IMG_1.jpg", "crack", "", "seen", 0, 227],  # another's
                                 ["site/IMG_9.jpg", "crack", "crack", "", 0, 227],  # relative to the CSV: not here
                                 ["site/day 1/IMG_1.jpg", "crack", "", "", 0, 227]])  # nothing said: left as it is
    read = inspection.read_notes(notes)
    assert read[0][1:] == ("no crack", "=joint")  # a spreadsheet's guard taken off
    assert inspection.match_notes(read, rows, notes) == (
        {1: {"verdict": "no crack", "note": "=joint"}, 0: {"verdict": "", "note": "seen"}}, ["site/IMG_9.jpg"])

    page = html_report.write_report(tmp_path / "report", "t", [], [
        dict(row, verdict="crack", reason="", probability=0.9, share=0.1, figure=None, thumbnail=None, taken="",
             camera="", error="") for row in rows], notes={1: {"verdict": "no crack", "note": "</script>"}})
    text = page.read_text(encoding="utf-8")
    assert 'data-baked="{&quot;1&quot;: {&quot;verdict&quot;: &quot;no crack&quot;, &quot;note&quot;: ' \
           '&quot;&lt;/script&gt;&quot;}}"' in text and "final copy: the inspector's verdicts" in text
    assert inspection.last_part("/home/me/site/labels.csv") == "labels.csv"
    assert inspection.last_part("C:\\Users\\me\\labels.csv") == "labels.csv"
    assert inspection.last_part("Özgenel (doi:10.17632/5y9wdsg2zt.2)") == "Özgenel (doi:10.17632/5y9wdsg2zt.2)"
