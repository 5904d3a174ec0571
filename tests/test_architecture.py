"""The import arrows of pyproject.toml ([tool.importlinter]) hold, and they do catch a break.

Both tests run `lint-imports` in a subprocess: it builds its graph from the files on disk, so
the second one can point it at a copy of the packages without touching the real ones.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH would let the real packages shadow a copy; cwd is what lint-imports reads.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def test_import_contracts_are_kept():
    result = lint_imports(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    for package in ("users", "console"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    models = tmp_path / "users" / "models.py"
    models.write_text(models.read_text() + "\nfrom users.views import common  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    layers = next(contract for contract in contracts() if contract["type"] == "layers")
    assert f"{layers['name']} BROKEN" in result.stdout
    assert "users.models -> users.views.common" in result.stdout
