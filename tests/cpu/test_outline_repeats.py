"""Repeated statement runs of an unrolled graph are compiled once (lowering/outline.py).

The layers of benchmarks/decoder_graph.py's unrolled decoder become one function called once per
layer; the step still computes, fails and rolls back as the reference does, and an error inside an
outlined layer names that layer's statement and location."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.ir_context import make_context
from oi_compiler.lowering.outline import REPEAT_PREFIX
from oi_compiler.passes import run_passes
from oi_compiler.passes.bind_sizes import BindSizes
from tests.step_checks import assert_same_snapshot, error_text, snapshot, step

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from decoder_graph import decoder_graph_text  # noqa: E402

LAYERS = 6
SIZES = {"D": 4, "F": 8, "T": 8}
NAMES = {"wq": ("D", "D"), "wk": ("D", "D"), "wv": ("D", "D"), "wo": ("D", "D"), "w1": ("D", "F"), "w2": ("F", "D")}


def _model(missing: str | None = None) -> oi.Model:
    rng = np.random.default_rng(0)
    tensors = {f"layers.{l}.{name}": (rng.standard_normal([SIZES[d] for d in dims]) * 0.3).astype(np.float32)
               for l in range(LAYERS) for name, dims in NAMES.items()}  # fmt: skip
    tensors.pop(missing, None)
    return oi.Model(sizevars=dict(SIZES), tensors=tensors)


def _lowered(text: str):
    module = oi.parse_graph(text, "d.oi").module.clone()
    ctx = make_context()
    BindSizes(tuple(sorted(SIZES.items()))).apply(ctx, module)
    for name in ("lower-ops", "lower-cache"):
        run_passes(module, name, ctx, verify_each=False)
    return module


def _line(text: str, statement: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.strip() == statement)


def test_the_repeated_layers_are_one_function_called_per_layer() -> None:
    module = _lowered(decoder_graph_text(LAYERS))
    printed = str(module)
    assert printed.count(f"func.func private @{REPEAT_PREFIX}") == 1
    # layer 0 differs (the first writes of its views), layers 1.. are the same code
    assert printed.count(f"func.call @{REPEAT_PREFIX}0(") == LAYERS - 1
    step = next(op for op in module.ops if getattr(op, "sym_name", None) and op.sym_name.data == "step")
    assert sum(1 for _ in step.walk()) < 2000  # layer 0 and the calls, not six layers


def test_a_step_of_less_repetition_is_left_as_it_is() -> None:
    printed = str(_lowered(decoder_graph_text(2)))
    assert REPEAT_PREFIX not in printed


def _pair(text: str, model: oi.Model):
    graph = oi.parse_graph(text, "d.oi")
    return [oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cpu")]


def test_outlined_layers_compute_as_the_reference() -> None:
    ref, cpu = _pair(decoder_graph_text(LAYERS), _model())
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.standard_normal((1, SIZES["D"])).astype(np.float32)
        for exe in (ref, cpu):
            exe.insert(x=x)
            exe.step()
        np.testing.assert_allclose(cpu.fetch("h"), ref.fetch("h"), rtol=1e-5, atol=1e-5)
        for l in range(LAYERS):
            assert cpu.table_sizes(f"K{l}") == ref.table_sizes(f"K{l}")
            np.testing.assert_array_equal(cpu.state(f"V{l}"), ref.state(f"V{l}"))


def test_an_error_in_an_outlined_layer_names_that_layer() -> None:
    text = decoder_graph_text(LAYERS)
    ref, cpu = _pair(text, _model(missing="layers.4.wv"))
    errors = [error_text(step(exe, {"x": np.ones((1, SIZES["D"]), np.float32)})) for exe in (ref, cpu)]
    assert errors[0] == errors[1]
    assert errors[1] == ("ExecutionError", "model variable not found: layers.4.wv",
                         f"d.oi:{_line(text, 'op matmul(h, Wv[4]) >> v;')}:5", "block entry node op matmul(h,Wv[4]) >> v")


def test_a_cache_error_in_an_outlined_layer_rolls_back_every_layer() -> None:
    """K3 is smaller: its limit is one more argument of the shared function; the third step fails
    in layer 3, after layers 0-2 wrote their tables, and leaves the state as it was."""
    text = decoder_graph_text(LAYERS).replace("K3(pos): f32[1, D] @table @fixed(pos = 4096)",
                                              "K3(pos): f32[1, D] @table @fixed(pos = 2)")  # fmt: skip
    assert str(_lowered(text)).count(f"func.call @{REPEAT_PREFIX}0(") == LAYERS - 1
    ref, cpu = _pair(text, _model())
    x = np.full((1, SIZES["D"]), 0.5, np.float32)
    for _ in range(2):
        assert step(ref, {"x": x}) is None and step(cpu, {"x": x}) is None
    before = snapshot(cpu)
    errors = [error_text(step(exe, {"x": x})) for exe in (ref, cpu)]
    assert errors[0] == errors[1]
    assert errors[1] == ("CacheError", "cache table K3 index 0 exceeds fixed size 2 (index value 2)",
                         f"d.oi:{_line(text, 'cache.write k >> K3[t];')}:5", "block entry node cache.write k >> K3[t]")
    assert_same_snapshot(snapshot(cpu), before, "after the failed step")
    assert_same_snapshot(snapshot(cpu), snapshot(ref), "against the reference")
