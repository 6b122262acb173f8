"""Constructs `device="cpu"` used to crash on or refuse: each run on both devices and compared
(results, errors with class, message, location and node, and the state after a failed step)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import oi_compiler as oi
from tests.cpu.test_cpu_differential import FILE, Pair, assert_same, assert_same_error, build


def unverified(src: str, sizevars=None) -> tuple[oi.Executor, oi.Executor]:
    """Both executors of a graph the verifier would refuse (the devices must still agree)."""
    graph = oi.parse_graph(textwrap.dedent(src), filename=FILE, verify=False)
    model = oi.Model(sizevars=dict(sizevars or {}), tensors={})
    return tuple(oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cpu"))


def run(src: str, steps: list[dict], sizevars=None, fetch_first: bool = True, verify: bool = True):
    """Both devices through `steps`, compared after each; the reference's errors."""
    pair = Pair(*(build if verify else unverified)(src, {} if sizevars is None else sizevars))
    if fetch_first:
        pair.check("before any step")
    errors = []
    for n, values in enumerate(steps):
        expected, actual = pair.step(values)
        assert_same_error(expected, actual, f"step {n}")
        pair.check(f"after step {n}")
        errors.append(expected)
    return errors


def f32(*values) -> np.ndarray:
    return np.array(values, np.float32)


# --- crashes users reported -------------------------------------------------------------------


def test_op_on_rank0_scalars() -> None:
    """`x: f32;` has no dims: its memref descriptor has no strides (llvmlite's 'ptr != i64')."""
    src = """
    dynamic { x: f32; y: f32; n: i32; }
    volatile { z: f32; w: f32; k: i32; }
    block entry { op add(x, y) >> z; op mul(z, x) >> w; op neg(n) >> k; }
    """
    run(src, [{"x": np.float32(1.5), "y": np.float32(2.0), "n": np.int32(n)} for n in range(3)])


def test_auto_dim_read_at_scalar_indices_into_a_declared_volatile() -> None:
    src = """
    dynamic { a: i32; b: i32; }
    volatile { out: f32[D, H]; y: f32[D, H]; }
    persistent { rows: i32; cols: i32; M(r, c): f32[D, H] @init(1.5) @auto_dim(r, c); }
    block entry { cache.write a >> rows; cache.write b >> cols; cache.read M[rows, cols] >> out; op relu(out) >> y; }
    """
    run(src, [{"a": np.int32(a), "b": np.int32(b)} for a, b in [(0, 0), (1, 2), (0, 1), (3, 0)]], {"D": 2, "H": 3})


def test_fixed_table_slice_bounded_by_scalars_after_max_and_min() -> None:
    src = """
    dynamic { a: i32; b: i32; x: f32[D]; }
    volatile { lo: i32; hi: i32; out: f32[2, D]; }
    persistent { s: i32; e: i32; t: i32; K(p): f32[D] @table @fixed(p=4); }
    block entry {
        cache.write x >> K[t];
        cache.increment t;
        op min(a, b) >> lo; op max(a, b) >> hi;
        cache.write lo >> s; cache.write hi >> e;
        cache.read K[s..e] >> out;
    }
    """
    steps = [{"a": np.int32(a), "b": np.int32(b), "x": f32(a, b)} for a, b in [(0, 2), (3, 1), (2, 2), (1, 3), (0, 5)]]
    errors = run(src, steps, {"D": 2})
    assert errors[-1] is not None  # past the fixed size


# --- return before the end of its block ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "op add(x, x) >> y; return; op mul(x, x) >> y;",  # the rest of the entry never runs
        "loop l (i in 0..n) { cache.write x >> K[i]; return; cache.write x >> K[3]; } op neg(x) >> y;",
        "loop l (i in 1..n) { loop m (j in 0..3) { cache.write x >> K[j]; return; } cache.write x >> K[i]; }",
        "loop l (i in 0..n) { branch go done other; cache.write x >> K[i]; }",  # return ends the called block only
        "cache.write x >> K[1]; return; op neg(x) >> y; cache.reset K[];",
    ],
)
def test_return_before_the_end_of_its_block(body) -> None:
    src = f"""
    dynamic {{ x: f32[2]; n: i32; go: bool; }}
    volatile {{ y: f32[2]; }}
    persistent {{ K(p): f32[2] @table @fixed(p=4); }}
    block entry {{ {body} }}
    block done {{ op relu(x) >> y; return; op neg(x) >> y; }}
    block other {{ }}
    """
    steps = [{"x": f32(n, -n), "n": np.int32(n), "go": np.bool_(n % 2)} for n in (0, 1, 3, 2, 5)]
    run(src, steps)


