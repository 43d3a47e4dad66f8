"""The benchmark that measures a model on other surfaces, run as the README runs it."""

import pytest
import shutil

from conftest import SAMPLE_DATA, assert_clean_failure, run

pytestmark = pytest.mark.slow  # every test here trains or runs a script end to end


def test_other_surfaces_scores_labelled_patches_and_lists_photos(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLE_DATA / "Positive" / "08545.jpg", photos / "wall.jpg")
    result = run("benchmarks/bench_other_surfaces.py", "--patches", SAMPLE_DATA, "--photos", photos)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"patches: {SAMPLE_DATA}/ (200 Negative, 200 Positive)" in lines
    table = lines.index("  verdicts        crack  uncertain   no crack")
    assert [lines[table + k].split()[0] for k in (1, 2)] == ["Negative", "Positive"]
    (false_alarms, _, clean), (found, _, missed) = ([int(n) for n in lines[table + k].split()[1:]] for k in (1, 2))
    assert false_alarms + clean == found + missed == 200
    # the figures agree with the verdicts (the bundled model's sure threshold is its threshold) ...
    assert (f"  at the threshold 0.5: accuracy {(clean + found) / 4:.1f}%, crack recall {found / 2:.1f}%, "
            f"no-crack recall {clean / 2:.1f}%") in lines
    # ... and the bundled model, which never saw the sample images, calls nearly all of them right
    assert false_alarms + missed <= 2
    assert any(line.split()[:2] == ["wall.jpg", "crack"] for line in lines)
    assert_clean_failure(run("benchmarks/bench_other_surfaces.py", "--patches", photos), "has no Negative or Positive folder")
