"""The README's Python examples run as written (in a scratch directory holding the example files)."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.ops import registry

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start : end if end > 0 else None], re.S)


@pytest.fixture
def example_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "tiny_decoder.oi", tmp_path / "examples")
    spec = importlib.util.spec_from_file_location("tiny_decoder_readme", ROOT / "examples" / "tiny_decoder.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_model(tmp_path / "examples" / "tiny_decoder.oinf")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_running_a_graph(example_dir: Path) -> None:
    (block,) = python_blocks("Running a graph")
    scope: dict = {}
    exec(block, scope)
    exe = scope["exe"]
    assert exe.state("Kc").shape == (2, 1, 2, 8)  # what the README's comment says
    assert (example_dir / "ckpt.oistate").is_file()


def test_custom_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_ops", dict(registry._load()[0]))  # the example registers an op
    blocks = python_blocks("From Python")
    (custom_op,) = [b for b in blocks if "softsign" in b]
    scope: dict = {"np": np, "oi": oi}
    exec(custom_op, scope)
    graph = oi.parse_graph("volatile { x: f32[2] @init(3.0); } block entry { op softsign(x) >> x; }")
    exe = oi.Simulator(None, graph).make_executor()
    exe.step()
    np.testing.assert_allclose(exe.fetch("x"), [0.75, 0.75])


def test_loop_nests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's loop-nest example, run as a script (so names come from its assignments),
    then its IR through oi-opt's passes gives the same code."""
    import runpy
    import subprocess

    (block,) = python_blocks("Loop nests")
    script = tmp_path / "nest_example.py"
    script.write_text(block)
    monkeypatch.chdir(tmp_path)
    scope = runpy.run_path(str(script))
    assert "oi.nest domain(i = " in (tmp_path / "gemm.mlir").read_text()
    assert scope["AA"].index is scope["ii"]
    import sys

    oi_opt = [sys.executable, "-m", "oi_compiler.tools.oi_opt"]  # the venv's bin need not be on PATH
    result = subprocess.run([*oi_opt, "gemm.mlir", "--tile", "--cache", "--double-buffer", "--lower-nests"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert result.stdout.strip() == str(scope["gemm"].lowered).strip()


def test_gpu_plans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's GPU plan, run as a script in the CPU emulation; its PTX is what it says."""
    import runpy

    (block,) = python_blocks("GPU plans")
    script = tmp_path / "gpu_example.py"
    script.write_text(block)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path / "cache"))
    scope = runpy.run_path(str(script))
    assert ".visible .entry nest(" in scope["ptx"] and "bar.sync \t0;" in scope["ptx"]
    assert (scope["gemm"].grid, scope["gemm"].block) == ((3, 4, 1), (16, 16, 1))