# --- transfer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "transfer x >> y; op relu(x) >> z;",
        "transfer x >> y; op neg(y) >> y;",  # writes through y reach x (one buffer)
        "transfer y >> z; op add(x, x) >> y; op mul(z, x) >> z;",
        "op matmul(m, m) >> n; transfer n >> m; op matmul(m, n) >> m;",  # an op reading what it writes
        "transfer x >> t; op neg(t) >> t;",
        "loop l (i in 0..2) { transfer W[i] >> y; op add(y, x) >> z; }",
    ],
)
def test_transfer_aliases_two_names(body) -> None:
    src = f"""
    dynamic {{ x: f32[2]; }}
    volatile {{ y: f32[2]; z: f32[2]; m: f32[2, 2] @init(0.5); n: f32[2, 2]; }}
    constant {{ W(l): f32[2] @pattern("w.{{l}}"); }}
    block entry {{ assign t: f32[2]; {body} cache.write y >> P; }}
    persistent {{ P: f32[2]; }}
    """
    graph = oi.parse_graph(textwrap.dedent(src), filename=FILE)
    model = oi.Model(sizevars={}, tensors={"w.0": f32(1, 2), "w.1": f32(3, 4)})
    pair = Pair(*(oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cpu")))
    for n in range(3):
        assert_same_error(*pair.step({"x": f32(n, -n)}), f"step {n}")
        pair.check(f"after step {n}")
        # an insert binds x anew: y keeps the buffer it shared
        for exe in (pair.ref, pair.cpu):
            exe.insert(x=f32(10 + n, 1))
        pair.check(f"after insert {n}")


# --- ops on inputs sized at run time ------------------------------------------------------------


@pytest.mark.parametrize("out", ["f32[D, H]", "f32[D]", "f32", "f32[H, D]"])
@pytest.mark.parametrize("op", ["relu(m)", "add(m, m)", "mul(m, m)", "abs(m)"])
def test_op_on_a_runtime_sized_input_reports_the_result_shape(op, out) -> None:
    """A result of another rank than the output used to print `[None, None]`; `add(m, m)` used to
    report that m cannot broadcast with itself (two stand-ins for one size)."""
    src = f"""
    dynamic {{ a: i32; b: i32; }}
    volatile {{ m: f32[D, H]; y: {out}; }}
    persistent {{ r: i32; c: i32; M(i, j): f32[D, H] @init(0.5) @auto_dim(i, j); }}
    block entry {{ cache.write a >> r; cache.write b >> c; cache.read M[r, c] >> m; op {op} >> y; }}
    """
    steps = [{"a": np.int32(a), "b": np.int32(b)} for a, b in [(0, 0), (1, 0), (0, 2), (1, 2)]]
    run(src, steps, {"D": 2, "H": 3})



# --- ops that had no nest -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "stmt, out",
    [
        ("op add(a, c) >> y;", "f8[4, 8]"),
        ("op mul(a, a) >> y;", "f8[4, 8]"),
        ("op div(a, c) >> y;", "f8[4, 8]"),
        ("op relu(a) >> y;", "f8[4, 8]"),
        ("op clamp(a, min=-1.0, max=2.0) >> y;", "f8[4, 8]"),
        ("op sum_axis(a, axes=[1]) >> y;", "f8[4]"),
        ("op mean_axis(a, axes=[1]) >> y;", "f8[4]"),
        ("op max_axis(a, axes=[1]) >> y;", "f8[4]"),
        ("op matmul(a, b) >> y;", "f8[4, 4]"),
        ("op cast(a, to=f32) >> y;", "f32[4, 8]"),
        ("op argmax_axis(a, axis=1) >> y;", "i64[4]"),
    ],
)
def test_f8_math(stmt, out) -> None:
    """f8 computes in f32 and rounds once to f8 (overflow to inf, NaN kept), as the reference."""
    src = f"""
    dynamic {{ a: f8[4, 8]; c: f8[4, 8]; b: f8[8, 4]; }}
    volatile {{ y: {out}; }}
    block entry {{ {stmt} }}
    """
    from oi_compiler.dtypes import numpy_dtype

    f8 = numpy_dtype("f8")
    rng = np.random.default_rng(3)
    special = np.array([0.0, -0.0, 57344.0, -57344.0, np.inf, -np.inf, np.nan, 1e-5], np.float32)
    steps = []
    for scale in (1.0, 100.0, 3e4):
        a = (rng.standard_normal((4, 8)) * scale).astype(np.float32)
        a.reshape(-1)[:8] = special
        steps.append({"a": a.astype(f8), "c": (rng.standard_normal((4, 8)) * scale).astype(f8),
                      "b": (rng.standard_normal((8, 4)) * scale).astype(f8)})  # fmt: skip
    run(src, steps)


def test_a_bad_setting_fails_when_the_node_runs() -> None:
    """A nest builder's setting error is the reference's run-time error, not a refusal to compile."""
    src = """
    dynamic { a: f32[2]; }
    volatile { y: f32[2]; z: f32[2]; }
    block entry { op relu(a) >> z; op fill(a) >> y; }
    """
    errors = run(src, [{"a": f32(1, -2)}])
    assert "op fill requires setting value" in str(errors[0])


@pytest.mark.parametrize(
    "src",
    [
        "volatile { a: f32 @init(1.5); b: f32; }\nblock entry {\n    op add(a, a) >> a;\n    transfer a >> b;\n}",
        "volatile { a: f32 @init(1.5); }\nblock entry {\n    return;\n    op add(a, a) >> a;\n}",
        "volatile { a: f32 @init(1.5); }\nblock entry {\n    loop l (i in 0..2) {\n        return;\n    }\n}",
        "volatile { y: f32; }\nblock entry {\n    yield y;\n    await y;\n}\nblock w { op add(y, y) >> y; }",
        "volatile {\n    y: f32[2];\n    V(l): f32[2] @pattern(\"v.{l}\");\n}\nblock entry {\n    op add(V[0], V[1]) >> y;\n}",
        "volatile { y: f32[2]; }\npersistent { A(i): f32[2] @table; }\nblock entry {\n    cache.read A[0] >> y;\n"
        "    op add(y, y) >> y;\n}",
        "volatile { x: f32[2] @init(1.0); y: f32[2]; } persistent { K(i): f32[2] @table; }"
        " block entry { cache.write x >> K[0]; assign t: f32[2]; cache.read K[0] >> t; op add(t, t) >> y; }",
        'constant { W(a, b, c, d, e): f32[2] @pattern("w.{a}.{b}.{c}.{d}.{e}"); } volatile { y: f32[2]; }'
        " block entry { op add(W[0, 0, 0, 0, 1], W[0, 0, 0, 0, 1]) >> y; }",
    ],
    ids=["transfer", "early return", "return in a loop", "yield", "volatile prefix table", "read and op",
         "read into a temporary", "five indices"],
)
def test_once_refused_constructs_run(src) -> None:
    """These were `test_cpu_executor.py::test_unsupported_constructs` cases."""
    run(src, [{}, {}, {}])


@pytest.mark.parametrize(
    "body",
    [
        "cache.read A[1] >> y; op add(y, y) >> y;",
        "op add(y, y) >> y; cache.read A[] >> y;",  # before the read: the declared [2]
        "cache.read A[n] >> y; op add(y, y) >> z;",  # fits z only while A has no extra rows
        "cache.read A[n] >> y; op mul(y, y) >> y; cache.read A[] >> z; op relu(z) >> y;",
    ],
)
def test_op_writing_an_auto_dim_read_destination(body) -> None:
    """diff_findings.md #1: an op whose output is sized at run time (it used to crash the build);
    the reference compares the result with the output's current shape."""
    src = f"""
    dynamic {{ x: f32[2]; k: i32; }}
    volatile {{ y: f32[2]; z: f32[2]; }}
    persistent {{ n: i32; A(a): f32[2] @init(1.0) @auto_dim(a); }}
    block entry {{ cache.write k >> n; {body} }}
    """
    run(src, [{"x": f32(1, 2), "k": np.int32(k)} for k in (0, 1, 0, 2)])


# --- yield and await ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, blocks",
    [
        # the async blocks run at the await, in name order, on the snapshot the yield took
        ("op add(x, x) >> y; yield y; op neg(x) >> y; await y; op mul(y, x) >> z;",
         "block a { op add(y, y) >> y; yield y; }"),
        # one block writes y, another reads it (its own copy) and writes w, which is not yielded
        ("op relu(x) >> y; yield y, w; await y, w;",
         "block a { op mul(y, y) >> y; yield y; } block b { op add(y, y) >> w; op neg(w) >> w; cache.write w >> P; }"),
        # two blocks writing one yielded variable: the reference's error at the await
        ("yield y; await y;", "block a { op neg(x) >> y; } block b { op relu(x) >> y; }"),
        # never awaited: the blocks still run at the end of the step (their cache ops stay)
        ("op add(x, x) >> y; yield y;", "block a { op add(y, y) >> y; cache.write y >> P; cache.increment t; }"),
        # a second yield before the await
        ("yield y; op neg(x) >> z; yield y; await y;", "block a { op relu(y) >> y; }"),
        # in a loop: yield, await, yield again
        ("loop l (i in 0..n) { yield y; await y; op add(y, x) >> y; }", "block a { op add(y, x) >> y; cache.increment t; }"),
        # x is not yielded: the async block reads it as the model left it (zeros), not as inserted
        ("yield y; await y;", "block a { op add(x, x) >> y; }"),
        # a yield outside the entry ends its block, from inside a loop too
        ("yield y; await y;", "block a { loop l (i in 0..n) { op add(y, x) >> y; yield y; } op neg(y) >> y; }"),
        ("branch go c d; yield y; await y;",
         "block a { op add(y, y) >> y; } block c { op neg(x) >> y; loop l (i in 0..n) { yield y; } op relu(x) >> y; } "
         "block d { yield y; }"),
        # an error inside an async block: the step rolls back
        ("cache.write x >> P; yield y; await y;", "block a { cache.increment t; cache.write x >> K[t]; }"),
        # yields of different variables: the pending one decides what the blocks see and merge back
        ("yield y; await y; op add(y, x) >> z; yield z, w; await z; loop l (i in 0..n) { yield w; } await w;",
         "block a { op add(y, y) >> y; op add(z, x) >> z; } block b { op neg(w) >> w; op relu(z) >> y; }"),
        ("branch go c d; loop l (i in 0..n) { yield y; await y; yield z; await y; }",
         "block a { op add(y, x) >> y; op mul(z, z) >> z; } block c { yield y; } block d { op neg(x) >> w; }"),
        # transfer inside an async block: its copies share a buffer while it runs
        ("yield y, z; await y, z;", "block a { transfer y >> z; op neg(z) >> z; } block b { op add(w, x) >> w; }"),
        ("op add(x, x) >> y; yield y; await y;", "block a { transfer x >> y; op add(y, y) >> y; op mul(x, x) >> w; }"),
        # cache.read from a table in an async block: its copy is sized by the read
        ("yield y; await y;", "block a { cache.read K[0..t] >> s; op sum_axis(s, axes=[0]) >> y; cache.write x >> K[t]; }"),
        ("yield y; await y;", "block a { op relu(s) >> s2; cache.read K[t] >> w; op add(w, y) >> y; }"),
        # a block both the entry and an async block run (its kernels lowered once)
        ("yield y; await y; branch go c d;", "block a { branch go c d; } block c { op add(y, x) >> y; } block d { }"),
        # a yielded persistent variable: ops read the snapshot, cache ops the shared state
        ("yield t, y; cache.increment 2 t; await y; cache.read t >> n2;",
         "block a { loop l (i in 0..t) { op add(y, x) >> y; } cache.increment t; } block b { branch t c d; }"
         " block c { op neg(x) >> z; } block d { }"),
        # found by the random graphs: a transfer in a block never awaited; a table an async block writes
        # after the entry read it (the read is a copy, never a view of the table)
        ("op relu(x) >> y; yield y;", "block a { transfer x >> y; }"),
        ("cache.read K[] >> s2; cache.write x >> K[0]; yield y; cache.read K[] >> s;",
         "block a { transfer x >> y; cache.write x >> K[0]; cache.write y >> K[1]; }"),
        # temporaries: the block's own, assigned there
        ("assign u: f32[2]; op add(u, x) >> u; yield y, u; await y, u;",
         "block a { assign v: f32[2]; op add(v, u) >> v; op mul(v, v) >> y; op neg(u) >> u; }"),
    ],
)
def test_yield_and_await(entry, blocks) -> None:
    src = f"""
    dynamic {{ x: f32[2]; n: i32; go: bool; }}
    volatile {{ y: f32[2]; z: f32[2]; w: f32[2]; s: f32[2, 2] @init(1.5); s2: f32[2, 2]; n2: i32; }}
    persistent {{ P: f32[2]; t: i32; K(p): f32[2] @table @fixed(p=3); }}
    block entry {{ {entry} }}
    {blocks}
    """
    steps = [{"x": f32(n, 1 - n), "n": np.int32(n), "go": np.bool_(n % 2)} for n in (1, 2, 0, 4, 3)]
    run(src, steps)


