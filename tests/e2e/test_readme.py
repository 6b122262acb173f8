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

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow
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


# --- every oi-opt, oi-run and xdsl-opt command the README shows --------------------------------

_TOOL = re.compile(r"(\.venv/bin/)?(oi-opt|oi-run|xdsl-opt) ")
#: a pass flag shown on its own (`--bind-sizes=model=m.oinf`): run on the tiny decoder
_FLAGS = re.compile(r"--bind-sizes|-p ")
#: what the README writes like a command but is not one: a synopsis, a pipe, a flag without input
NOT_COMMANDS = ("oi-opt INPUT [", "oi-run ... | head", "oi-opt --dump-stages")


def readme_commands() -> list[str]:
    """Each command of the README's `sh` blocks (continuation lines joined) and of its inline
    code, in order, whitespace normalised; pass-flag fragments come as `oi-opt <decoder> FLAGS`."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S):
        if lang == "sh":
            commands += [" ".join(line.split()) for line in body.replace("\\\n", " ").splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`]+)`", prose):
        span = " ".join(span.split())
        commands.append(f"oi-opt examples/tiny_decoder.oi {span}" if _FLAGS.match(span) else span)
    return [c for c in commands if _TOOL.match(c)]


def _argv(command: str) -> list[str]:
    import shlex
    import sys

    words = shlex.split(command)
    tool = words[0].removeprefix(".venv/bin/")
    runner = {"oi-opt": ["-m", "oi_compiler.tools.oi_opt"], "oi-run": ["-m", "oi_compiler.tools.oi_run"],
              "xdsl-opt": ["-m", "xdsl.tools.xdsl_opt"]}[tool]  # fmt: skip
    return [sys.executable, *runner, *words[1:]]  # the venv's bin need not be on PATH


def _prefix(block: str, stop: str) -> str:
    """`block` up to the line starting with `stop` (the part that makes a plan, without building it)."""
    return block[: block.index("\n" + stop) + 1]


@pytest.fixture
def command_dir(example_dir: Path) -> Path:
    """The example files, and what the README's commands name besides them: g.oi, m.oinf,
    "my model.oinf", tokens.npy, gemm.mlir and gemm_gpu.mlir (the README's plans), kernels.mlir."""
    import subprocess

    for name in ("kv_decode.oi", "layers.oi", "custom_pass.py"):
        shutil.copy(ROOT / "examples" / name, example_dir / "examples")
    shutil.copy(ROOT / "examples" / "kv_decode.oi", example_dir / "g.oi")
    for name in ("m.oinf", "my model.oinf"):
        shutil.copy(example_dir / "examples" / "tiny_decoder.oinf", example_dir / name)
    tokens = np.zeros((4, 1, 48), np.float32)
    tokens[np.arange(4), 0, [3, 1, 4, 1]] = 1
    np.save(example_dir / "tokens.npy", tokens)
    for section, stop, name in (("Loop nests", "gemm = ", "gemm.mlir"), ("GPU plans", "ptx = ", "gemm_gpu.mlir")):
        (block,) = python_blocks(section)
        scope: dict = {}
        exec(_prefix(block, stop), scope)
        (example_dir / name).write_text(str(scope["plan"].module))
    mapped = subprocess.run(_argv("oi-opt gemm_gpu.mlir --tile --cache --double-buffer --map-gpu --lower-nests"),
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "gpu.module" in mapped.stdout
    (example_dir / "kernels.mlir").write_text(mapped.stdout)
    return example_dir


def test_readme_commands_are_found() -> None:
    commands = readme_commands()
    for fragment in NOT_COMMANDS:
        assert any(c.startswith(fragment) for c in commands), f"the README no longer shows {fragment!r}"
    runnable = [c for c in commands if not c.startswith(NOT_COMMANDS)]
    assert len(runnable) >= 15, runnable  # the sh blocks' and the inline ones
    assert "oi-opt examples/tiny_decoder.oi --bind-sizes=model=m.oinf" in runnable


@pytest.mark.slow
def test_every_readme_command_runs(command_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command the README shows exits 0 with output, as written (unquoted paths in pass
    options included); the first one prints every line of the IR the README shows for it."""
    import subprocess

    monkeypatch.setenv("OI_CACHE_DIR", str(command_dir / "cache"))
    monkeypatch.delenv("OI_TRACE", raising=False)
    failures = []
    outputs = {}
    for command in readme_commands():
        if command.startswith(NOT_COMMANDS):
            continue
        result = subprocess.run(_argv(command), capture_output=True, text=True, timeout=300,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        outputs[command] = result.stdout
        if result.returncode != 0 or not result.stdout.strip():
            failures.append(f"{command}\n  exit {result.returncode}: {result.stderr.strip()[-400:]}")
    assert not failures, "\n".join(failures)
    text = (ROOT / "README.md").read_text()
    shown = re.search(r"`\.venv/bin/oi-opt examples/kv_decode\.oi`.*?```mlir\n(.*?)```", text, re.S).group(1)
    printed = [line.strip() for line in outputs[".venv/bin/oi-opt examples/kv_decode.oi"].splitlines()]
    assert [line.strip() for line in shown.splitlines() if line.strip() not in printed] == []


def test_kv_serving_statements() -> None:
    """The `oi.kv` plan example runs and appends as it says."""
    (block,) = python_blocks("KV-serving statements")
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    k_cache = scope["args"].k_cache
    assert k_cache[0, 0, :3].tolist() == [[1.0] * 4] * 3 and k_cache[0, 0, 3:].sum() == 0
    assert k_cache[1, 0, 5:8].sum() == 12 and k_cache[1, 0, :5].sum() == 0
