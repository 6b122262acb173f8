"""Edge cases of the compiled CPU path, each the graph that once showed a bug (all fixed)."""

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


def _outcome(exe, values=None):
    exe.insert(**(values or {}))
    try:
        exe.step()
        return None
    except oi.OiError as e:
        return type(e).__name__, str(e)


def test_largest_index_on_a_fixed_table_is_refused_not_written_past_the_buffer() -> None:
    """k + 1 wrapped for k = 2**63 - 1: the size checks passed and the write landed past the table."""
    text = """
    dynamic { x: f32[2]; }
    persistent { p: i64 @init(9223372036854775807); K(i): f32[2] @table @fixed(i = 4); }
    block entry { cache.write x >> K[p]; }
    """
    outcomes = [_outcome(exe, {"x": np.ones(2, np.float32)}) for exe in _both(text, {})]
    assert outcomes[0] == outcomes[1] and "exceeds fixed size 4" in outcomes[0][1]


def test_most_negative_slice_end_underflows_as_on_the_reference() -> None:
    text = """
    volatile { keys: f32[1, 2]; }
    persistent { p: i64 @init(-9223372036854775808); K(i): f32[2] @table; }
    block entry { cache.read K[0..p] >> keys; }
    """
    outcomes = [_outcome(exe) for exe in _both(text, {})]
    assert outcomes[0] == outcomes[1] and "slice end underflow for size 0" in outcomes[0][1]


def test_cache_write_reads_its_source_before_its_indices() -> None:
    text = """
    constant { W(l): f32[2] @pattern("w.{l}"); }
    persistent { p: i32 @init(-1); K(i): f32[2] @table; }
    block entry { cache.write W[3] >> K[p]; }
    """
    graph = oi.parse_graph(text, "r.oi")
    model = oi.Model(tensors={"w.0": np.ones(2, np.float32)})
    outcomes = [_outcome(oi.Simulator(model, graph, device=d).make_executor()) for d in ("reference", "cpu")]
    assert outcomes[0] == outcomes[1] and "model variable not found: w.3" in outcomes[0][1]


def test_a_read_destination_indexes_a_prefix_table() -> None:
    text = """
    constant { W(l): f32[2] @pattern("w.{l}"); }
    dynamic { x: i32; }
    volatile { e: i32; y: f32[2]; }
    persistent { K(i): i32 @table; }
    block entry { cache.write x >> K[0]; cache.read K[0] >> e; op add(W[e], W[e]) >> y; }
    """
    graph = oi.parse_graph(text, "r.oi")
    model = oi.Model(tensors={"w.0": np.array([1, 2], np.float32), "w.1": np.array([5, 6], np.float32)})
    results = []
    for device in ("reference", "cpu"):
        exe = oi.Simulator(model, graph, device=device).make_executor()
        exe.insert(x=np.int32(1))
        exe.step()
        results.append(exe.fetch("y"))
    np.testing.assert_array_equal(results[1], results[0])
    np.testing.assert_array_equal(results[0], [10, 12])


def test_load_state_resets_what_the_file_does_not_hold(tmp_path) -> None:
    text = """
    dynamic { x: f32[2]; }
    volatile { y: f32[2]; keys: f32[T, 2]; }
    persistent { K(i): f32[2] @table; }
    block entry { op add(x, x) >> y; cache.write x >> K[0]; cache.read K[0..] >> keys; }
    """
    graph = oi.parse_graph(text, "r.oi")
    model = oi.Model(sizevars={"T": 4})
    fresh = oi.Simulator(model, graph, device="reference").make_executor()
    path = fresh.save_state(tmp_path / "fresh.st")
    seen = []
    for device in ("reference", "cpu"):
        exe = oi.Simulator(model, graph, device=device).make_executor()
        exe.insert(x=np.ones(2, np.float32))
        exe.step()
        exe.load_state(path)
        seen.append((exe.fetch("y").tolist(), exe.fetch("keys").tolist(), exe.table_sizes("K")))
    assert seen[0] == seen[1]


@pytest.mark.parametrize(
    ("text", "what"),
    [
        # (`cache.read` into a temporary and prefix tables of five indices, once here, now run:
        # tests/cpu/test_cpu_constructs.py::test_once_refused_constructs_run)
        ("persistent { n: i32; K(i): f32[2] @table; } block entry { assign t: f32[4]; cache.read K[0..n] >> t; }",
         r"cache.read into t, declared \[4\], of another rank or entry shape"),
        ("volatile { y: f32[2]; z: f32[2]; } persistent { K(i): f32[2] @table; } block entry { yield y; await y; }"
         " block a { cache.read K[0] >> y; }", "cache.read into y in async block a"),  # a yielded variable
    ],
)
def test_refused_with_a_message_not_a_crash(text: str, what: str) -> None:
    graph = oi.parse_graph(text, "r.oi")
    with pytest.raises(oi.PassError, match=what):
        oi.Simulator(oi.Model(), graph, device="cpu")


