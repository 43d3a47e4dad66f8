"""predict.py: verdicts, figures and CSVs for single images, folders and whole photos."""

import csv
import json

import cv2
import numpy as np
import pytest
from conftest import PRETRAINED, SAMPLE_DATA, assert_clean_failure, mosaic, run, sample_files, write_rgb

import data_prep
import predict
from support import crack_rules, images, model_files, verdicts
from support import photos as tiling

CELL = 227


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def copy_sample(name, index, folder, new_name):
    path = folder / new_name
    path.write_bytes(sample_files(name)[index].read_bytes())
    return path


# ----------------------------------------------------------------------------------------------
# Single images and folders


def banner_colour(figure):
    """The colour of the verdict text in a figure's banner: its most saturated pixels."""
    banner = figure[:40].reshape(-1, 3).astype(int)
    return banner[np.argmax(banner.max(axis=1) - banner.min(axis=1))]


def test_named_images_get_a_verdict_and_a_figure_in_the_predictions_folder(tmp_path):
    inputs, work = tmp_path / "inputs", tmp_path / "work"
    inputs.mkdir(), work.mkdir()
    crack = copy_sample("Positive", 3, inputs, "wall.jpg")
    clean = copy_sample("Negative", 3, inputs, "floor.jpg")
    result = run("predict.py", crack, clean, cwd=work)
    assert result.returncode == 0, result.stderr
    assert "the bundled model" in result.stdout.splitlines()[0]
    assert f"{crack}: crack (crack probability" in result.stdout
    assert f"{clean}: no crack (crack probability" in result.stdout
    assert sorted(p.name for p in inputs.iterdir()) == ["floor.jpg", "wall.jpg"]  # nothing among the inputs
    for path, (red, green) in ((crack, (200, 0)), (clean, (0, 130))):
        figure = predict_figure(work / "predictions" / f"{path.stem}_prediction.png")
        assert tuple(banner_colour(figure)[:2]) == (red, green)
        # below the banner, the image enlarged twice with sharp pixels (227 px is under the 480 px minimum)
        decoded = images.decode_image(path)
        expected = cv2.resize(decoded, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(figure[-len(expected):], expected)


def predict_figure(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_outputs_are_never_read_back_as_inputs(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        copy_sample("Positive", i, folder, f"p{i}.jpg")
    for _ in range(2):  # figures written into the input folder itself, twice
        result = run("predict.py", folder, "--figures", "--out", folder, "--csv", tmp_path / "out.csv")
        assert result.returncode == 0, result.stderr
        assert "3 images classified" in result.stdout
    assert len(list(folder.glob("*_prediction.png"))) == 3
    assert len(read_csv(tmp_path / "out.csv")) == 3


def test_a_folder_is_classified_in_batches_into_a_csv(tmp_path):
    out_csv = tmp_path / "results.csv"
    result = run("predict.py", SAMPLE_DATA, "--model", PRETRAINED, "--csv", out_csv)
    assert result.returncode == 0, result.stderr
    rows = read_csv(out_csv)
    assert len(rows) == 400 and set(rows[0]) >= {"path", "crack_probability", "verdict"}
    correct = [(r["verdict"] == "crack") == ("/Positive/" in r["path"]) for r in rows]
    assert np.mean(correct) >= 0.98
    assert "400 images classified" in result.stdout
    assert not list(SAMPLE_DATA.rglob("*_prediction.png"))  # folders get no figure per image by default


def test_bad_inputs_are_reported_and_the_rest_still_classified(tmp_path, positive_patches):
    good = copy_sample("Positive", 0, tmp_path, "good.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_text("this is not a JPEG")
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(positive_patches[1], cv2.COLOR_RGB2GRAY))
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), positive_patches[2][..., ::-1].astype(np.uint16) * 257)
    rgba = tmp_path / "rgba.png"
    cv2.imwrite(str(rgba), np.dstack([positive_patches[3][..., ::-1], np.full((CELL, CELL), 255, np.uint8)]))
    pixel = tmp_path / "pixel.png"
    cv2.imwrite(str(pixel), np.zeros((1, 1, 3), np.uint8))
    strip = tmp_path / "strip.png"
    cv2.imwrite(str(strip), np.full((3, 4000, 3), 128, np.uint8))
    thin = tmp_path / "thin.jpg"  # thin but usable: tiled with 16 px tiles, drawn on a padded figure
    cv2.imwrite(str(thin), np.full((16, 4000, 3), 128, np.uint8))
    out_csv = tmp_path / "out.csv"
    result = run("predict.py", good, tmp_path / "missing.jpg", broken, gray, deep, rgba, pixel, strip, thin,
                 "--csv", out_csv, "--figures", "--out", tmp_path / "figures")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 4, result.stderr
    assert errors[0] == f"error: {tmp_path / 'missing.jpg'}: no such file or folder"
    assert "broken.jpg" in errors[1] and "not a readable image" in errors[1]
    assert "pixel.png: too small (1x1 px" in errors[2] and "strip.png: too small (4000x3 px" in errors[3]
    rows = {r["path"]: r for r in read_csv(out_csv)}
    assert list(rows) == [str(p) for p in (good, broken, gray, deep, rgba, pixel, strip, thin, tmp_path / "missing.jpg")]
    assert all(rows[str(p)]["verdict"] == "crack" for p in (good, gray, deep, rgba))
    assert rows[str(thin)]["verdict"] == "no crack"
    assert rows[str(pixel)]["verdict"] == "error" and rows[str(pixel)]["error"].startswith("too small")
    assert rows[str(tmp_path / "missing.jpg")]["error"] == "no such file or folder"
    assert (tmp_path / "figures" / "thin_prediction.png").is_file()


@pytest.mark.slow
def test_missing_damaged_or_foreign_model_is_a_clear_error(tmp_path, trained_dir):
    import zipfile

    image = copy_sample("Positive", 0, tmp_path, "a.jpg")
    assert_clean_failure(run("predict.py", image, "--model", tmp_path / "none.keras"),
                         f"model file {tmp_path / 'none.keras'} does not exist")
    damaged = tmp_path / "damaged.keras"
    damaged.write_text("not a model")
    assert_clean_failure(run("predict.py", image, "--model", damaged), "cannot load model")
    # a Keras model saved without what its output means: predict refuses to guess
    anonymous = tmp_path / "anonymous.keras"
    with zipfile.ZipFile(trained_dir / "model.keras") as source, zipfile.ZipFile(anonymous, "w") as copy:
        for item in source.namelist():
            if item != "crack_classifier.json":
                copy.writestr(item, source.read(item))
    assert_clean_failure(run("predict.py", image, "--model", anonymous), "does not say what its output means")


def test_predict_feeds_the_model_exactly_what_data_prep_cached(tmp_path, positive_patches):
    src = tmp_path / "dataset"
    for name in ("Positive", "Negative"):
        (src / name).mkdir(parents=True)
        for path in sample_files(name)[:8]:
            (src / name / path.name).write_bytes(path.read_bytes())
    patch = positive_patches[5]
    cv2.imwrite(str(src / "Positive" / "gray.png"), cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(src / "Positive" / "deep.png"), patch[..., ::-1].astype(np.uint16) * 257)
    cv2.imwrite(str(src / "Positive" / "rgba.png"), np.dstack([patch[..., ::-1], np.full((CELL, CELL), 9, np.uint8)]))
    write_rgb(src / "Positive" / "big.jpg", cv2.resize(patch, (400, 300)))
    write_rgb(src / "Positive" / "small.png", cv2.resize(patch, (40, 50)))
    cache = tmp_path / "cache"
    data_prep.main(["--src", str(src), "--out", str(cache), "--workers", "1"])
    meta = json.loads((cache / "meta.json").read_text())
    compared = 0
    for split in data_prep.SPLITS:
        x = np.load(cache / f"{split}_x.npy")
        for row, path in enumerate(meta["files"][split]):
            image = images.decode_image(path)
            assert not tiling.is_photo(image, predict.PATCH_SIZE)
            np.testing.assert_array_equal(x[row], images.fit_to_model(image, 64), err_msg=path)
            compared += 1
    assert compared == 21


# ----------------------------------------------------------------------------------------------
# Whole photos: tiled


def flagged_tiles(rows, image):
    return [r for r in rows if r["image"] == str(image) and float(r["probability"]) >= 0.5]


def overlaps_cell(tile, cell):
    x, y, w, h = (int(tile[k]) for k in ("x", "y", "width", "height"))
    cx, cy = cell[0] * CELL, cell[1] * CELL
    return x < cx + CELL and cx < x + w and y < cy + CELL and cy < y + h


def assert_flags_only_planted(tile_rows, image, planted):
    flagged = flagged_tiles(tile_rows, image)
    for tile in flagged:
        assert any(overlaps_cell(tile, cell) for cell in planted), (image, tile)
    for cell in planted:  # each planted crack found by a tile that mostly lies on it
        assert any(overlaps_cell(t, cell) and abs(int(t["x"]) - cell[0] * CELL) < CELL / 2
                   and abs(int(t["y"]) - cell[1] * CELL) < CELL / 2 for t in flagged), (image, cell)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, negative_patches, positive_patches):
    """Test photos built from real patches, with the cells holding Positive patches known."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    planted = {(1, 1), (4, 2)}
    cases = {}
    image = mosaic(negative_patches[0], positive_patches[0], 6, 4, planted)
    write_rgb(folder / "planted.png", image)
    cases["planted.png"] = (planted, image.shape)
    image = mosaic(negative_patches[1], positive_patches[0], 6, 4, set())
    write_rgb(folder / "clean.png", image)
    cases["clean.png"] = (set(), image.shape)
    # Stored turned a quarter to the left, with EXIF saying "turn right to view": it must come out upright.
    upright = mosaic(negative_patches[2], positive_patches[1], 5, 3, {(3, 0)})
    exif = Image.Image().getexif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(upright))).save(folder / "rotated.jpg", quality=95, exif=exif)
    cases["rotated.jpg"] = ({(3, 0)}, upright.shape)
    image = mosaic(negative_patches[3], positive_patches[2], 12, 1, {(7, 0)})
    write_rgb(folder / "wide.png", image)
    cases["wide.png"] = ({(7, 0)}, image.shape)
    image = mosaic(negative_patches[4], positive_patches[3], 5, 4, {(1, 1)})[:700, :1000]
    write_rgb(folder / "odd_size.png", image)
    cases["odd_size.png"] = ({(1, 1)}, image.shape)
    write_rgb(folder / "tiny.png", cv2.resize(positive_patches[7], (60, 40), interpolation=cv2.INTER_AREA))
    cases["tiny.png"] = (None, (40, 60, 3))
    # Paving or a block wall: straight dark joints every 300 px, and a dark band along one side
    image = with_joints_and_band(mosaic(negative_patches[0], positive_patches[0], 8, 6, set()))
    write_rgb(folder / "joints.png", image)
    cases["joints.png"] = (set(), image.shape)
    image = with_joints_and_band(mosaic(negative_patches[0], positive_patches[0], 8, 6, {(1, 1), (5, 3)}))
    write_rgb(folder / "joints_planted.png", image)
    cases["joints_planted.png"] = ({(1, 1), (5, 3)}, image.shape)
    return folder, cases


def with_joints_and_band(image, every=300):
    image = image.copy()
    for k in range(0, image.shape[1], every):
        image[:, k:k + 6] = image[:, k:k + 6] * 0.45
    for k in range(0, image.shape[0], every):
        image[k:k + 6, :] = image[k:k + 6, :] * 0.45
    image[:, -60:] = image[:, -60:] * 0.3
    return image


@pytest.fixture(scope="module")
def photo_run(photos, tmp_path_factory):
    folder, _ = photos
    out = tmp_path_factory.mktemp("photo_out")
    result = run("predict.py", folder, "--model", PRETRAINED, "--csv", out / "photos.csv",
                 "--tiles-csv", out / "tiles.csv", "--figures", "--out", out / "figures",
                 "--save-tiles", out / "saved_tiles")
    assert result.returncode == 0, result.stderr
    return result, {r["path"].rsplit("/", 1)[1]: r for r in read_csv(out / "photos.csv")}, \
        read_csv(out / "tiles.csv"), out / "figures"


@pytest.mark.parametrize("name", ["planted.png", "rotated.jpg", "wide.png", "odd_size.png"])
def test_tiles_flagged_are_the_planted_cracks(photos, photo_run, name):
    folder, cases = photos
    _, rows, tiles, _ = photo_run
    planted, shape = cases[name]
    assert rows[name]["verdict"] == "crack"
    assert int(rows[name]["tiles"]) > 1 and int(rows[name]["cracked_tiles"]) >= len(planted)
    assert_flags_only_planted(tiles, folder / name, planted)


def test_a_clean_photo_raises_no_alarm(photos, photo_run):
    folder, _ = photos
    _, rows, tiles, _ = photo_run
    assert rows["clean.png"]["verdict"] == "no crack"
    assert int(rows["clean.png"]["cracked_tiles"]) == 0 and not flagged_tiles(tiles, folder / "clean.png")


def test_tiles_cover_the_whole_photo_whatever_its_size(photos, photo_run):
    folder, cases = photos
    _, _, tiles, _ = photo_run
    for name in ("planted.png", "rotated.jpg", "wide.png", "odd_size.png"):
        height, width = cases[name][1][:2]
        mine = [t for t in tiles if t["image"] == str(folder / name)]
        assert min(int(t["x"]) for t in mine) == 0 and min(int(t["y"]) for t in mine) == 0
        assert max(int(t["x"]) + int(t["width"]) for t in mine) == width, name
        assert max(int(t["y"]) + int(t["height"]) for t in mine) == height, name


def test_a_tiny_image_is_classified_whole(photo_run):
    _, rows, tiles, _ = photo_run
    assert rows["tiny.png"]["tiles"] == "1" and rows["tiny.png"]["verdict"] in ("crack", "no crack")
    assert not [t for t in tiles if t["image"].endswith("tiny.png")]


def test_photo_output_gives_verdict_tiles_and_heat_map(photos, photo_run):
    result, _, _, figures = photo_run
    folder, cases = photos
    line = next(s for s in result.stdout.splitlines() if "planted.png" in s)
    assert "crack (highest tile probability" in line and "flagged tiles: " in line and "% of the photo" in line
    for name in ("planted", "clean", "rotated", "wide", "odd_size", "tiny"):
        assert (figures / f"{name}_prediction.png").stat().st_size > 10_000
    # The 1362x908 photo is fitted to 1200 px: untouched where no tile is suspicious, tinted and
    # outlined over the planted cracks.
    for name in ("clean", "planted"):
        figure = predict_figure(figures / f"{name}_prediction.png")
        scale = 1200 / cases[f"{name}.png"][1][1]
        decoded = images.decode_image(folder / f"{name}.png")
        expected = cv2.resize(decoded, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        shown = figure[-expected.shape[0]:, :expected.shape[1]]
        differs = np.abs(shown.astype(int) - expected).max(axis=2) > 0
        if name == "clean":
            assert not differs.any()
        else:
            for cx, cy in cases["planted.png"][0]:  # each planted cell is marked
                x0, y0 = round(cx * CELL * scale), round(cy * CELL * scale)
                assert differs[y0:y0 + round(CELL * scale), x0:x0 + round(CELL * scale)].mean() > 0.5
            assert differs[:, round(3 * CELL * scale):round(3.5 * CELL * scale)].mean() < 0.05  # column 3 is clean


def test_straight_joints_and_a_border_band_give_no_alarm(photos, photo_run):
    result, rows, tiles, figures = photo_run
    folder, cases = photos
    row = rows["joints.png"]
    assert row["verdict"] == "no crack" and row["cracked_tiles"] == "0", row
    mine = [t for t in tiles if t["image"] == str(folder / "joints.png")]
    fired = [t for t in mine if float(t["probability_with_straight_lines"]) >= 0.5]
    assert len(fired) == int(row["straight_line_tiles"]) > len(mine) / 2  # the network alone calls joints cracks
    assert all(float(t["probability"]) < 0.5 for t in mine)
    line = next(s for s in result.stdout.splitlines() if "joints.png" in s)
    assert line.split(": ")[1].startswith("no crack") and "fired only on long straight lines" in line
    # --save-tiles sorts by what counts: a person teaching the model is not shown the joints as cracks.
    saved = figures.parent / "saved_tiles"
    assert not list((saved / "Positive").glob("joints_x*")) and len(list((saved / "Negative").glob("joints_x*"))) == len(mine)
    # The figure is the photo, untinted (no tile counts), with the lines it did not count drawn down the joints.
    figure = predict_figure(figures / "joints_prediction.png")
    decoded = images.decode_image(folder / "joints.png")
    scale = 1200 / decoded.shape[1]
    expected = cv2.resize(decoded, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    drawn = np.abs(figure[-expected.shape[0]:, :expected.shape[1]].astype(int) - expected).max(axis=2) > 40
    scale = 1200 / cases["joints.png"][1][1]
    for k in range(300, 1800, 300):  # along each vertical joint, down most of the photo
        assert drawn[:, round(k * scale) - 8:round((k + 6) * scale) + 8].any(axis=1).mean() > 0.8, k
    assert not drawn[round(330 * scale):round(570 * scale), round(630 * scale):round(870 * scale)].any()  # a slab


def test_cracks_between_joints_are_still_found(photos, photo_run):
    folder, cases = photos
    _, rows, tiles, _ = photo_run
    planted, _ = cases["joints_planted.png"]
    assert rows["joints_planted.png"]["verdict"] == "crack"
    assert_flags_only_planted(tiles, folder / "joints_planted.png", planted)


def test_straight_lines_are_found_on_joints_not_on_cracks(positive_patches, negative_patches):
    crack = positive_patches[0]
    for image, expected in ((mosaic(crack, crack, 6, 4, set()), 0),  # seamless: a crack's copies do not line up
                            (mosaic(negative_patches[0], crack, 6, 4, {(1, 1), (4, 2)}), 0),
                            (with_joints_and_band(mosaic(negative_patches[0], crack, 6, 4, set())), None)):
        resized, _ = tiling.model_scale(image, tiling.tile_grid(image, 227, 113), 64)
        lines = crack_rules.straight_lines(resized, 64)
        if expected is not None:
            assert len(lines) == expected
            continue
        scale = 64 / 227
        vertical = lines[np.abs(lines[:, 0] - lines[:, 2]) < 2]
        for k in (300, 600, 900, 1200):  # every vertical joint, at its place, most of the photo's height
            on_it = vertical[np.abs(vertical[:, 0] - (k + 3) * scale) < 3]
            covered = np.zeros(resized.shape[0], bool)  # a joint may be found as overlapping pieces: count their union
            for _, y1, _, y2 in np.round(on_it).astype(int):
                covered[min(y1, y2):max(y1, y2) + 1] = True
            assert covered.mean() > 0.8, k


def test_tiling_can_be_turned_off(photos, tmp_path):
    folder, _ = photos
    result = run("predict.py", folder / "planted.png", "--model", PRETRAINED, "--tile", "0",
                 "--csv", tmp_path / "whole.csv", "--no-figures")
    assert result.returncode == 0, result.stderr
    assert read_csv(tmp_path / "whole.csv")[0]["tiles"] == "1"


def test_a_hairline_crack_stays_dark_in_a_photos_tiles():
    # A photo is resized once for all its tiles (model_scale): the same resize as a dataset patch,
    # so a crack one pixel wide in a 12 MP photo reaches the model as dark as in a patch.
    surface = np.full((908, 1362, 3), 180, np.uint8)
    surface[:, 700] = 60
    resized, _ = tiling.model_scale(surface, tiling.tile_grid(surface, 227, 113), 64)
    darkest_column = resized.min(axis=(0, 2))
    assert darkest_column.min() <= 120 and np.count_nonzero(darkest_column < 170) <= 2


def test_tile_grid_covers_edges_with_overlap():
    assert tiling.tile_starts(1000, 227, 113) == [0, 113, 226, 339, 452, 565, 678, 773]
    assert tiling.tile_starts(227, 227, 113) == [0]
    image = np.zeros((300, 5000, 3), np.uint8)
    grid = tiling.tile_grid(image, 454, 227)
    assert {s for _, _, s in grid} == {300}  # never taller than a thin photo


@pytest.mark.slow
@pytest.mark.parametrize("script, args", [
    ("predict.py", ["--out", "{file}"]), ("predict.py", ["--save-tiles", "{file}"]),
    ("predict.py", ["--csv", "{folder}"]), ("predict.py", ["--tiles-csv", "{folder}"]),
    ("train.py", ["--out", "{file}"]), ("data_prep.py", ["--out", "{file}"])])
def test_an_output_path_of_the_wrong_kind_is_one_line(tmp_path, sample_cache, script, args):
    (tmp_path / "a_file").write_text("mine")
    (tmp_path / "a_folder").mkdir()
    args = [a.format(file=tmp_path / "a_file", folder=tmp_path / "a_folder") for a in args]
    inputs = {"predict.py": [SAMPLE_DATA / "Positive" / "08545.jpg"], "train.py": ["--cache", sample_cache],
              "data_prep.py": ["--src", SAMPLE_DATA]}[script]
    assert_clean_failure(run(script, *inputs, *args), "give a f")
    assert (tmp_path / "a_file").read_text() == "mine" and not list((tmp_path / "a_folder").iterdir())


# ----------------------------------------------------------------------------------------------
# Verdicts: crack, uncertain, no crack


def test_judge_says_crack_only_on_sure_evidence_from_a_familiar_surface():
    rule = verdicts.verdict_rule({"class_names": ["Negative", "Positive"], "sure_threshold": 0.8, "smooth_below": 2.5})
    grain = np.zeros(4, bool)  # no tile smoother than the floor: ordinary concrete
    assert crack_rules.judge_cracks(np.array([0.1, 0.2, 0.3, 0.4]), grain, rule) == ("no crack", "")
    assert crack_rules.judge_cracks(np.array([0.1, 0.2, 0.3, 0.9]), grain, rule) == ("crack", "")
    verdict, reason = crack_rules.judge_cracks(np.array([0.1, 0.2, 0.3, 0.6]), grain, rule)
    assert verdict == "uncertain" and reason.startswith("weak evidence: no tile reaches 0.80")
    verdict, reason = crack_rules.judge_cracks(np.array([0.1, 0.2, 0.3, 0.99]), np.array([True, True, False, False]), rule)
    assert verdict == "uncertain" and reason.startswith("50% of the image is smoother than")
    assert crack_rules.judge_cracks(np.array([0.1, 0.2, 0.3, 0.4]), np.ones(4, bool), rule) == ("no crack", "")  # nothing to doubt


def test_a_model_of_other_classes_reads_images_whole_and_words_its_results_by_its_classes():
    crack = verdicts.verdict_rule({"class_names": ["Negative", "Positive"], "patch_size": 113})
    other = verdicts.verdict_rule({"class_names": ["brick", "concrete", "tile"], "sure_threshold": 0.9})
    assert (crack.tile, other.tile) == (113, 0)  # predict's default --tile: 0 is the whole image
    trained_on_tiles = verdicts.verdict_rule({"class_names": ["brick", "concrete"], "patch_size": 96, "recipe": {}})
    older = verdicts.verdict_rule({"class_names": ["brick", "concrete"], "patch_size": 227})  # said by every model
    assert (trained_on_tiles.tile, older.tile) == (96, 0)
    tile_for = model_files.tile_for  # what train.py writes as the model's patch_size
    assert (tile_for({"tile": 96}, None, other.tile), tile_for({}, None, other.tile), tile_for({}, None, 227)) == (96, 0, 227)
    assert other.verdicts == ["brick", "concrete", "tile", "uncertain"]
    words = [*other.csv_columns(compared=True), *other.tile_columns(), *other.flagged, other.probability_label("tile")]
    assert not [word for word in words if "crack" in word]
    result = verdicts.image_result(np.array([[0.05, 0.9, 0.05]]), None, other)
    assert result.verdict == "concrete" and result.summary == ("concrete 0.900, brick 0.050, tile 0.050", [])
    assert other.csv_values(result) == ["concrete", "", "0.90000", "0.05000", "0.90000", "0.05000", 1, "1.0000"]


def test_tile_smoothness_counts_what_smoother_than_finds_in_each_cut_tile():
    # A photo with smooth paint on the left and grain on the right, so tiles differ; the quick count
    # over the whole photo must agree with data_prep's test on every tile cut out, at every floor.
    rng = np.random.default_rng(1)
    photo = np.full((300, 420, 3), 150, np.uint8)
    photo[:, 200:] = rng.integers(100, 200, (300, 220, 3))
    corners = np.array([(x, y) for y in range(0, 300 - 64 + 1, 31) for x in range(0, 420 - 64 + 1, 29)])
    tiles = np.stack([photo[y:y + 64, x:x + 64] for x, y in corners])
    for floor in (0.5, 2.587, 40.0, 90.0):
        expected = images.smoother_than(tiles, floor)
        assert np.array_equal(tiling.tile_smoothness(photo, corners, 64, floor), expected)
        assert np.array_equal(expected, images.surface_texture(tiles) < floor)
    assert 0 < np.mean(tiling.tile_smoothness(photo, corners, 64, 2.587)) < 1


def test_a_smooth_wall_with_a_cable_is_uncertain_and_says_why(tmp_path):
    rng = np.random.default_rng(0)
    wall = np.full((1200, 1600, 3), (205, 200, 170), np.float64) + rng.normal(0, 1.0, (1200, 1600, 3))
    wall = cv2.GaussianBlur(wall.clip(0, 255).astype(np.uint8), (0, 0), 3)
    # A sagging cable: dark, thin and curved, so no straight line explains it away (see the joints test)
    x = np.arange(0, 1600, 10)
    cable = np.stack([x, 300 + 500 * np.sin(x / 1600 * np.pi)], axis=1).astype(np.int32)
    cv2.polylines(wall, [cable], False, (60, 60, 60), 6)
    write_rgb(tmp_path / "painted.png", wall)
    result = run("predict.py", tmp_path / "painted.png", "--csv", tmp_path / "out.csv", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    row = read_csv(tmp_path / "out.csv")[0]
    assert row["verdict"] == "uncertain" and "smoother than 99.5% of the training images" in row["reason"]
    assert f"{tmp_path / 'painted.png'}: uncertain (100% of the image is smoother" in result.stdout
    assert tuple(banner_colour(predict_figure(tmp_path / "painted_prediction.png"))[:2]) == (200, 110)


def test_weak_evidence_is_uncertain(photos, tmp_path):
    folder, _ = photos
    # a threshold far below the model's sure threshold: the clean photo's faint tiles count, weakly
    result = run("predict.py", folder / "clean.png", "--threshold", "0.0001", "--csv", tmp_path / "out.csv",
                 "--no-figures")
    assert result.returncode == 0, result.stderr
    row = read_csv(tmp_path / "out.csv")[0]
    assert row["verdict"] == "uncertain" and row["reason"].startswith("weak evidence")
    assert "0 crack, 1 uncertain, 0 no crack" not in result.stdout  # one image: no summary line


# ----------------------------------------------------------------------------------------------
# Backends: LiteRT (the .tflite beside the .keras) and TensorFlow give the same answers

HIDE_MODULE = """import os, runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # as if the package were not installed
sys.argv = sys.argv[2:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_without(module, *args, cwd=None):
    """predict.py run in an interpreter where `module` (or several, comma-separated) cannot be imported."""
    import subprocess
    import sys

    from conftest import REPO, WORKDIR

    return subprocess.run([sys.executable, "-c", HIDE_MODULE, module, str(REPO / "predict.py"), *map(str, args)],
                          cwd=cwd or WORKDIR, capture_output=True, text=True, timeout=600)


needs_litert = pytest.mark.skipif(not model_files.litert_installed(), reason="no ai-edge-litert wheel for this platform")


@pytest.mark.slow
@needs_litert
@pytest.mark.parametrize("model", ["bundled", "trained"])
def test_both_backends_give_the_same_probabilities(model, trained_dir, negative_patches, positive_patches):
    keras_path = PRETRAINED if model == "bundled" else trained_dir / "model.keras"
    batch = np.stack([images.fit_to_model(p, 64) for p in negative_patches + positive_patches])
    by_tensorflow, _ = model_files.load_classifier(keras_path, "tensorflow")
    by_litert, _ = model_files.load_classifier(keras_path.with_suffix(".tflite"), "litert")
    np.testing.assert_allclose(by_litert(batch)[0], by_tensorflow(batch)[0], atol=1e-4)
    np.testing.assert_allclose(by_litert(batch[:3])[0], by_tensorflow(batch[:3])[0], atol=1e-4)  # any batch size


@pytest.mark.slow
@needs_litert
def test_both_backends_give_the_same_verdicts_on_photos(photos, photo_run, tmp_path):
    folder, _ = photos
    litert_run, litert_rows, litert_tiles, _ = photo_run  # --backend auto: LiteRT where it is installed
    result = run("predict.py", folder, "--model", PRETRAINED, "--backend", "tensorflow", "--csv", tmp_path / "p.csv",
                 "--tiles-csv", tmp_path / "t.csv")
    assert result.returncode == 0, result.stderr
    assert "run by LiteRT" in litert_run.stdout.splitlines()[0]
    assert "run by TensorFlow" in result.stdout.splitlines()[0]
    rows = {r["path"].rsplit("/", 1)[1]: r for r in read_csv(tmp_path / "p.csv")}
    assert {name: r["verdict"] for name, r in rows.items()} == {n: r["verdict"] for n, r in litert_rows.items()}
    tiles = read_csv(tmp_path / "t.csv")
    assert [(t["image"], t["x"], t["y"]) for t in tiles] == [(t["image"], t["x"], t["y"]) for t in litert_tiles]
    np.testing.assert_allclose([float(t["probability"]) for t in tiles],
                               [float(t["probability"]) for t in litert_tiles], atol=1e-4)


@needs_litert
def test_with_litert_predict_needs_neither_tensorflow_nor_matplotlib(photos, tmp_path):
    """The README's install for a Raspberry Pi: a verdict, a figure and a report without either."""
    folder, _ = photos
    photo = folder / "planted.png"
    result = run_without("tensorflow,keras,matplotlib", photo, "--report", tmp_path / "report")
    assert result.returncode == 0, result.stderr
    assert "run by LiteRT" in result.stdout.splitlines()[0] and f"{photo}: " in result.stdout
    assert (tmp_path / "report" / "index.html").is_file()
    assert list((tmp_path / "report" / "figures").glob("*_prediction.jpg"))


@pytest.mark.slow
def test_without_the_litert_runtime_tensorflow_runs_the_model_and_says_so(tmp_path):
    image = copy_sample("Positive", 1, tmp_path, "crack.jpg")
    result = run_without("ai_edge_litert", image)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "run by TensorFlow" in lines[0]
    assert lines[1].startswith("note: the LiteRT runtime is not installed")
    assert f"{image}: crack" in result.stdout
    # a .tflite alone cannot be run without it: one line saying what to install
    alone = tmp_path / "alone.tflite"
    alone.write_bytes(PRETRAINED.with_suffix(".tflite").read_bytes())
    assert_clean_failure(run_without("ai_edge_litert", image, "--model", alone), "pip install ai-edge-litert")


@pytest.mark.slow
@needs_litert
def test_with_litert_predict_never_imports_tensorflow(photos, tmp_path):
    folder, _ = photos
    result = run_without("tensorflow", folder / "planted.png", SAMPLE_DATA / "Negative", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "run by LiteRT" in result.stdout.splitlines()[0]
    assert "planted.png: crack" in result.stdout and (tmp_path / "planted_prediction.png").is_file()


@needs_litert
def test_a_tflite_file_alone_is_a_whole_model(tmp_path):
    alone = tmp_path / "phone.tflite"  # e.g. copied to a Raspberry Pi without the .keras
    alone.write_bytes(PRETRAINED.with_suffix(".tflite").read_bytes())
    image = copy_sample("Positive", 2, tmp_path, "crack.jpg")
    result = run("predict.py", image, "--model", alone)
    assert result.returncode == 0, result.stderr
    assert f"model: {alone} (--model, run by LiteRT; 64x64 px input, threshold 0.5" in result.stdout
    assert f"{image}: crack" in result.stdout


@pytest.mark.slow
@needs_litert
def test_a_tflite_of_another_training_run_is_not_used(tmp_path, trained_dir):
    (tmp_path / "m.keras").write_bytes((trained_dir / "model.keras").read_bytes())
    (tmp_path / "m.tflite").write_bytes(PRETRAINED.with_suffix(".tflite").read_bytes())  # stale
    result = run("predict.py", copy_sample("Negative", 2, tmp_path, "clean.jpg"), "--model", tmp_path / "m.keras")
    assert result.returncode == 0, result.stderr
    assert "run by TensorFlow" in result.stdout.splitlines()[0]
    assert "is from another training run" in result.stdout.splitlines()[1]


@pytest.mark.slow
@needs_litert
def test_a_damaged_tflite_is_named_not_a_traceback(tmp_path, trained_dir):
    image = copy_sample("Positive", 4, tmp_path, "crack.jpg")
    (tmp_path / "m.keras").write_bytes((trained_dir / "model.keras").read_bytes())
    (tmp_path / "m.tflite").write_bytes((trained_dir / "model.tflite").read_bytes()[:5000])  # cut short
    result = run("predict.py", image, "--model", tmp_path / "m.keras")
    assert result.returncode == 0, result.stderr  # the .keras beside it still works
    assert result.stdout.splitlines()[1] == (f"note: {tmp_path / 'm.tflite'} is not used: it is not a LiteRT "
                                             "flat buffer (damaged, or another format)")
    assert_clean_failure(run("predict.py", image, "--model", tmp_path / "m.tflite"),
                         "cannot load model", "not a LiteRT flat buffer")
