"""The README's images can all be retaken: each is a shot of console/devtools/screenshots.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from console.devtools import screenshots

ROOT = Path(__file__).resolve().parent.parent


def readme_images() -> set[str]:
    text = (ROOT / "README.md").read_text()
    return set(re.findall(r"\]\(docs/screenshots/([\w.-]+)\.png\)", text))


def test_every_readme_image_is_a_shot_and_every_shot_is_in_the_readme():
    names = {item.name for item in screenshots.SHOTS}
    assert readme_images() == names
    assert len(names) == len(screenshots.SHOTS)
    for name in names:
        assert (ROOT / "docs" / "screenshots" / f"{name}.png").is_file(), name


def test_a_second_shot_of_the_same_name_is_refused():
    with pytest.raises(ValueError, match="Two shots are named 'user-list'"):
        screenshots.shot("user-list", "admin")(lambda page, console: None)
    assert [item.name for item in screenshots.SHOTS].count("user-list") == 1


def test_list_names_the_shots_and_an_unknown_name_is_refused():
    run = [sys.executable, "-m", "console.devtools.screenshots"]
    listed = subprocess.run([*run, "--list"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert listed.stdout.split() == [item.name for item in screenshots.SHOTS]

    unknown = subprocess.run([*run, "no-such-shot"], cwd=ROOT, capture_output=True, text=True)
    assert unknown.returncode == 2
    assert "no shot named no-such-shot" in unknown.stderr
