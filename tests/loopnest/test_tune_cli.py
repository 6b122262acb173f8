"""`oi-tune`: a space file searched and its table and winner printed, the winner reused from the
database on a second run, and every bad input one `error:` line with a nonzero status, never a
traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oi_compiler.tools.tune_cli import main

SPACE = str(Path(__file__).with_name("tune_spaces.py"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path / "cache"))


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_a_space_file_is_searched_in_worker_processes_then_reused(capsys, tmp_path) -> None:
    db = str(tmp_path / "db")
    status, out, err = _run(capsys, SPACE, "--jobs", "2", "--repeats", "1", "--finalists", "1", "--db", db)
    assert status == 0, err
    assert "wrong results" in out and "Split sizes must be integers >= 1" in out
    assert "winner: P_TI=4 P_TJ=8 P_BAD=False" in out and "search:" in out and f"database: {db}/" in out
    status, out, err = _run(capsys, SPACE, "--db", db)
    assert status == 0 and "from the tuning database" in out


@pytest.mark.parametrize(("write", "argv", "message"), [
    (None, ["missing.py"], "error: no such file: missing.py"),
    ("def tune_space(:\n", [], "space.py:1: SyntaxError: "),
    ("import numpy\nx = undefined_name\n", [], "space.py:2: NameError: name 'undefined_name' is not defined"),
    ("def other():\n    pass\n", [], "defines no function tune_space()"),
    ("def tune_space():\n    return 3\n", [], "tune_space() must return (plan builder, parameter grid)"),
    ("def tune_space():\n    return (lambda: 1, [])\n", [], "needs a non-empty parameter grid"),
    ("def tune_space():\n    return (lambda: 1, [{}])\n", [], "the plan builder returned int, not a Plan"),
    (SPACE, ["--function", "all_invalid_space"], "error: no candidate of the 2 in the grid is usable: 2 invalid"),
])  # fmt: skip
def test_bad_input_is_one_error_line(capsys, tmp_path, monkeypatch, write, argv, message) -> None:
    monkeypatch.chdir(tmp_path)
    path = "missing.py" if write is None else write if write == SPACE else "space.py"
    if write is not None and write != SPACE:
        Path(path).write_text(write)
    status, out, err = _run(capsys, *([path] if argv[:1] != ["missing.py"] else []), *argv)
    assert status == 1 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv", [["--jobs", "0"], ["--jobs", "x"], ["--repeats", "0"], ["--no-such-flag"]])
def test_a_bad_command_line_is_status_2(capsys, argv) -> None:
    status, out, err = _run(capsys, SPACE, *argv)
    assert status == 2 and err.startswith("oi-tune: error: ")


def test_the_entry_point_runs_as_a_command(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "oi_compiler.tools.tune_cli", str(tmp_path / "nothing.py")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr == f"error: no such file: {tmp_path / 'nothing.py'}\n"
