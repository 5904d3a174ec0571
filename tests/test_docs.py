"""The README holds in a clone on its own: its links stay in the repository, its first lines
say where the console serves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_readme_links_point_into_the_repository():
    targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", README.read_text())
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert "docs/user-contract.md" in local
    for target in local:
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT), f"{target} is outside the repository"
        assert path.exists(), f"{target} does not exist"


def test_the_contract_copy_says_it_is_a_copy():
    assert "A copy of the spec" in (ROOT / "docs" / "user-contract.md").read_text()[:300]


def test_readme_first_lines_say_the_port_and_how_to_change_it():
    head = "\n".join(README.read_text().splitlines()[:5])
    assert "8000" in head
    assert "PORT=8001 make run" in head