# --- settings read from variables and from the model's metadata ---------------------------------


@pytest.mark.parametrize(
    "stmt",
    [
        "op clamp(x, min=lo, max=hi) >> y;",
        "op clamp(x, min=k) >> y;",  # an integer variable, as the reference's float(int)
        "op relu(x, alpha=lo, clamp_max=hi) >> y;",
        "op fill(x, value=hi) >> y;",
        "op fill(x, value=flag) >> y;",
        "op rms_norm(m, eps=hi) >> n;",
        "op layer_norm(m, eps=lo) >> n;",
        "op rope(m, position=k, theta=hi) >> n;",
        "op attention(qa, ka, va, scale=lo) >> oa;",
        "op attention(qa, ka, va, scale=lo, causal=flag) >> oa;",
        "op clamp(x, min=q) >> y;",  # an f16 variable
        "op clamp(x, min=t) >> y;",  # a temporary read before its assign: unknown variable
        "op gelu(x, approximate=nothing) >> y;",  # a string setting naming nothing
        "op add(x, x) >> y; op clamp(y, min=lo, max=lo) >> y; cache.write y >> P; op fill(x, value=P) >> z;",
    ],
)
def test_settings_read_from_variables(stmt) -> None:
    src = f"""
    dynamic {{ lo: f32; hi: f32; k: i32; flag: bool; q: f16; }}
    volatile {{ x: f32[3] @init(1.5); y: f32[3]; z: f32[3]; m: f32[2, 4] @init(2.0); n: f32[2, 4]; v: f32[2]; }}
    volatile {{ qa: f32[2, 2, 4] @init(0.5); ka: f32[3, 2, 4] @init(1.5); va: f32[3, 2, 4] @init(2.5); oa: f32[2, 2, 4]; }}
    persistent {{ P: f32; }}
    block entry {{ assign t: f32; {stmt} op add(x, y) >> x; }}
    """
    steps = [{"lo": np.float32(a), "hi": np.float32(b), "k": np.int32(a * 3), "flag": np.bool_(a > 0),
              "q": np.float16(b / 3)} for a, b in [(-1.0, 2.0), (0.5, 0.25), (1e-3, 1e-6), (-2.5, 7.0)]]  # fmt: skip
    run(src, steps, verify=False)


