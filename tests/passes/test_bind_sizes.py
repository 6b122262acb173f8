"""--bind-sizes from Python: sizes from options and from a model, and the graph still runs the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi

SRC = """
dynamic { x: f32[D]; }
volatile { keys: f32[T, D]; }
persistent { t: i32 @init(0); K(p): f32[D] @table @fixed(p = T); }
block entry { cache.write x >> K[t]; cache.increment t; cache.read K[0..T] >> keys; return; }
"""


def run_steps(graph: oi.Graph, model: oi.Model, steps: int = 3) -> list[np.ndarray]:
    exe = oi.Simulator(model, graph).make_executor()
    out = []
    for i in range(steps):
        exe.insert(x=np.full(4, i, np.float32))
        exe.step()
        out.append(exe.fetch("keys"))
    return out


def test_sizes_from_a_model_file_and_options(tmp_path: Path) -> None:
    path = oi.Model(sizevars={"D": 4, "T": 3}).save(tmp_path / "m.npz")
    graph = oi.parse_graph(SRC.replace("@fixed(p = T)", ""), "g.oi")
    oi.run_passes(graph.module, f"bind-sizes{{model=\"{path}\" T=5}}")
    text = str(graph.module)
    assert "@x : f32[4]" in text and "@keys : f32[5, 4]" in text and "@K[0:5]" in text


def test_bound_graph_runs_like_the_symbolic_one() -> None:
    model = oi.Model(sizevars={"D": 4, "T": 3})
    symbolic = oi.parse_graph(SRC.replace("@fixed(p = T)", ""), "g.oi")
    bound = oi.parse_graph(SRC.replace("@fixed(p = T)", ""), "g.oi")
    oi.run_passes(bound.module, "bind-sizes{D=4 T=3}")
    bound.verify()
    for a, b in zip(run_steps(symbolic, model), run_steps(bound, oi.Model())):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("spec", ["bind-sizes{D=-1}", "bind-sizes{D=1.5}", "bind-sizes{sizes=\"D\"}"])
def test_bad_sizes(spec: str) -> None:
    graph = oi.parse_graph(SRC.replace("@fixed(p = T)", ""), "g.oi")
    with pytest.raises(oi.PassError, match="bind-sizes"):
        oi.run_passes(graph.module, spec)
