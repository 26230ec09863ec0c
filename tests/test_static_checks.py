"""The static checks CI runs with the tests: mypy --strict on the library, ruff on the tree,
and that a non-editable install would ship every module."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_mypy_strict() -> None:
    pytest.importorskip("mypy", reason="install the test extras: pip install -e '.[test]'")
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    if shutil.which("ruff") is None and _run("ruff", "--version").returncode != 0:
        pytest.skip("ruff is not installed")
    result = _run("ruff", "check", "src", "tests", "examples", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_is_in_a_package() -> None:
    """setup.cfg finds packages with ``find:``, which skips a folder without ``__init__.py``:
    the editable install the tests use still imports it, a wheel silently leaves it out
    (``micronetwork.host`` was missing from every wheel until 2026-11-29)."""
    from setuptools import find_packages

    src = ROOT / "src"
    found = set(find_packages(str(src)))
    folders = {p.parent for p in (src / "micronetwork").rglob("*.py")}
    missing = sorted(
        str(f.relative_to(src)) for f in folders
        if ".".join(f.relative_to(src).parts) not in found
    )
    assert not missing, f"folders with modules but no __init__.py (left out of wheels): {missing}"
