"""`make screenshots` end to end: demo data, a server, real sign-ins, PNGs at 1440 px."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_retakes_the_shots_named(tmp_path):
    # One shot per demo login that signs in: compliance and back office.
    names = ["query-error", "edit-conflict"]
    run = subprocess.run(
        [sys.executable, "-m", "console.devtools.screenshots", *names, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{n}.png" for n in names)
    width, height = png_size(tmp_path / "edit-conflict.png")
    assert width == 1440
    assert height > 900  # the whole page
    width, height = png_size(tmp_path / "query-error.png")
    assert width == 1440
    assert height < 900  # the top of the page only
