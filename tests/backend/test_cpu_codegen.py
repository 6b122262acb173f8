"""What the compiled CPU step is made of: views instead of copies, vector code, amortised growth, caching."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.dialects.oi import GraphOp
from oi_compiler.lowering.analysis import analyze_step
from oi_compiler.dialects.oi_table import LAYOUT_ATTR
from oi_compiler.lowering.state_layout import StateLayout
from oi_compiler.pipeline import bound_analysis, lower_step
from oi_compiler.runtime.native import NativeState

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "tiny_decoder.oi"
SIZES = dict(D=32, H=4, Hk=2, Dh=8, F=64, NV=48, L=2, T=64)

APPEND = """
dynamic { x: f32[1, 8]; }
persistent { t: i32 @init(0); K(pos): f32[1, 8] @table; }
block entry {
    cache.write x >> K[t];
    cache.increment t;
    return;
}
"""


@pytest.fixture(scope="module")
def tiny_module():
    return lower_step(oi.Graph.load(TINY).module, SIZES)


def _function(module, name: str):
    return next(op for op in module.ops if getattr(op, "sym_name", None) is not None and op.sym_name.data == name)


def test_decoder_reads_the_kv_cache_in_place(tiny_module) -> None:
    module = tiny_module
    plan = StateLayout.from_attr(module.attributes[LAYOUT_ATTR])
    assert plan.vars["keys"].kind == plan.vars["values"].kind == "view"
    step = _function(module, "step")
    copies = [op for op in step.walk() if op.name == "memref.copy"]
    # the two entry writes of the layer loop (Kc, Vc); no copy for the two reads
    assert len(copies) == 2
    assert all("strided" in str(op.destination.type) for op in copies)


def test_a_read_whose_table_changes_later_is_copied() -> None:
    text = """
    dynamic { x: f32[2]; }
    volatile { y: f32[4, 2]; z: f32[2]; }
    persistent { t: i32 @init(0); K(i): f32[2] @table; }
    block entry {
        cache.write x >> K[t];
        cache.read K[0..] >> y;
        cache.write x >> K[0];
        op sum_axis(y, axes=[0]) >> z;
        cache.increment t;
        return;
    }
    """
    graph = oi.parse_graph(text, "copy.oi")
    plan = bound_analysis(graph.module, {})
    assert plan.vars["y"].kind == "resizable"


def test_matmul_kernel_is_vectorised() -> None:
    from oi_compiler.backend.jit import compile_module
    from oi_compiler.runtime.native_step import _install_callback

    # at the tiny sizes LLVM unrolls the 32-wide row completely; at these it vectorises the row
    sizes = dict(SIZES, D=256, F=512, Dh=32, H=8, Hk=4)
    module = lower_step(oi.Graph.load(TINY).module, sizes)
    _install_callback()
    ir = compile_module(module).llvm_ir
    kernels = [n for n in ir.split("define internal") if "@kernel_" in n.split("(")[0]]
    matmuls = [k for k in kernels if "_matmul(" in k.split("\n")[0]]
    assert matmuls and all("x float>" in k for k in matmuls), "matmul rows should use vector instructions"


def test_appends_grow_the_table_a_logarithmic_number_of_times(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = NativeState.grow

    def counting(self, kind, a, b, c):
        calls.append(kind)
        return original(self, kind, a, b, c)

    monkeypatch.setattr(NativeState, "grow", counting)
    exe = oi.Simulator(None, oi.parse_graph(APPEND, "append.oi"), device="cpu").make_executor()
    for n in range(4096):
        exe.insert(x=np.full((1, 8), n, np.float32))
        exe.step()
    assert exe.table_sizes("K") == [4096]
    assert np.array_equal(exe.state("K")[:, 0, 0], np.arange(4096, dtype=np.float32))
    table_growths = [k for k in calls if k == 1]
    assert 0 < len(table_growths) <= 9  # 16 -> 4096 by doubling: 8 reallocations


def test_step_cache_in_memory_and_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path))
    graph = oi.parse_graph(APPEND.replace("f32[1, 8]", "f32[1, 3]"), "cache.oi")
    first = oi.Simulator(None, graph, device="cpu")
    second = oi.Simulator(None, graph, device="cpu")
    assert first.native.source == "compiled" and second.native.source == "memory"
    script = (
        "import oi_compiler as oi\n"
        f"g = oi.parse_graph({APPEND.replace('f32[1, 8]', 'f32[1, 3]')!r}, 'cache.oi')\n"
        "print(oi.Simulator(None, g, device='cpu').native.source)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "OI_CACHE_DIR": str(tmp_path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "disk"


def test_plan_is_the_same_before_and_after_lowering_ops() -> None:
    """The state layout the lowered module carries is the graph's, laid out before its ops are lowered."""
    module = lower_step(oi.Graph.load(TINY).module, SIZES)
    layout = StateLayout.from_attr(module.attributes[LAYOUT_ATTR])
    again = bound_analysis(oi.Graph.load(TINY).module, SIZES)
    assert layout.vars == again.vars
    assert layout.words == again.words
    assert isinstance(again.graph, GraphOp) and analyze_step is not None
