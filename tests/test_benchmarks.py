"""The benchmark that measures a model on other surfaces, run as the README runs it."""

import shutil

from conftest import SAMPLE_DATA, assert_clean_failure, run


def test_other_surfaces_scores_labelled_patches_and_lists_photos(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(SAMPLE_DATA / "Positive" / "08545.jpg", photos / "wall.jpg")
    result = run("benchmarks/bench_other_surfaces.py", "--patches", SAMPLE_DATA, "--photos", photos)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"patches: {SAMPLE_DATA}/ (200 Negative, 200 Positive)" in lines
    # the bundled model never saw the sample images; every one is called right
    assert "  at the threshold 0.5: accuracy 100.0%, crack recall 100.0%, no-crack recall 100.0%" in lines
    assert lines[lines.index("  verdicts        crack  uncertain   no crack") + 1].split() == ["Negative", "0", "0", "200"]
    assert any(line.split()[:2] == ["wall.jpg", "crack"] for line in lines)
    assert_clean_failure(run("benchmarks/bench_other_surfaces.py", "--patches", photos), "has no Negative or Positive folder")
