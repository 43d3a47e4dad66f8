"""Shared fixtures: the real scripts run as a user runs them, on the bundled sample_data/."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"
WORKDIR = Path(tempfile.mkdtemp(prefix="crack-tests-"))  # scripts run here: nothing lands in the repository
PRETRAINED = REPO / "pretrained" / "crack_cnn.keras"
README = REPO / "README.md"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "examples"))


def pytest_sessionfinish():
    """WORKDIR goes when the run ends (pytest's own tmp_path folders are pruned by pytest)."""
    shutil.rmtree(WORKDIR, ignore_errors=True)


def run(script, *args, cwd=None, timeout=600, env=None):
    """Run one of the repository's scripts in a subprocess; returns the CompletedProcess."""
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd or WORKDIR,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def assert_clean_failure(result, *fragments):
    """A failure the way a user should see it: non-zero exit, one error line, no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors, result.stderr
    for fragment in fragments:
        assert any(fragment in line for line in errors), result.stderr


def visible_text(page):
    """The text a browser shows of an HTML page: no style, script or tags."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)))


def sample_files(class_name):
    return sorted((SAMPLE_DATA / class_name).glob("*.jpg"))


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def write_rgb(path, image, params=()):
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), list(params))


@pytest.fixture(scope="session")
def sample_cache(tmp_path_factory):
    """data_prep.py run on sample_data/ (64 px)."""
    out = tmp_path_factory.mktemp("prep") / "cache"
    result = run("data_prep.py", "--src", SAMPLE_DATA, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def trained_dir(sample_cache, tmp_path_factory):
    """train.py run for two epochs on the sample cache."""
    out = tmp_path_factory.mktemp("train") / "models"
    result = run("train.py", "--cache", sample_cache, "--out", out, "--epochs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    (out.parent / "train_stdout.txt").write_text(result.stdout)  # what it printed, beside: for tests of it
    return out


def readme_section(title):
    """A section of the README, from its `## title` line to the next heading of its level."""
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def code_blocks(text, language):
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def readme_commands(title):
    """The `python ...` lines of a README section's bash blocks, as argument lists (comments dropped)."""
    lines = [line.split("#")[0].strip() for block in code_blocks(readme_section(title), "bash")
             for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("python ") and " -m pytest" not in line]


@pytest.fixture(scope="session")
def own_classes(tmp_path_factory):
    """The README's "Your own classes" commands, run as written in a folder of their own: three generated
    classes (blotch, clean, line) through data_prep and train.py's own recipe, not a shorter one that only
    this network gets by with (a network with BatchNorm stayed at chance after 20 epochs, 100 steps;
    docs/EXPERIMENTS.md), then predict on one image. test_classes and test_readme share this one training."""
    work = tmp_path_factory.mktemp("own_classes")
    commands = readme_commands("Your own classes")
    assert [args[0] for args in commands] == ["examples/three_surfaces.py", "data_prep.py", "train.py", "predict.py"]
    results = []
    for args in commands:
        result = run(args[0], *args[1:], cwd=work)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        results.append(result)
    generate, prep, train, _ = commands
    return SimpleNamespace(surfaces=work / generate[1], cache=work / prep[prep.index("--out") + 1],
                           model=work / train[train.index("--out") + 1], prep=results[1], trained=results[2],
                           predicted=results[3])


@pytest.fixture(scope="session")
def negative_patches():
    return [read_rgb(p) for p in sample_files("Negative")]


@pytest.fixture(scope="session")
def positive_patches():
    return [read_rgb(p) for p in sample_files("Positive")]


def mosaic(background, crack, columns, rows, planted):
    """A photo-sized image tiled with 227 px copies of a Negative patch, a Positive one in each planted cell.

    Neighbouring copies are mirrored, so the background is seamless: the edge between two
    unrelated patches is a straight line that a crack detector is right to find suspicious.
    """
    cell = 227
    image = np.zeros((rows * cell, columns * cell, 3), np.uint8)
    for r in range(rows):
        for c in range(columns):
            patch = crack if (c, r) in planted else background
            patch = patch[::-1 if r % 2 else 1, ::-1 if c % 2 else 1]
            image[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = patch
    return image