@pytest.mark.parametrize(
    "stmt",
    [
        "op gelu(x, approximate=mode) >> y;",  # a metadata string
        "op clamp(x, max=hi) >> y;",  # a metadata number: the variable's model value
    ],
)
def test_settings_read_from_model_metadata(stmt) -> None:
    src = f"""
    volatile {{ x: f32[3] @init(1.5); y: f32[3]; lo: f32; hi: f32; }}
    block entry {{ {stmt} op add(x, y) >> x; }}
    """
    graph = oi.parse_graph(textwrap.dedent(src), filename=FILE)
    model = oi.Model(sizevars={}, tensors={}, metadata={"mode": "tanh", "hi": 2.5})
    pair = Pair(*(oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cpu")))
    for n in range(3):
        assert_same_error(*pair.step({}), f"step {n}")
        pair.check(f"after step {n}")


# --- cache.read into an assign temporary --------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "assign t: f32[4, 2]; cache.read K[0..n] >> t; op relu(t) >> s;",
        "assign t: f32[4, 2]; op add(t, t) >> s; cache.read K[1..n] >> t;",  # zeros of the declared shape first
        "loop l (i in 0..2) { assign t: f32[4, 2]; cache.read K[i..n] >> t; } cache.write x >> K[n];",
        "assign u: f32[3]; cache.read A[n] >> u; op abs(u) >> v;",  # from an @auto_dim tensor
    ],
)
def test_cache_read_into_a_temporary(body) -> None:
    src = f"""
    dynamic {{ x: f32[2]; k: i32; }}
    volatile {{ s: f32[4, 2]; y: f32[2]; v: f32[3]; }}
    persistent {{ n: i32; K(p): f32[2] @table; A(a): f32[3] @init(2.0) @auto_dim(a); }}
    block entry {{ cache.write k >> n; cache.write x >> K[n]; {body} }}
    """
    steps = [{"x": f32(k, -k), "k": np.int32(k)} for k in (0, 1, 3, 2, 4, 0)]
    run(src, steps)


