"""README.md: every path it names exists, and its quick start works as written."""

import re
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

README = (REPO / "README.md").read_text()


def section(title):
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def code_blocks(text, language):
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_every_path_the_readme_names_exists():
    named = set(re.findall(r"(?<![\w/.-])((?:pretrained|sample_data|benchmarks|tests)/[\w./-]*\w|\w+\.py)\b", README))
    assert "pretrained/example_photo_prediction.png" in named and "predict.py" in named
    for path in sorted(named):
        if path.endswith(".py") and "/" not in path and not (REPO / path).exists():
            continue  # a module named in prose, not a file of ours (there are none today)
        assert (REPO / path).exists(), path


@pytest.mark.slow
def test_the_quick_start_works_as_written(tmp_path):
    """The quick start's commands, run in order in a copy of the repository, print what it says."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "cache", "models",
                                                              "demo", "predictions"))
    commands = [line.split("#")[0].strip() for block in code_blocks(section("Quick start"), "bash")
                for line in block.splitlines()]
    commands = [c for c in commands if c.startswith("python ") and "pytest" not in c]
    assert len(commands) == 4, commands
    outputs = []
    for command in commands:
        args = shlex.split(command)[1:]
        result = subprocess.run([sys.executable, *args], cwd=copy, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        outputs.append(result.stdout)
    expected = code_blocks(section("Quick start"), "text")[0].splitlines()[1:]  # after the model line
    printed = outputs[0].splitlines()[1:]
    assert printed[:2] == expected[:2] and len(printed) == len(expected) == 3
    summary = re.compile(r"2 images classified in [\d.]+ s \(\d+ images/s\): 1 crack, 0 uncertain, 1 no crack")
    assert summary.fullmatch(printed[2]) and summary.fullmatch(expected[2])  # only the speed may differ
    assert (copy / "predictions" / "08545_prediction.png").is_file()
    assert (copy / "demo" / "model" / "model.keras").is_file()
    verdict = outputs[3].splitlines()[1]
    assert verdict.startswith("sample_data/Positive/08545.jpg: crack (crack probability")
    assert float(verdict.rsplit(" ", 1)[1].rstrip(")")) > 0.9


@pytest.mark.slow
def test_your_own_classes_works_as_written(tmp_path):
    """The own-classes section's commands, run in order in a copy of the repository, print its class line."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "cache", "models",
                                                              "demo", "predictions"))
    text = section("Your own classes")
    commands = [line.split("#")[0].strip() for block in code_blocks(text, "bash") for line in block.splitlines()]
    assert len(commands) == 4, commands
    for command in commands:
        result = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=copy, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    printed = result.stdout.splitlines()[1]
    expected = code_blocks(text, "text")[0].strip()
    name_and_classes = re.compile(r"(\S+): (\w+) \((\w+) [\d.]+, (\w+) [\d.]+, (\w+) [\d.]+\)")
    assert name_and_classes.fullmatch(printed) and name_and_classes.fullmatch(expected), (printed, expected)
    assert name_and_classes.fullmatch(printed).groups()[:3] == name_and_classes.fullmatch(expected).groups()[:3]
    assert "in 3 classes (blotch, clean, line)" in text
