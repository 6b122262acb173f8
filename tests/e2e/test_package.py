"""The package's own face: `__version__`, `python -m oi_compiler`, and `py.typed` (issue #15)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import oi_compiler as oi
from oi_compiler.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_written_once_and_read_by_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "oi_compiler.version.__version__"}
    assert oi.__version__.count(".") == 2


def test_python_dash_m_points_at_the_tools(capsys) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "oi-opt" in out and "oi-run" in out and oi.__version__ in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == oi.__version__
    assert main(["frobnicate"]) == 2
    assert "unknown argument 'frobnicate'" in capsys.readouterr().err


def test_python_dash_m_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "oi_compiler", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "oi-opt" in done.stdout


def test_the_package_says_it_is_typed() -> None:
    assert (ROOT / "oi_compiler" / "py.typed").is_file()
    assert "py.typed" in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["oi_compiler"]