def test_auto_dim_growth_in_a_failed_step_is_undone() -> None:
    """A step grows an @auto_dim tensor twice (one read, one write), then fails: the tensor and its
    counts come back; the next steps continue as on the reference."""
    text = """
    dynamic { i: i32; w: f32[3, 4]; z: f32[2, 2]; }
    volatile { y: f32[2, 2]; }
    persistent { a: i32; M(r, c): f32[2, 2] @init(1.5) @auto_dim(r, c); K(p): f32[2, 2] @table @fixed(p = 1); }
    block entry {
        cache.write i >> a;
        cache.read M[1, 0] >> y;
        cache.write w >> M[1, 2];
        cache.read M[a, 2] >> y;
        cache.write z >> K[a];
    }
    """
    exes = list(_both(text, {}))
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    for n, i in enumerate([0, 1, 0, 2, 1]):
        values = {"i": np.int32(i), "w": w + n, "z": np.full((2, 2), n, np.float32)}
        outcomes = [_outcome(exe, values) for exe in exes]
        assert outcomes[0] == outcomes[1], (n, outcomes)
        for name in ("M", "a", "K"):
            np.testing.assert_array_equal(exes[1].state(name), exes[0].state(name))
            assert exes[1].table_sizes(name) == exes[0].table_sizes(name)
        np.testing.assert_array_equal(exes[1].fetch("y"), exes[0].fetch("y"))


def test_a_full_read_of_fixed_indices_has_a_static_shape() -> None:
    """`cache.read K[..]` of `@fixed` indices is the fixed size, so an op that needs static shapes
    (matmul) takes it (before: "does not support op matmul on these inputs sized at run time");
    reads that differ in a dim into one destination keep that dim sized at run time."""
    text = """
    dynamic { x: f32[4, 4]; w: f32[3]; u: f32[3]; i: i64; }
    volatile { all: f32[4, 3]; part: f32[T, 3]; y: f32[4, 3]; mixed: f32[T, 3]; }
    persistent { K(r): f32[3] @table @fixed(r = 4); G(r): f32[3] @table; n: i64; }
    block entry {
        cache.write i >> n;
        cache.write w >> K[n];
        cache.write u >> G[n];
        cache.read K[..] >> all;
        op matmul(x, all) >> y;
        cache.read K[0..] >> mixed;
        cache.read G[..] >> mixed;
        cache.read K[1..3] >> part;
    }
    """
    exes = list(_both(text, {"T": 1}))
    rng = np.random.default_rng(0)
    for n, i in enumerate([0, 3, 1]):
        values = {"x": rng.standard_normal((4, 4)).astype(np.float32),
                  "w": rng.standard_normal(3).astype(np.float32), "u": rng.standard_normal(3).astype(np.float32),
                  "i": np.int64(i)}  # fmt: skip
        outcomes = [_outcome(exe, values) for exe in exes]
        assert outcomes[0] == outcomes[1], (n, outcomes)
        for name in ("all", "y", "mixed", "part"):
            np.testing.assert_allclose(exes[1].fetch(name), exes[0].fetch(name), rtol=1e-6, err_msg=name)


def test_a_read_of_other_dims_than_declared_keeps_its_entry_dims_static() -> None:
    """Fuzz finding: a read into a variable declared with other dims (the read rebinds it),
    followed by a write to the table, failed to compile after reads of @fixed indices got static
    shapes ("cannot match subview sizes"): the entry dims are always static."""
    text = """
    dynamic { x: bool[3, 1]; }
    volatile { r: bool[2, 1, 3, 1]; }
    persistent { p: u64; K(a, b): bool[3, 1] @table @fixed(b = 4); }
    block entry {
        cache.read K[p..p, 1..2] >> r;
        cache.write x >> K[0, 0];
    }
    """
    exes = list(_both(text, {}))
    outcomes = [_outcome(exe, {"x": np.ones((3, 1), bool)}) for exe in exes]
    assert outcomes == [None, None]
    assert exes[1].table_sizes("K") == exes[0].table_sizes("K") == [1, 4]
    assert exes[1].fetch("r").shape == exes[0].fetch("r").shape == (0, 1, 3, 1)


