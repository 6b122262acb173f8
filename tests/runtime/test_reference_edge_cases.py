"""Edge cases of the reference executor (runtime/{executor,reference,tables,state_file}.py) against
docs/semantics.md "Running a graph": tricky cases that are right, and bugs once found (all fixed)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.dialects.oi import NamedOp

FILE = "review.oi"


@pytest.fixture(autouse=True)
def _no_env_trace(monkeypatch):
    monkeypatch.delenv("OI_TRACE", raising=False)
    monkeypatch.delenv("OPENINFER_TRACE", raising=False)


def executor(src: str, *, sizevars=None, tensors=None, trace=False) -> oi.Executor:
    graph = oi.parse_graph(textwrap.dedent(src), FILE)
    sim = oi.Simulator(oi.Model(sizevars={}, tensors=tensors or {}), graph, sizevars=sizevars)
    if trace:
        sim.with_trace()
    return sim.make_executor()


def f32(*values) -> np.ndarray:
    return np.array(values, dtype=np.float32)


# --- rollback: every persistent mutation path is journaled (right) ----------------------------------


def test_rollback_undoes_growth_by_reads_resets_and_lazy_increments() -> None:
    exe = executor("""
        persistent { t: i32; K(i): f32[2] @table; M(r): f32[2] @auto_dim(r); P: f32 @init(4.0); }
        volatile { y: f32[2]; m: f32[2]; z: f32[3]; }
        block entry {
            cache.increment 3 t;
            cache.read K[t] >> y;
            cache.read M[t] >> m;
            cache.reset P;
            op add(z, y) >> z;
        }
    """)
    with pytest.raises(oi.ExecutionError, match="broadcast"):
        exe.step()
    assert exe.table_sizes("K") == [0] and exe.table_sizes("M") == [0]
    assert exe.state("t") == 0 and exe.state("M").shape == (2,) and exe.state("P") == 4.0
    assert exe.steps == 0


def test_rollback_undoes_async_blocks_cache_ops_when_the_merge_fails() -> None:
    exe = executor("""
        persistent { t: i32; K(i): f32 @table; }
        volatile { v: f32; one: f32 @init(1.0); }
        block entry { yield v; await v; }
        block a { cache.increment t; cache.write one >> K[t]; op add(v, one) >> v; yield v; }
        block b { cache.increment t; op add(v, one) >> v; yield v; }
    """)
    with pytest.raises(oi.ExecutionError, match="multiple blocks mutated v"):
        exe.step()
    assert exe.state("t") == 0 and exe.table_sizes("K") == [0]


def test_rollback_after_failure_in_a_branch_target_and_on_keyboard_interrupt() -> None:
    exe = executor("""
        persistent { t: i32; }
        volatile { v: f32[2]; w: f32[3]; c: bool @init(true); }
        block entry { cache.increment t; branch c a b; }
        block a { cache.increment 5 t; op add(v, w) >> v; }
        block b { return; }
    """)
    with pytest.raises(oi.ExecutionError):
        exe.step()
    assert exe.state("t") == 0

    exe = executor("persistent { t: i32; } volatile { v: f32; one: f32 @init(1.0); } "
                   "block entry { cache.increment t; op add(v, one) >> v; }")

    def interrupted(*_):
        raise KeyboardInterrupt

    handler = exe.interpreter._handlers[NamedOp]
    exe.interpreter._handlers[NamedOp] = interrupted
    with pytest.raises(KeyboardInterrupt):
        exe.step()
    assert exe.state("t") == 0 and exe.steps == 0
    exe.interpreter._handlers[NamedOp] = handler
    exe.step()
    assert exe.state("t") == 1 and exe.steps == 1


def test_save_after_a_failed_step_restores_and_continues_identically(tmp_path) -> None:
    src = """
        dynamic { x: f32[2]; }
        volatile { y: f32[2]; z: f32[3]; a: f32[2]; }
        persistent { t: i32; K(i): f32[2] @table; }
        block entry { op add(x, y) >> y; transfer y >> a; cache.increment t; cache.write y >> K[t]; }
        block bad { op add(z, y) >> z; }
    """
    exe = executor(src)
    exe.insert(x=f32(1, 2))
    exe.step()
    failing = executor(src.replace("block entry {", "block entry { branch bad;", 1))
    failing.load_state(exe.save_state(tmp_path / "a.oist"))
    with pytest.raises(oi.ExecutionError):
        failing.step()
    failing.save_state(tmp_path / "b.oist")
    again = executor(src.replace("block entry {", "block entry { branch bad;", 1))
    again.load_state(tmp_path / "b.oist")
    assert again.steps == 1 and again.table_sizes("K") == [2]
    assert again.values["y"] is again.values["a"]  # the transfer alias survives
    np.testing.assert_array_equal(again.state("K"), failing.state("K"))


# --- resolution, traces, locations, model safety (right) -------------------------------------------


def test_loop_index_shadows_a_persistent_and_a_sizevar_shadows_both() -> None:
    exe = executor("""
        persistent { t: i32 @init(7); D: i32 @init(9); K(i): f32 @table; }
        volatile { y: f32 @init(1.0); }
        block entry { loop l (t in 0..2) { cache.write y >> K[t]; } cache.write y >> K[D]; }
    """, sizevars={"D": 3})
    exe.step()
    assert exe.table_sizes("K") == [4]  # K[0], K[1] from the loop, then K[3]


def test_trace_numbering_of_nested_loops_inside_a_branch_target() -> None:
    exe = executor("""
        volatile { y: f32; one: f32 @init(1.0); c: bool @init(true); }
        block entry { op add(y, one) >> y; branch c sub other; op add(y, one) >> y; }
        block other { return; }
        block sub {
          loop a (i in 0..2) {
            loop b (j in 0..2) { op add(y, one) >> y; return; }
            op add(y, one) >> y;
          }
          op add(y, one) >> y;
        }
    """, trace=True)
    exe.step()
    assert [e["node_index"] for e in exe.trace()] == [0, 1, 8, 6, 4, 5, 7, 6, 4, 5, 7, 9, 2]
    assert exe.fetch("y") == 7.0


def test_error_inside_nested_loops_is_located_at_the_op() -> None:
    exe = executor("""
        volatile { y: f32[2]; z: f32[3]; }
        block entry {
          loop a (i in 0..3) {
            loop b (j in 0..2) {
              op add(y, z) >> y;
            }
          }
        }
    """)
    with pytest.raises(oi.ExecutionError) as info:
        exe.step()
    assert str(info.value).startswith(f"{FILE}:6:7: error:")
    assert info.value.node == "block entry node op add(y,z) >> y"


def test_model_tensor_behind_ref_is_never_mutated_by_in_place_ops() -> None:
    w = f32(1, 2)
    exe = executor('volatile { v: f32[2] @ref("W.0"); one: f32[2] @init(1.0); } block entry { op add(v, one) >> v; }',
                   tensors={"W.0": w})
    exe.step()
    exe.step()
    np.testing.assert_array_equal(exe.fetch("v"), f32(3, 4))
    np.testing.assert_array_equal(w, f32(1, 2))


def test_insert_is_all_or_nothing() -> None:
    exe = executor("dynamic { x: f32[2]; n: i8; } block entry { return; }")
    with pytest.raises(oi.ExecutionError, match="insert n"):
        exe.insert(x=f32(5, 6), n=300)
    assert "x" not in exe.values


# --- bugs -----------------------------------------------------------------------------------------


def test_prefix_entry_with_wrong_model_shape_is_a_located_error() -> None:
    exe = executor('constant { W(l): f32[2] @pattern("W.{l}"); } volatile { y: f32[2]; } '
                   "block entry { op add(W[1], W[1]) >> y; }", tensors={"W.1": np.ones(3, np.float32)})
    with pytest.raises(oi.OiError) as info:
        exe.step()
    assert info.value.loc is not None


def test_nan_loop_bound_is_not_a_raw_python_error() -> None:
    exe = executor("dynamic { n: f32; } volatile { y: f32; one: f32 @init(1.0); } "
                   "block entry { loop l (i in 0..n) { op add(y, one) >> y; } }")
    exe.insert(n=np.float32("nan"))
    try:
        exe.step()
    except oi.OiError:
        return
    assert exe.fetch("y") == 0.0


def test_yield_in_a_loop_of_an_async_block_ends_the_block() -> None:
    exe = executor("""
        volatile { v: f32; one: f32 @init(1.0); ten: f32 @init(10.0); }
        block entry { yield v; await v; }
        block a { loop l (i in 0..3) { op add(v, one) >> v; yield v; } op add(v, ten) >> v; yield v; }
    """)
    exe.step()
    assert exe.fetch("v") == 1.0  # actual: 11.0


def test_load_state_of_a_npy_file_is_a_state_error(tmp_path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(oi.StateError):
        executor("dynamic { x: f32[2]; } block entry { return; }").load_state(path)


def _rewritten(tmp_path, exe: oi.Executor, change) -> str:
    saved = exe.save_state(tmp_path / "ok.oist")
    with np.load(saved) as archive:
        arrays = {key: archive[key] for key in archive.files}
    header = json.loads(arrays.pop("header").tobytes())
    change(header)
    path = tmp_path / "bad.npz"
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    return path


SRC = "dynamic { x: f32[2]; } volatile { y: f32[2]; } block entry { op add(x, x) >> y; }"


def test_load_state_with_a_malformed_values_header_is_a_state_error(tmp_path) -> None:
    exe = executor(SRC)
    exe.insert(x=f32(1, 2)).step()
    path = _rewritten(tmp_path, exe, lambda h: h.__setitem__("values", []))
    with pytest.raises(oi.StateError):
        executor(SRC).load_state(path)


def test_load_state_rejects_a_dynamic_value_of_the_wrong_shape(tmp_path) -> None:
    exe = executor(SRC)
    exe.insert(x=f32(1, 2)).step()
    path = _rewritten(tmp_path, exe, lambda h: h["values"]["x"].__setitem__("shape", [1, 2]))
    with pytest.raises(oi.StateError):
        executor(SRC).load_state(path)


def test_state_cannot_be_made_writable() -> None:
    exe = executor("persistent { p: f32[2]; } volatile { y: f32[2] @init(3.0); } block entry { cache.write y >> p; }")
    exe.step()
    view = exe.state("p")
    try:
        view.flags.writeable = True
        view[...] = 42
    except ValueError:
        pass
    np.testing.assert_array_equal(exe.state("p"), f32(3, 3))