# --- volatile prefix tables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "op add(V[k], x) >> y;",  # the model's entry, else @init
        "loop l (i in 0..3) { op add(V[i], x) >> y; }",
        "op add(V[k, 1], V[1, k]) >> y;",
        "transfer V[k] >> y; op neg(y) >> y; op add(V[k], x) >> z;",  # writes reach the entry (one buffer)
        "op add(V[m], x) >> y;",  # a negative index: an entry like any other
        "transfer V[k, k] >> y; op add(y, x) >> y; cache.write y >> P; op mul(V[k, k], V[0, 0]) >> z;",
        "op add(V[k, 1, 0, 0, k, 1], x) >> y; op mul(V[0, 1, 0, 0, k, 1], y) >> y;",  # six indices
    ],
)
def test_volatile_prefix_tables(body) -> None:
    rank = 6 if ", 0, 0, " in body else 2 if ", k]" in body or ", 1]" in body else 1
    decl = {6: "V(a, b, c, d, e, f): f32[2] @pattern(\"v.{a}.{b}.{c}.{d}.{e}.{f}\") @init(0.5);",
            2: "V(a, b): f32[2] @pattern(\"v.{a}.{b}\") @init(0.5);", 1: "V(a): f32[2] @pattern(\"v.{a}\") @init(0.5);"}[rank]
    src = f"""
    dynamic {{ x: f32[2]; k: i32; m: i32; }}
    volatile {{ y: f32[2]; z: f32[2]; {decl} }}
    persistent {{ P: f32[2]; }}
    block entry {{ {body} }}
    """
    graph = oi.parse_graph(textwrap.dedent(src), filename=FILE)
    tensors = {"v.1": f32(1, 2), "v.2": f32(3, 4), "v.0.1": f32(5, 6), "v.1.1": f32(7, 8), "v.1.1.0.0.1.1": f32(9, 1)}
    model = oi.Model(sizevars={}, tensors=tensors)
    pair = Pair(*(oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cpu")))
    for n, k in enumerate((0, 1, 2, 1, 3)):
        assert_same_error(*pair.step({"x": f32(n, -n), "k": np.int32(k), "m": np.int32(-k)}), f"step {n}")
        pair.check(f"after step {n}")
    entries = [sorted(k for k in exe.values if k.startswith("V[")) for exe in (pair.ref, pair.cpu)]  # what a checkpoint holds
    assert entries[0] == entries[1]
    for key in entries[0]:
        assert_same(pair.ref.values[key], pair.cpu.values[key], key)


def test_constant_prefix_table_with_six_indices() -> None:
    src = """
    dynamic { x: f32[2]; a: i32; b: i32; }
    volatile { y: f32[2]; }
    constant { W(i, j, k, l, m, n): f32[2] @pattern("w.{i}.{j}.{k}.{l}.{m}.{n}"); }
    block entry { op add(W[0, a, 1, b, a, 2], x) >> y; op mul(W[1, 1, 1, 1, 1, b], y) >> y; }
    """
    graph = oi.parse_graph(textwrap.dedent(src), filename=FILE)
    tensors = {"w.0.0.1.0.0.2": f32(1, 2), "w.0.1.1.1.1.2": f32(3, 4), "w.1.1.1.1.1.0": f32(5, 6),
               "w.1.1.1.1.1.1": f32(7, 8)}  # fmt: skip
    model = oi.Model(sizevars={}, tensors=tensors)
    pair = Pair(*(oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cpu")))
    errors = []
    for n, (a, b) in enumerate([(0, 0), (1, 1), (1, 0), (0, 2), (3, 1)]):
        errors.append(assert_same_error(*pair.step({"x": f32(n, -n), "a": np.int32(a), "b": np.int32(b)}), f"step {n}"))
        pair.check(f"after step {n}")


# --- a variable written both by cache.read and by an op -----------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "op relu(x2) >> s; cache.read K[0..n] >> s; op sum_axis(s, axes=[0]) >> y;",  # declared shape first
        "cache.read K[0..n] >> s; op abs(s) >> s;",  # fits while n = 3
        "cache.read K[n] >> y; op add(y, x) >> y; cache.write y >> P;",
        "loop l (i in 0..2) { cache.read K[i] >> y; op mul(y, y) >> y; } op neg(x) >> y;",
        "cache.read K[0..n] >> s; op relu(s) >> r;",
    ],
)
def test_variable_written_by_cache_read_and_by_an_op(body) -> None:
    src = f"""
    dynamic {{ x: f32[2]; x2: f32[3, 2]; k: i32; }}
    volatile {{ s: f32[3, 2]; r: f32[3, 2]; y: f32[2]; }}
    persistent {{ n: i32; P: f32[2]; K(p): f32[2] @table; }}
    block entry {{ cache.write k >> n; cache.write x >> K[n]; {body} }}
    """
    steps = [{"x": f32(k, -k), "x2": np.full((3, 2), k - 1.5, np.float32), "k": np.int32(k)} for k in (0, 3, 1, 3, 2)]
    run(src, steps)


# --- ops on run-time sized inputs whose sizes the shape rule ties to static ones -----------------


@pytest.mark.parametrize(
    "stmt, out",
    [
        ("op matmul(w2, s) >> y;", "f32[2, 2]"),  # s's rows must be w2's 3 columns
        ("op add(s, c) >> y;", "f32[3, 2]"),  # broadcasting against a static input: 1 or 3 rows
        ("op mul(c, s) >> y;", "f32[3, 2]"),
        ("op add(s, c) >> s2t;", "f32[2, 3]"),  # never fits the output: the reference's error each time
        ("op matmul(s, w3) >> y;", "f32[3, 3]"),
        ("op concat(s, s) >> y;", "f32[6, 2]"),  # a result size no input dim gives: 2 * rows
        ("op concat(s, w3t) >> y;", "f32[5, 2]"),  # rows + 2
    ],
)
def test_op_on_runtime_sizes_tied_to_static_ones(stmt, out) -> None:
    src = f"""
    dynamic {{ x: f32[2]; k: i32; }}
    volatile {{ s: f32[3, 2]; y: {out}; w2: f32[2, 3] @init(0.5); c: f32[3, 1] @init(1.0); s2t: f32[2, 3];
               w3: f32[2, 3] @init(2.0); w3t: f32[2, 2] @init(3.0); }}
    persistent {{ n: i32; K(p): f32[2] @table; }}
    block entry {{ cache.write k >> n; cache.write x >> K[n]; cache.read K[0..n] >> s; {stmt} }}
    """
    run(src, [{"x": f32(k, -k), "k": np.int32(k)} for k in (0, 3, 1, 2, 3, 0, 5)])


@pytest.mark.parametrize("init", ["1.0", "57344.0", "-57344.0", "0.0001", "3.5", "-0.75"])
def test_cache_increment_of_an_f8_scalar(init) -> None:
    """The reference adds in float32 and rounds once to f8 (overflow to inf)."""
    src = f"""
    persistent {{ c: f8 @init({init}); d: f8 @init({init}); }}
    volatile {{ y: f8; }}
    block entry {{ cache.increment c; cache.decrement 3 d; cache.increment 1000 c; cache.read c >> y; }}
    """
    run(src, [{}] * 4)


# --- a branch back into a block it was called from ----------------------------------------------


@pytest.mark.parametrize(
    "blocks",
    [
        # a counted loop: a runs n more times
        "block a { op sub(m, one) >> m; op gt(m, zero) >> c; cache.increment t; branch c a b; } block b { }",
        # never stops: the reference's depth limit
        "block a { cache.increment t; branch go a b; } block b { op neg(x) >> y; }",
        # work after the recursive call runs as the calls return
        "block a { op sub(m, one) >> m; op gt(m, zero) >> c; branch c a b; op add(y, x) >> y; } block b { }",
    ],
)
def test_recursive_branch(blocks) -> None:
    src = f"""
    dynamic {{ x: f32[2]; n: i32; go: bool; }}
    volatile {{ y: f32[2]; m: i32; c: bool; one: i32 @init(1); zero: i32; }}
    persistent {{ t: i32; }}
    block entry {{ op add(n, zero) >> m; op gt(m, zero) >> c; branch c a b; }}
    {blocks}
    """
    steps = [{"x": f32(n, 1), "n": np.int32(n), "go": np.bool_(n % 2)} for n in (1, 3, 0, 99, 100, 101, 7)]
    run(src, steps)


@pytest.mark.parametrize(
    "body",
    [
        "transfer p >> w; cache.read P >> p;",
        "transfer w >> p; cache.read P >> p;",
        "transfer e >> f; cache.read s >> e;",
        "transfer p >> w; cache.read P >> p; op add(w, p) >> w; transfer w >> p; cache.read P >> w; op neg(p) >> p;",
    ],
)
def test_cache_read_into_a_transfer_alias_binds_anew(body) -> None:
    """diff_findings.md #2: the reference's cache.read replaces the destination's buffer, so a name
    a `transfer` made share it keeps the old one."""
    src = f"""
    volatile {{ p: f32[2]; w: f32[2]; e: i32; f: i32; }}
    persistent {{ P: f32[2] @init(1.0); s: i32 @init(3); }}
    block entry {{ {body} cache.increment s; }}
    """
    run(src, [{}] * 3)


@pytest.mark.parametrize(
    "stmt",
    [
        "op argmax_axis(m, axis=1, keepdims=flag) >> y;",
        "op max_axis(m, axes=[1], keepdims=k) >> y;",  # an integer: != 0
        "op argmin_axis(m, axis=0, select_first=flag) >> y2;",
        "op sum_axis(m, axes=[0], keepdims=flag) >> y3;",
    ],
)
def test_bool_settings_read_from_variables(stmt) -> None:
    """The op lowered for both truth values; the variable's value picks one (a keepdims that does
    not fit the output is the reference's error, that step)."""
    src = f"""
    dynamic {{ m: f32[2, 3]; flag: bool; k: i32; }}
    volatile {{ y: f32[2]; y2: i64[3]; y3: f32[1, 3]; }}
    block entry {{ {stmt} }}
    """
    src = src.replace("f32[2]; y2", "i64[2]; y2") if "argmax" in stmt else src
    steps = [{"m": np.array([[n, 1, 1], [2, -n, 2]], np.float32), "flag": np.bool_(n % 2), "k": np.int32(n - 1)}
             for n in (0, 1, 2, 3)]  # fmt: skip
    run(src, steps)


def test_save_state_of_a_table_with_rank0_entries(tmp_path) -> None:
    """diff_findings.md #4: a table of scalars (`T(a): i32`) exported its entries as numpy scalars."""
    src = "dynamic { x: i32; } persistent { n: i32; T(a): i32 @table; } block entry { cache.write x >> n; cache.write x >> T[n]; }"
    pair = Pair(*build(src, {}))
    for n in (0, 2, 1):
        assert_same_error(*pair.step({"x": np.int32(n)}), f"step {n}")
    paths = [pair.ref.save_state(tmp_path / "ref.st"), pair.cpu.save_state(tmp_path / "cpu.st")]
    for exe, path in zip((pair.ref, pair.cpu), reversed(paths)):  # each loads the other's
        exe.load_state(path)
    pair.check("after load_state")
    assert_same_error(*pair.step({"x": np.int32(3)}), "after load")
    pair.check("after a step")


@pytest.mark.parametrize(
    "stmt",
    [
        "op relu(a, alpha=k) >> b;",
        "op relu(a, alpha=k, clamp_max=j) >> b;",
        "op fill(a, value=k) >> b;",
        "op fill(u, value=k) >> v;",  # negative for an unsigned dtype: the reference's error
        "op fill(u, value=flag) >> v;",
        "op clamp(a, min=k, max=j) >> b;",
        "op clamp(u, min=k) >> v;",
        "op clamp(u, max=big) >> v;",  # a u64 past 2**63 is no negative number
        "op div(a, a2, div_by_zero_mask=k) >> b;",
        "op floor_div(u, u2, div_by_zero_mask=k) >> v;",  # negative for an unsigned dtype: the reference's error
        "op recip(f, div_by_zero_mask=k) >> g;",
    ],
)
def test_integer_settings_read_from_variables(stmt) -> None:
    src = f"""
    dynamic {{ a: i32[3]; u: u8[3]; k: i32; j: i64; flag: bool; big: u64; }}
    volatile {{ b: i32[3]; v: u8[3]; a2: i32[3] @init(0); u2: u8[3]; f: f32[3]; g: f32[3]; }}
    block entry {{ {stmt} }}
    """
    steps = [{"a": np.array([n, -5, 7], np.int32), "u": np.array([n, 200, 7], np.uint8), "k": np.int32(n - 2),
              "j": np.int64(n * 3), "flag": np.bool_(n % 2), "big": np.uint64(2**63 + n)} for n in (0, 1, 2, 5)]  # fmt: skip
    run(src, steps)


@pytest.mark.parametrize(
    "body",
    [
        "cache.write x0 >> T0[0]; cache.read T0[] >> r0;",
        "cache.read T0[] >> r0; op max_axis(r0, axes=[0]) >> q0;",
        "assign tr0: f32[N]; cache.read T0[s0] >> tr0; cache.write x0 >> T0[0];",
    ],
)
def test_tables_of_empty_entries(body) -> None:
    """N = 0: the reference's read reshaped its entries with -1, which numpy cannot size (an
    InternalError the random graphs found, on the reference)."""
    src = f"""
    dynamic {{ x0: f32[N]; }}
    volatile {{ r0: f32[1, N]; q0: f32[N]; }}
    persistent {{ s0: i32 @init(0); T0(a): f32[N] @table; }}
    block entry {{ {body} }}
    """
    run(src, [{"x0": np.zeros(0, np.float32)}] * 2, {"N": 0})


def test_a_step_that_cannot_fail() -> None:
    """diff_findings.md #6: `return` first leaves a step with no error site (no `oi.error_sites`)."""
    run("dynamic { x: f32[2]; }\nblock entry {\n    return;\n    op add(x, x) >> x;\n}", [{"x": f32(1, 2)}] * 2)


@pytest.mark.parametrize(
    "body",
    [
        "cache.read K[n] >> r; transfer r >> w; op neg(w) >> w;",  # writes through w reach r
        "cache.read K[n] >> r; transfer r >> w; cache.read K[0] >> r; op add(w, r) >> v;",  # a new read: w keeps the old
        "transfer r >> w; cache.read K[n] >> r; op add(w, x) >> w;",  # r before any read: its declared value
        "loop l (i in 0..n) { cache.read K[i] >> r; transfer r >> w; op mul(w, w) >> w; } op add(r, w) >> v;",
    ],
)
def test_transfer_from_a_read_destination(body) -> None:
    src = f"""
    dynamic {{ x: f32[2]; k: i32; }}
    volatile {{ r: f32[2] @init(0.5); w: f32[2]; v: f32[2]; }}
    persistent {{ n: i32; K(p): f32[2] @table; }}
    block entry {{ cache.write k >> n; cache.write x >> K[n]; {body} }}
    """
    run(src, [{"x": f32(k, -k), "k": np.int32(k)} for k in (0, 1, 3, 2, 20)])


@pytest.mark.parametrize(
    "stmt",
    [
        "op softmax(m, axis=k) >> n;",
        "op argmax_axis(m, axis=k) >> y;",  # fits y only for axis 1 / -1
        "op concat(m, m, axis=k) >> c;",
    ],
)
def test_axis_read_from_a_variable(stmt) -> None:
    src = f"""
    dynamic {{ m: f32[2, 2]; k: i32; }}
    volatile {{ n: f32[2, 2]; y: i64[2]; c: f32[2, 4]; }}
    block entry {{ {stmt} }}
    """
    steps = [{"m": np.array([[n, 1], [2, -n]], np.float32), "k": np.int32(k)} for n, k in enumerate((0, 1, -1, -2, 2, -3, 7))]
    run(src, steps)


@pytest.mark.parametrize(
    "body",
    [
        "cache.read K[0..n] >> d; op relu(d) >> s;",  # fits s only while n = 3
        "op add(d, d) >> s; cache.read K[0..n] >> d;",  # the inserted value first
        "cache.read K[n] >> e; op add(e, x) >> y;",
        "cache.read A[n] >> f; op abs(f) >> g;",  # from an @auto_dim tensor
    ],
)
def test_cache_read_into_a_dynamic_variable(body) -> None:
    """`insert` binds the variable anew each step (its declared shape); a read replaces it."""
    src = f"""
    dynamic {{ x: f32[2]; k: i32; d: f32[3, 2]; e: f32[2]; f: f32[3]; }}
    volatile {{ s: f32[3, 2]; y: f32[2]; g: f32[3]; }}
    persistent {{ n: i32; K(p): f32[2] @table; A(a): f32[3] @init(2.0) @auto_dim(a); }}
    block entry {{ cache.write k >> n; cache.write x >> K[n]; {body} }}
    """
    steps = [{"x": f32(k, -k), "k": np.int32(k), "d": np.full((3, 2), k, np.float32), "e": f32(1, k),
              "f": np.full(3, -k, np.float32)} for k in (0, 3, 1, 3, 2)]  # fmt: skip
    run(src, steps)


@pytest.mark.parametrize(
    "body",
    [
        "cache.read K[0..n] >> r; cache.write r >> L[0];",  # a value sized at run time: fits while n = 1
        "cache.read A[n] >> f; op relu(f) >> f; cache.write f >> A[n];",  # the read's value, written back
        "cache.read A[n] >> f; cache.write f >> A[0];",  # fits while A did not grow
        "cache.read K[0..n] >> r; cache.write r >> Q;",
    ],
)
def test_cache_write_of_a_value_sized_at_run_time(body) -> None:
    src = f"""
    dynamic {{ x: f32[2]; k: i32; }}
    volatile {{ r: f32[1, 2]; f: f32[3]; }}
    persistent {{ n: i32; K(p): f32[2] @table; L(p): f32[1, 2] @table; Q: f32[1, 2];
                  A(a): f32[3] @init(2.0) @auto_dim(a); }}
    block entry {{ cache.write k >> n; cache.write x >> K[n]; {body} }}
    """
    run(src, [{"x": f32(k, -k), "k": np.int32(k)} for k in (1, 0, 2, 1, 3)])