@pytest.mark.parametrize("dtype", ["f16", "f32", "bf16"])
def test_gelu_of_a_scalar(dtype: str) -> None:
    """Fuzz finding: gelu on a 0-d input failed on the reference ('float' object has no attribute
    'astype'); cpu computed it."""
    text = f"dynamic {{ x: {dtype}; }} volatile {{ y: {dtype}; }} block entry {{ op gelu(x) >> y; }}"
    exes = list(_both(text, {}))
    x = np.array(0.75, dtype=exes[0].fetch("x").dtype)
    assert [_outcome(exe, {"x": x}) for exe in exes] == [None, None]
    np.testing.assert_allclose(exes[1].fetch("y").astype(np.float64), exes[0].fetch("y").astype(np.float64), rtol=1e-2)


def test_a_copied_read_into_a_variable_of_another_rank_is_refused() -> None:
    """Before its first read a variable holds its declared value; a copied read destination's
    buffer is laid out for the reads' rank and could not hold it (an op reading it before any read
    failed on cpu where the reference ran): refused when the Simulator is built."""
    text = """
    dynamic { k: i32; }
    volatile { y: f32[1, 2, 2]; r: f32[1, 2, 2]; }
    persistent { s: i32 @init(0); T(a): f32[2] @table; }
    block entry {
        op add(y, y) >> r;
        cache.write k >> s;
        loop l (i in 0..s) { cache.read T[1..] >> y; cache.read T[..1] >> y; }
    }
    """
    with pytest.raises(oi.PassError, match=r"cache.read into y, declared \[1, 2, 2\], with another rank"):
        oi.Simulator(oi.Model(), oi.parse_graph(text, "r.oi"), device="cpu")


def test_a_read_of_another_rank_in_a_recursive_graph_compiles() -> None:
    """Fuzz finding: the check for a read destination of another rank used before its first read
    walked the uses through a block that branches back into itself, without end (an internal
    RecursionError in lower-ops where the graph compiled before)."""
    text = """
    persistent { p4(k2, k3): f8[T, B] @table @init(-0.5); }
    block b1 { op or(x6, x7) >> v8; }
    volatile { r5: f8[T]; v8: bool[N, B]; }
    block entry { branch x0 entry b1; cache.read p4[..2, 2] >> r5; }
    dynamic { x0: bool; x6: bool[N, B]; x7: bool[N, B]; }
    """
    exes = list(_both(text, {"T": 2, "B": 2, "N": 2}))
    outcomes = [_outcome(exe, {"x0": np.bool_(False)}) for exe in exes]
    assert outcomes[0] == outcomes[1]


VIEW_SOURCE = """
dynamic { x: f32[]; c_in: i64; d_in: i64; go: bool; }
volatile { src: f32[1, 1, 2, 3]; }
persistent { Q(a, b, c, d): f32[] @table; K(b, t): f32[2, 3] @table; W(t): f32[1, 1, 2, 3] @table; lens: i64[1];
             C: i64; Dd: i64; }
block entry {
    cache.write c_in >> C; cache.write d_in >> Dd;
    cache.write x >> Q[0, 0, C, Dd];
    branch go use skip;
}
block use {
    cache.read Q[0..1, 0..1, 0..2, 0..3] >> src;
    STATEMENT
    return;
}
block skip { return; }
"""


@pytest.mark.parametrize("statement,table", [("cache.append src >> K[lens];", "K"), ("cache.write src >> W[0];", "W")])
def test_a_view_of_a_table_as_a_source_keeps_its_strides(statement: str, table: str) -> None:
    """`src` is a view of Q's data (its rows step by Q's capacity, not by 3). A cast to the static
    shape used to give it a row-major layout, so the second row was read from the wrong place
    (found by review: the append wrote [0, 0, 0] where the reference wrote [10, 11, 12])."""
    ref, cpu = _both(VIEW_SOURCE.replace("STATEMENT", statement), {})
    for exe in (ref, cpu):
        for c in range(2):
            for d in range(3):
                exe.insert(x=np.float32(10 * c + d), c_in=c, d_in=d, go=False).step()
        exe.insert(x=np.float32(0), c_in=0, d_in=0, go=True).step()
    assert cpu.native.plan.vars["src"].kind == "view"
    expected = np.array([[0, 1, 2], [10, 11, 12]], np.float32)
    np.testing.assert_array_equal(np.asarray(ref.state(table)).reshape(-1, 2, 3)[0], expected)
    np.testing.assert_array_equal(np.asarray(cpu.state(table)), np.asarray(ref.state(table)))
