"""Bugs found in the compiled CPU path, each pinned by the graph that showed it."""

from __future__ import annotations

import numpy as np
import pytest

import oi_compiler as oi


def _both(text: str, sizes: dict[str, int]):
    graph = oi.parse_graph(text, "r.oi")
    model = oi.Model(sizevars=sizes)
    return (oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cpu"))


def test_op_on_a_runtime_sized_input_checks_its_output_shape_when_it_runs() -> None:
    """It used to compile into an error kernel ("does not support ... yet") that fired at run time."""
    text = """
    volatile { keys: f32[T, D]; s: f32[T, D]; }
    persistent { t: i32 @init(8); K(p): f32[D] @table; }
    block entry { cache.read K[0..t] >> keys; op relu(keys) >> s; cache.increment t; }
    """
    ref, cpu = _both(text, {"D": 4, "T": 8})
    ref.step()
    cpu.step()
    assert np.array_equal(ref.fetch("s"), cpu.fetch("s"))
    errors = []
    for exe in (ref, cpu):
        with pytest.raises(oi.ExecutionError) as info:
            exe.step()
        errors.append((str(info.value), exe.table_sizes("K"), int(exe.state("t"))))
    assert errors[0] == errors[1]
    assert "op relu output shape [8, 4] does not match result shape [9, 4]" in errors[0][0]
    assert "r.oi:4:" in errors[0][0]


def test_attention_over_unequal_key_and_value_lengths_fails_as_on_the_reference() -> None:
    """Run-time sizes a shape rule needs equal are checked when the node runs, with the rule's message."""
    text = """
    dynamic { q: f32[1, 2, 4]; x: f32[1, 4]; }
    volatile { keys: f32[T, 1, 4]; values: f32[T, 1, 4]; o: f32[1, 2, 4]; }
    persistent { t: i32 @init(0); K(p): f32[1, 4] @table; V(p): f32[1, 4] @table; }
    block entry {
        cache.write x >> K[t];
        cache.write x >> V[0];
        cache.read K[0..] >> keys;
        cache.read V[0..] >> values;
        op attention(q, keys, values) >> o;
        cache.increment t;
    }
    """
    ref, cpu = _both(text, {"T": 4})
    rng = np.random.default_rng(0)
    q, x = rng.standard_normal((1, 2, 4)).astype(np.float32), rng.standard_normal((1, 4)).astype(np.float32)
    for exe in (ref, cpu):
        exe.insert(q=q, x=x)
        exe.step()
    np.testing.assert_allclose(cpu.fetch("o"), ref.fetch("o"), rtol=1e-6, atol=1e-6)
    errors = []
    for exe in (ref, cpu):
        with pytest.raises(oi.OiError) as info:
            exe.step()
        errors.append((type(info.value), str(info.value), exe.table_sizes("K"), exe.table_sizes("V")))
    assert errors[0] == errors[1]


def test_empty_axis_error_names_every_run_time_size() -> None:
    """The reference's message for an integer mean over an empty read showed a stand-in size on cpu."""
    text = """
    dynamic { x0: i32[2, 2]; }
    volatile { r0: i32[1, 1, 2, 2]; q0: i32[2, 2]; }
    persistent { s0: i32 @init(1); T0(a, b): i32[2, 2] @table; }
    block entry {
        cache.write x0 >> T0[s0, 1];
        cache.reset T0[];
        cache.read T0[] >> r0;
        op mean_axis(r0, axes=[0, 1]) >> q0;
    }
    """
    errors = []
    for exe in _both(text, {}):
        exe.insert(x0=np.ones((2, 2), np.int32))
        with pytest.raises(oi.ExecutionError) as info:
            exe.step()
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert "reduces over an empty axis of [0, 0, 2, 2]" in errors[0]
