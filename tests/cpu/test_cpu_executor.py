"""`device="cpu"` (the compiled step, runtime/cpu_executor.py) against the reference executor.

Every test runs one graph on both devices, step by step, and checks they agree: bit-identical
persistent state, table sizes, copies and integer math; floats from ops within 1e-5 relative;
the same error class, message, `.loc` and node, and after a failed step the same persistent
state as before it (the undo log). Also: table growth far past the first capacity, resets,
the executor API and its messages, checkpoints moved between devices, what the compiled path
refuses (`Unsupported`, with a location) and `oi-run --device cpu`.

Mismatches between the devices found while writing these are `xfail(strict=True)` tests at the
end of the file (the compiler is not changed here).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.errors import PassError
from oi_compiler.lowering.analysis import Unsupported

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FILE = "cpu.oi"
DEVICES = ("reference", "cpu")


# --- helpers ------------------------------------------------------------------------------------


def simulators(src: str, *, model: oi.Model | None = None, sizevars=None) -> dict[str, oi.Simulator]:
    graph = oi.parse_graph(textwrap.dedent(src), FILE)
    model = model if model is not None else oi.Model(sizevars=sizevars or {})
    return {device: oi.Simulator(model, graph, device=device) for device in DEVICES}


def pair(src: str, **kw) -> list[oi.Executor]:
    """[reference executor, cpu executor] of one graph."""
    return [sim.make_executor() for sim in simulators(src, **kw).values()]


def outcome(exe: oi.Executor, values: dict) -> tuple | None:
    """None for a step that ran, else what identifies its error."""
    try:
        if values:
            exe.insert(**values)
        exe.step()
    except oi.OiError as e:
        return type(e).__name__, e.message, str(e.loc), getattr(e, "node", None), str(e)
    return None


def persistent(exe: oi.Executor) -> dict:
    """Every persistent variable as bytes, with its table sizes (what a failed step must keep)."""
    out = {}
    for name, decl in exe.bound.decls.items():
        if decl.memory == "persistent":
            value = exe.state(name)
            out[name] = (value.dtype.str, value.shape, value.tobytes(), tuple(exe.table_sizes(name)))
    return out


def fetched(exe: oi.Executor, names) -> dict:
    return {name: exe.fetch(name) for name in names}


def same_step(exes: list[oi.Executor], **values) -> tuple | None:
    """One step on both devices: the same outcome and bit-identical persistent state; a failed
    step leaves the state of before the step on each device."""
    before = [persistent(e) for e in exes]
    steps = [e.steps for e in exes]
    results = [outcome(e, values) for e in exes]
    assert results[0] == results[1]
    after = [persistent(e) for e in exes]
    assert after[0] == after[1]
    if results[0] is not None:
        assert after == before
        assert [e.steps for e in exes] == steps
    else:
        assert [e.steps for e in exes] == [s + 1 for s in steps]
    return results[0]


def assert_same_values(exes: list[oi.Executor], names, *, exact: bool = True) -> None:
    ref, cpu = (fetched(e, names) for e in exes)
    for name in names:
        assert ref[name].dtype == cpu[name].dtype, name
        assert ref[name].shape == cpu[name].shape, name
        if exact:
            assert ref[name].tobytes() == cpu[name].tobytes(), name
        else:
            np.testing.assert_allclose(cpu[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)


def f32(*values) -> np.ndarray:
    return np.array(values, np.float32)


# --- the examples ---------------------------------------------------------------------------------


def test_kv_decode_matches_reference() -> None:
    rng = np.random.default_rng(0)
    D = 4
    model = oi.Model(sizevars={"D": D, "T": 8},
                     tensors={w: rng.standard_normal((D, D)).astype(np.float32) for w in ("Wq", "Wk", "Wv")})  # fmt: skip
    sims = {d: oi.Simulator(model, oi.Graph.load(EXAMPLES / "kv_decode.oi"), device=d) for d in DEVICES}
    exes = [sim.make_executor() for sim in sims.values()]
    for n in range(20):  # past the first capacity of the read destinations
        x = rng.standard_normal((1, D)).astype(np.float32)
        assert same_step(exes, x=x) is None
        assert_same_values(exes, ["q", "k", "v", "keys", "values"], exact=False)
        cpu = exes[1]
        assert cpu.fetch("keys").shape == (n + 1, 1, D)
        assert cpu.fetch("keys")[-1].tobytes() == cpu.fetch("k").tobytes()  # a copy: bit-identical
        assert cpu.fetch("values")[-1].tobytes() == cpu.fetch("v").tobytes()
        assert int(cpu.state("t")) == n + 1 and cpu.table_sizes("K") == [1024]
    # persistent state is copies of op results: equal to 1e-5, and the same positions written
    ref, cpu = exes
    np.testing.assert_allclose(cpu.state("K"), ref.state("K"), rtol=1e-5, atol=1e-6)
    assert sorted(cpu.store["K"].entries) == sorted(ref.store["K"].entries) == [(k,) for k in range(20)]


def _tiny_decoder():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import tiny_decoder
    finally:
        sys.path.remove(str(EXAMPLES))
    return tiny_decoder


def test_tiny_decoder_matches_reference_and_numpy() -> None:
    td = _tiny_decoder()
    model = td.make_model(0)
    ref, cpu = (td.make_executor(model, device) for device in DEVICES)
    oracle = td.NumpyDecoder.from_model(model)
    token = 3
    for n in range(20):  # 20 positions: the per-layer table's t index grows past its first capacity (16)
        expected = oracle.step(token)
        logits_ref, logits_cpu = td.graph_step(ref, token), td.graph_step(cpu, token)
        assert logits_cpu.shape == logits_ref.shape == (1, model.sizevars["NV"])
        np.testing.assert_allclose(logits_cpu, logits_ref, rtol=1e-5, atol=1e-5)
        assert float(np.max(np.abs(logits_cpu - expected))) < td.TOLERANCE
        assert int(np.argmax(logits_cpu)) == int(np.argmax(logits_ref))
        assert cpu.table_sizes("Kc") == ref.table_sizes("Kc") == [model.sizevars["L"], n + 1]
        assert int(cpu.state("pos")) == int(ref.state("pos")) == n + 1
        token = int(np.argmax(logits_ref))
    keys, values = oracle.cached()
    for name, expected in (("Kc", keys), ("Vc", values)):
        np.testing.assert_allclose(cpu.state(name), ref.state(name), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(cpu.state(name), expected, rtol=1e-4, atol=1e-4)
    for name in ("keys", "values", "ctx", "x", "logits"):
        np.testing.assert_allclose(cpu.fetch(name), ref.fetch(name), rtol=1e-5, atol=1e-5, err_msg=name)
    assert cpu.steps == ref.steps == 20


# --- table growth ---------------------------------------------------------------------------------

GROWTH_SRC = """
dynamic { v: f32[2]; }
volatile { all: f32[2]; row: f32[2]; col: f32[2]; }
persistent { t: i32 @init(0); T(i): f32[2] @init(-1.0) @table; B(i, j): f32[2] @table; }
block entry {
    cache.write v >> T[t];
    cache.write v >> B[t, t];
    cache.write v >> B[2, t];
    cache.increment t;
    cache.read T[] >> all;
    cache.read B[2, ..] >> row;
    cache.read B[.., 0] >> col;
}
"""


def test_growable_tables_grow_far_past_the_first_capacity() -> None:
    exes = pair(GROWTH_SRC)
    for n in range(100):
        assert same_step(exes, v=f32(n, -0.5 * n)) is None
        if n % 9 == 0 or n == 99:
            assert_same_values(exes, ["all", "row", "col"])
    ref, cpu = exes
    assert cpu.table_sizes("T") == [100] and cpu.table_sizes("B") == [100, 100]
    written = np.stack([f32(n, -0.5 * n) for n in range(100)])
    np.testing.assert_array_equal(cpu.state("T"), written)  # every appended entry kept across regrowths
    np.testing.assert_array_equal(cpu.state("B")[2], written)
    np.testing.assert_array_equal(np.stack([cpu.state("B")[k, k] for k in range(100)]), written)
    assert sorted(cpu.store["B"].entries) == sorted(ref.store["B"].entries)


def test_writes_far_ahead_of_the_size() -> None:
    exes = pair(
        """
        dynamic { v: f32[2]; q: i16[2]; }
        volatile { a: i16[2]; b: f32[2]; }
        persistent { T(i): i16[2] @init(7) @table; B(i, j): f32[2] @table; c: i32; }
        block entry {
            cache.write q >> T[2];
            cache.write q >> T[500];
            cache.write v >> B[3, 500];
            cache.write v >> B[40, 2];
            cache.read T[498..] >> a;
            cache.read B[3, 499..] >> b;
            cache.increment c;
        }
        """
    )
    assert same_step(exes, v=f32(1.5, 2.5), q=np.array([-3, 4], np.int16)) is None
    assert_same_values(exes, ["a", "b"])
    cpu = exes[1]
    assert cpu.table_sizes("T") == [501] and cpu.table_sizes("B") == [41, 501]
    assert cpu.fetch("a").tolist() == [[7, 7], [7, 7], [-3, 4]]
    # and a second step writes nearer again without losing anything
    assert same_step(exes, v=f32(9, 9), q=np.array([1, 1], np.int16)) is None
    assert cpu.state("T")[2].tolist() == [1, 1] and cpu.state("T")[500].tolist() == [1, 1]


# --- failed steps: the same error, the state of before the step -------------------------------------

FIXED_SRC = """
dynamic { v: f32[2]; }
persistent { t: i32 @init(0); K(p): f32[2] @table @fixed(p=4); }
block entry {
    cache.write v >> K[t];
    cache.increment t;
}
"""


def test_fixed_overflow_raises_the_reference_error() -> None:
    exes = pair(FIXED_SRC)
    for n in range(4):
        assert same_step(exes, v=f32(n, n)) is None
    for _ in range(2):  # fails again, the same way, from the same state
        error = same_step(exes, v=f32(9, 9))
        assert error == ("CacheError", "cache table K index 0 exceeds fixed size 4 (index value 4)", f"{FILE}:5:5",
                         "block entry node cache.write v >> K[t]",
                         f"{FILE}:5:5: error: cache table K index 0 exceeds fixed size 4 (index value 4)")  # fmt: skip
    ref, cpu = exes
    assert cpu.steps == ref.steps == 4 and int(cpu.state("t")) == 4
    np.testing.assert_array_equal(cpu.state("K"), np.stack([f32(n, n) for n in range(4)]))


CHANGES_SRC = """
dynamic { v: f32[2]; n: i64; q: i8[3]; }
volatile { y: f32[2]; }
persistent {
    t: i64 @init(0);
    c: u8 @init(250);
    h: f16 @init(0.5);
    W: f32[2] @init(0.25);
    T(i): f32[2] @table;
    B(i, j): f32[2] @init(3.0) @table;
    Q(i): i8[3] @init(-1) @table;
    K(p): f32[2] @table @fixed(p=4);
}
block entry {
    cache.write v >> W;
    cache.write v >> T[t];
    cache.write v >> B[t, 3];
    cache.write q >> Q[t];
    cache.read T[0..t] >> y;
    cache.increment 3 c;
    cache.decrement h;
    cache.reset B[1];
    cache.write n >> t;
    cache.write v >> K[t];
    cache.increment t;
}
"""


def test_failure_after_earlier_writes_in_the_same_step_restores_everything() -> None:
    """Writes to a plain persistent, two tables, increments, a prefix reset and a scalar
    overwrite come before the failing write: all of them are undone."""
    exes = pair(CHANGES_SRC)
    q = np.array([1, -2, 3], np.int8)
    for n in [0, 1, 2, 3]:
        assert same_step(exes, v=f32(n, 0.5), n=n, q=q) is None
    error = same_step(exes, v=f32(7, 7), n=4, q=q)
    assert error[:3] == ("CacheError", "cache table K index 0 exceeds fixed size 4 (index value 4)", f"{FILE}:24:5")
    error = same_step(exes, v=f32(7, 7), n=40, q=q)
    assert error[:3] == ("CacheError", "cache table K index 0 exceeds fixed size 4 (index value 40)", f"{FILE}:24:5")
    assert same_step(exes, v=f32(8, 8), n=1, q=q) is None  # and it goes on from the restored state


GROWN_SRC = """
dynamic { v: f32[2]; n: i64; }
volatile { y: f32[2]; }
persistent {
    s: i64;
    T(i): f32[2] @init(0.5) @table;
    B(i, j): f32[2] @table;
    K(p): f32[2] @table @fixed(p=2);
}
block entry {
    cache.write n >> s;
    cache.write v >> T[s];
    cache.write v >> B[s, 1];
    cache.write v >> B[2, s];
    cache.read T[0..s] >> y;
    cache.reset B[2];
    cache.write v >> B[1, 2];
    cache.write v >> K[s];
}
"""


def test_failure_after_a_table_grew_in_the_same_step() -> None:
    """The failing step grows T and both dims of B far past their capacity (B's entries move
    in memory) before the @fixed check fails: sizes and entries come back as they were."""
    exes = pair(GROWN_SRC)
    assert same_step(exes, v=f32(1, 2), n=1) is None
    before = persistent(exes[1])
    for n in (40, 300, 17):
        error = same_step(exes, v=f32(n, n), n=n)
        assert error[:3] == ("CacheError", f"cache table K index 0 exceeds fixed size 2 (index value {n})", f"{FILE}:18:5")
        assert persistent(exes[1]) == before
    assert exes[1].table_sizes("T") == [2] and exes[1].table_sizes("B") == [2, 3]
    assert same_step(exes, v=f32(3, 4), n=0) is None
    for n in range(5):  # it grows again normally after the rollbacks
        exes_values = {"v": f32(n, -n), "n": 1}
        assert same_step(exes, **exes_values) is None
    assert_same_values(exes, ["y"])


LOOP_FAIL_SRC = """
dynamic { v: f32[16]; m: i64; s: i64; }
persistent { p: i64; c: i32; T(i): f32[16] @table; B(i, j): f32[16] @init(2.0) @table; K(i): f32[16] @table @fixed(i=2); }
block entry {
    cache.write s >> p;
    loop a (i in 0..m) {
        cache.write v >> T[i];
        cache.write v >> B[i, i];
        cache.increment c;
        op add(v, v) >> v;
    }
    cache.reset B[1];
    cache.write v >> K[p];
}
"""


def test_failure_after_many_changes_in_one_step() -> None:
    """Hundreds of logged changes (the undo log grows) are all undone."""
    exes = pair(LOOP_FAIL_SRC)
    ones = np.ones(16, np.float32)
    assert same_step(exes, v=ones, m=5, s=0) is None
    assert same_step(exes, v=ones, m=200, s=3)[1] == "cache table K index 0 exceeds fixed size 2 (index value 3)"
    assert exes[1].table_sizes("T") == [5] and int(exes[1].state("c")) == 5
    assert_same_values(exes, ["v"])  # non-persistent buffers are not rolled back, on either device
    assert same_step(exes, v=ones, m=40, s=1) is None


@pytest.mark.parametrize(
    ("setup", "access", "message"),
    [
        ("s: i64 @init(-1);", "T[s..]", "slice start cannot be negative"),
        ("s: i64 @init(0);", "T[..-5]", "slice end underflow for size 3"),
        ("s: i64 @init(3);", "T[s..1]", "slice end 1 before start 3"),
        ("s: i64 @init(0);", "T[2..-2]", "slice end 1 before start 2"),
        ("s: i64 @init(5);", "T[s..]", "slice end 3 before start 5"),
        ("s: i64 @init(7);", "F[0..s]", "cache table F index 0 exceeds fixed size 4 (slice end 7)"),
        ("s: i64 @init(9);", "F[s..]", "slice end 4 before start 9"),
    ],
)
def test_slice_errors(setup, access, message) -> None:
    exes = pair(
        f"""
        dynamic {{ v: f32[2]; }}
        volatile {{ y: f32[2]; }}
        persistent {{ {setup} c: i32; T(i): f32[2] @table; F(i): f32[2] @table @fixed(i=4); }}
        block entry {{
            cache.increment c;
            cache.write v >> T[2];
            cache.read {access} >> y;
        }}
        """
    )
    error = same_step(exes, v=f32(1, 1))
    assert error[:3] == ("CacheError", message, f"{FILE}:8:5")
    assert exes[1].table_sizes("T") == [0] and int(exes[1].state("c")) == 0


def test_negative_index_from_a_decremented_scalar() -> None:
    exes = pair(
        """
        dynamic { v: f32[2]; }
        volatile { y: f32[2]; }
        persistent { s: i32 @init(2); T(i): f32[2] @table; B(i, j): f32[2] @table; }
        block entry {
            cache.decrement s;
            cache.write v >> T[s];
            cache.read B[1, s] >> y;
        }
        """
    )
    for n in range(2):  # s: 1, then 0
        assert same_step(exes, v=f32(n, n)) is None
    for _ in range(2):
        error = same_step(exes, v=f32(5, 5))  # s would be -1: the write fails, the decrement is undone
        assert error[:4] == ("CacheError", "cache index cannot be negative", f"{FILE}:7:5",
                             "block entry node cache.write v >> T[s]")  # fmt: skip
    assert int(exes[1].state("s")) == 0
    assert exes[1].table_sizes("T") == [2] and exes[1].table_sizes("B") == [2, 2]


def test_execution_errors_and_rollback() -> None:
    model = oi.Model(tensors={"w.0": f32(1, 2), "w.1": f32(3, 4)})
    exes = pair(
        """
        dynamic { n: i64; }
        constant { W(l): f32[2] @pattern("w.{l}"); }
        volatile { y: f32[2]; }
        persistent { s: i64; c: i32; }
        block entry {
            cache.write n >> s;
            cache.increment c;
            op add(y, W[s]) >> y;
        }
        """,
        model=model,
    )
    assert same_step(exes, n=1) is None
    for n, key in ((2, "w.2"), (-1, "w.-1")):
        error = same_step(exes, n=n)
        assert error[:4] == ("ExecutionError", f"model variable not found: {key}", f"{FILE}:9:5",
                             "block entry node op add(y,W[s]) >> y")  # fmt: skip
    assert same_step(exes, n=0) is None
    assert_same_values(exes, ["y"])
    assert exes[1].fetch("y").tolist() == [4.0, 6.0] and int(exes[1].state("c")) == 2


# --- resets -----------------------------------------------------------------------------------------

RESET_SRC = """
dynamic { v: f32[2]; a: i64; b: i64; r: i64; }
volatile { y: f32[2]; }
persistent {
    sa: i64; sb: i64; sr: i64;
    K(l, t): f32[2] @init(0.5) @table;
    F(l, t): f32[2] @table @fixed(l=3);
    P: f32[2] @init(1.0);
}
block entry {
    cache.write a >> sa;
    cache.write b >> sb;
    cache.write r >> sr;
    cache.write v >> K[sa, sb];
    cache.write v >> F[sa, sb];
    cache.write v >> P;
    %s
}
"""


@pytest.mark.parametrize(
    "resets",
    [
        "cache.reset K[sr];",
        "cache.reset K[sr]; cache.reset F[sr];",
        "cache.reset K[sr, 1];",
        "cache.reset K[];",
        "cache.reset F[]; cache.reset P;",
        "cache.reset F[sr]; cache.read F[1, 0..sb] >> y; cache.reset K[sr, sb];",
    ],
)
def test_resets_recompute_sizes_as_the_reference(resets) -> None:
    exes = pair(RESET_SRC % resets)
    keys = [(0, 0), (0, 4), (1, 2), (2, 1), (0, 20), (2, 3), (1, 40), (2, 2), (0, 1)]
    for n, (a, b) in enumerate(keys):
        reset = [5, 0, 2, 1, 0, 2, 1, 0, 9][n]
        assert same_step(exes, v=f32(n, -n), a=a, b=b, r=reset) is None
    ref, cpu = exes
    assert sorted(cpu.store["K"].entries) == sorted(ref.store["K"].entries)
    assert sorted(cpu.store["F"].entries) == sorted(ref.store["F"].entries)


def test_prefix_reset_of_a_layer_then_regrowth() -> None:
    """`cache.reset K[l]` drops layer l; the t size is recomputed from the other layers (the
    reference's rule), and later writes grow it again."""
    exes = pair(
        """
        dynamic { v: f32[2]; l: i64; t: i64; drop: i64; }
        persistent { sl: i64; st: i64; sd: i64; K(l, t): f32[2] @table; }
        block entry {
            cache.write l >> sl; cache.write t >> st; cache.write drop >> sd;
            cache.write v >> K[sl, st];
            cache.reset K[sd];
        }
        """
    )
    steps = [(0, 3, 9), (1, 30, 9), (0, 5, 1), (2, 1, 0), (1, 2, 9), (1, 3, 2), (3, 0, 1)]
    sizes = []
    for n, (l, t, drop) in enumerate(steps):
        assert same_step(exes, v=f32(n, n), l=l, t=t, drop=drop) is None
        sizes.append(exes[1].table_sizes("K"))
    assert sizes == [[1, 4], [2, 31], [1, 6], [3, 2], [3, 3], [2, 4], [4, 1]]


# --- the executor API ------------------------------------------------------------------------------

API_SRC = """
dynamic { x: f32[2]; k: i8; }
constant { W: f32[2]; }
volatile { y: f32[2]; z: f32[2] @init(3.0); }
persistent { t: i32 @init(4); A(i): f32[2] @table; B(i, j): u16[3] @init(9) @table @fixed(j=2); }
block entry { op add(x, W) >> y; cache.write y >> A[t]; cache.increment t; }
"""

API_CALLS = {
    "fetch dynamic": lambda e: e.fetch("x"),
    "fetch constant": lambda e: e.fetch("W"),
    "fetch volatile init": lambda e: e.fetch("z"),
    "fetch volatile": lambda e: e.fetch("y"),
    "fetch persistent": lambda e: e.fetch("t"),
    "fetch table": lambda e: e.fetch("A"),
    "fetch unknown": lambda e: e.fetch("nope"),
    "state scalar": lambda e: e.state("t"),
    "state table": lambda e: e.state("A"),
    "state fixed table": lambda e: e.state("B"),
    "state volatile": lambda e: e.state("y"),
    "state constant": lambda e: e.state("W"),
    "state unknown": lambda e: e.state("nope"),
    "sizes scalar": lambda e: e.table_sizes("t"),
    "sizes table": lambda e: e.table_sizes("A"),
    "sizes fixed": lambda e: e.table_sizes("B"),
    "sizes dynamic": lambda e: e.table_sizes("x"),
    "sizes unknown": lambda e: e.table_sizes("nope"),
    "insert unknown": lambda e: e.insert(nope=1),
    "insert volatile": lambda e: e.insert(y=np.zeros(2)),
    "insert persistent": lambda e: e.insert(t=1),
    "insert constant": lambda e: e.insert(W=np.zeros(2)),
    "insert shape": lambda e: e.insert(x=np.zeros(3)),
    "insert range": lambda e: e.insert(k=300),
    "insert fraction": lambda e: e.insert(k=1.5),
    "insert string": lambda e: e.insert(x="abc"),
    "insert one bad of two": lambda e: e.insert(x=f32(5, 5), k=999),
}


def _api_result(exe, call):
    try:
        value = call(exe)
    except oi.OiError as e:
        return type(e).__name__, str(e)
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, value.tobytes(), value.flags.writeable
    return value if not isinstance(value, oi.Executor) else "executor"


@pytest.mark.parametrize("call", list(API_CALLS), ids=list(API_CALLS))
def test_api_parity(call) -> None:
    model = oi.Model(tensors={"W": f32(1, 2)})
    exes = pair(API_SRC, model=model)
    assert _api_result(exes[0], API_CALLS[call]) == _api_result(exes[1], API_CALLS[call])  # fresh
    for e in exes:
        e.insert(x=f32(0.5, 1), k=3)
        e.step()
    assert _api_result(exes[0], API_CALLS[call]) == _api_result(exes[1], API_CALLS[call])  # after a step


def test_api_steps_inserts_copies_and_reset() -> None:
    model = oi.Model(tensors={"W": f32(1, 2)})
    ref, cpu = exes = pair(API_SRC, model=model)
    assert cpu.insert(x=[1, 2], k=np.int64(5)) is cpu  # chained, converted to the declared dtypes
    ref.insert({"x": [1, 2]}, k=np.int64(5))
    assert cpu.fetch("k").dtype == np.int8 and int(cpu.fetch("k")) == 5
    assert cpu.step() is None and ref.step() is not None  # no trace event on cpu
    assert cpu.run_step() is None
    ref.run_step()
    assert cpu.steps == ref.steps == 2
    assert_same_values(exes, ["x", "k", "y", "z", "t", "A"])
    # fetch returns a copy; state is read-only
    y = cpu.fetch("y")
    y[:] = 100
    assert cpu.fetch("y").tolist() == [2.0, 4.0]
    with pytest.raises(ValueError):
        cpu.state("A")[0, 0] = 1.0
    with pytest.raises(ValueError):
        cpu.state("t")[...] = 1
    # an insert that fails changes nothing
    with pytest.raises(oi.ExecutionError):
        cpu.insert(x=f32(7, 7), k=999)
    assert cpu.fetch("x").tolist() == [1.0, 2.0]
    # a failed insert on the reference changes nothing either: both step the same again
    with pytest.raises(oi.ExecutionError):
        ref.insert(x=f32(7, 7), k=999)
    assert same_step(exes) is None
    assert_same_values(exes, ["x", "y", "A"])
    assert cpu.trace() == [] and cpu.events == []
    # reset: a fresh executor
    for e in exes:
        e.reset()
    assert cpu.steps == 0 and cpu.table_sizes("A") == [0] and int(cpu.state("t")) == 4
    assert persistent(cpu) == persistent(ref)
    assert_same_values(exes, ["x", "k", "y", "z"])
    assert same_step(exes, x=f32(3, 3)) is None
    assert cpu.table_sizes("A") == [5]


def test_executors_of_one_simulator_are_independent() -> None:
    sim = simulators(FIXED_SRC)["cpu"]
    a, b = sim.make_executor(), sim.make_executor()
    for n in range(3):
        a.insert(v=f32(n, n)).step()
    b.insert(v=f32(9, 9)).step()
    assert int(a.state("t")) == 3 and int(b.state("t")) == 1
    assert a.state("K")[:, 0].tolist() == [0, 1, 2, 0] and b.state("K")[:, 0].tolist() == [9, 0, 0, 0]


def test_tracing_and_timing_need_the_reference() -> None:
    sim = simulators(FIXED_SRC)["cpu"]
    with pytest.raises(oi.OiError) as info:
        sim.with_trace()
    assert info.value.message == "tracing needs device='reference' (the compiled step runs as one function)"
    with pytest.raises(oi.OiError) as info:
        sim.with_timer()
    assert info.value.message == "per-node timing needs device='reference' (the compiled step runs as one function)"
    assert not sim.tracing and not sim.timing


def test_other_devices() -> None:
    """An unknown device is refused; `cuda` is tested in tests/runtime/test_cuda_device.py."""
    graph = oi.parse_graph(FIXED_SRC, FILE)
    with pytest.raises(oi.OiError) as info:
        oi.Simulator(oi.Model(), graph, device="tpu")
    assert info.value.message == "unknown device 'tpu' (expected one of: reference, cpu, cuda)"


# --- checkpoints across devices ----------------------------------------------------------------------

CKPT_SRC = """
dynamic { x: f32[2]; xb: bf16[2]; xi: i8[2]; k: i32; }
volatile { acc: f32[2]; hist: f32[2]; histb: bf16[2]; last: i8[2]; one: f32[2] @init(1.0); }
persistent {
    t: i32 @init(0);
    sk: i32;
    u: u64 @init(3);
    h: f16[1] @init(0.5);
    W: f32[2] @init(0.25);
    K(p): f32[2] @table;
    B(p, q): bf16[2] @table @fixed(q=4);
    I(p): i8[2] @init(-3) @table;
}
block entry {
    assign tmp: f32[2];
    op add(tmp, one) >> tmp;
    op add(acc, x) >> acc;
    op add(acc, tmp) >> acc;
    cache.write acc >> W;
    cache.write k >> sk;
    cache.write acc >> K[t];
    cache.write xb >> B[t, sk];
    cache.write xi >> I[t];
    cache.increment t;
    cache.increment h;
    cache.decrement 2 u;
    cache.read K[0..t] >> hist;
    loop l (i in 0..2) { cache.read B[i, ..] >> histb; }
    cache.read I[t] >> last;
}
"""


def ckpt_inputs(n: int) -> list[dict]:
    rng = np.random.default_rng(5)
    return [
        {
            # small integers: the float adds are exact, so devices agree bit for bit
            "x": rng.integers(-8, 8, 2).astype(np.float32),
            "xb": rng.standard_normal(2).astype(ml_dtypes.bfloat16),
            "xi": rng.integers(-128, 128, 2).astype(np.int8),
            "k": np.int32(rng.integers(0, 4)),
        }
        for _ in range(n)
    ]


CKPT_NAMES = ["acc", "hist", "histb", "last", "one", "tmp", "x", "xb", "xi", "k", "t", "u", "h", "W", "K", "B", "I"]


@pytest.mark.parametrize(("saver", "loader"), [(s, l) for s in DEVICES for l in DEVICES])
def test_state_saved_on_one_device_continues_on_the_other(tmp_path, saver, loader) -> None:
    sims = simulators(CKPT_SRC)
    inputs = ckpt_inputs(10)
    baseline = sims["reference"].make_executor()  # never interrupted
    first = sims[saver].make_executor()
    for values in inputs[:6]:
        for e in (baseline, first):
            e.insert(**values).step()
    path = first.save_state(tmp_path / "s.oistate")
    second = sims[loader].make_executor()
    second.insert(**inputs[-1]).step()  # state the load must replace
    second.load_state(path)
    assert second.steps == 6
    assert persistent(second) == persistent(baseline)
    assert_same_values([baseline, second], CKPT_NAMES)
    for e in (first, second):  # the saved executor is not affected by the loaded one
        assert e.table_sizes("K") == [6]
    for values in inputs[6:]:
        assert same_step([baseline, second], **values) is None
        assert_same_values([baseline, second], CKPT_NAMES)
    assert second.table_sizes("B") == [10, 4] and second.steps == 10


CKPT_GROWN_SRC = """
dynamic { v: f32[2]; n: i64; }
volatile { y: f32[2]; }
persistent { t: i64; s: i64; T(i): f32[2] @init(0.5) @table; B(i, j): f32[2] @table; K(p): f32[2] @table @fixed(p=2); }
block entry {
    cache.write n >> s;
    cache.write v >> T[t];
    cache.write v >> B[t, s];
    cache.read T[0..t] >> y;
    cache.increment t;
    cache.write v >> K[s];
}
"""


def test_checkpoint_of_grown_tables_and_failed_steps(tmp_path) -> None:
    """A cpu state whose tables grew past their first capacity, saved after a failed step
    (which grew them further before failing), loads on both devices and continues identically."""
    sims = simulators(CKPT_GROWN_SRC)
    cpu = sims["cpu"].make_executor()
    for n in range(30):
        cpu.insert(v=f32(n, n), n=n % 2).step()
    with pytest.raises(oi.CacheError):
        cpu.insert(v=f32(1, 1), n=100).step()
    assert cpu.table_sizes("T") == [30] and cpu.table_sizes("B") == [30, 2]
    path = cpu.save_state(tmp_path / "g.st")
    exes = [sims[d].make_executor() for d in DEVICES]
    for e in exes:
        e.load_state(path)
    assert persistent(exes[0]) == persistent(exes[1]) == persistent(cpu)
    assert_same_values(exes, ["y", "v", "n"])
    for n in range(10):
        result = same_step(exes, v=f32(n, 1), n=[0, 1, 35, 1][n % 4])
        assert (result is None) == (n % 4 != 2)  # n=35 fails at K[s] and is rolled back
    assert exes[1].table_sizes("T") == [38]
    assert_same_values(exes, ["y"])


# --- what the compiled path refuses --------------------------------------------------------------

UNSUPPORTED = {
    # (a recursive branch, yield/await, volatile prefix tables and f8 increments once here now run:
    # tests/cpu/test_cpu_constructs.py)
    "yield of a read destination": ("volatile { r: f32[2]; }\npersistent { K(i): f32[2] @table; }\nblock entry {\n"
                                    "    cache.read K[0] >> r;\n    yield r;\n    await r;\n}\nblock w {\n"
                                    "    op neg(r) >> r;\n}", "yield of r (a volatile view variable)", 5, 5),
}  # fmt: skip


@pytest.mark.parametrize("case", list(UNSUPPORTED), ids=list(UNSUPPORTED))
def test_unsupported_constructs(case) -> None:
    src, what, line, column = UNSUPPORTED[case]
    graph = oi.parse_graph(src, FILE)
    exe = oi.Simulator(oi.Model(), graph, device="reference").make_executor()
    exe.step()  # the reference runs it
    with pytest.raises(Unsupported) as info:
        oi.Simulator(oi.Model(), graph, device="cpu")
    error = info.value
    assert isinstance(error, PassError)
    assert error.message == f"the compiled path does not support {what} yet (device='reference' runs it)"
    assert error.loc == oi.SourceLoc(FILE, line, column)
    assert str(error).startswith(f"{FILE}:{line}:{column}: error: the compiled path does not support ")


@pytest.mark.parametrize(
    ("src", "fragment", "line"),
    [
        # (a dynamic destination, once here, now runs: tests/cpu/test_cpu_constructs.py)
        ("volatile { y: f32[2, 2]; }\npersistent { A(i): f32[2] @table; }\nblock entry {\n    cache.read A[0] >> y;\n"
         "    cache.read A[0..2] >> y;\n}", "cache.reads of different shapes into y", 4),
    ],
)  # fmt: skip
def test_unsupported_cache_read_destinations(src, fragment, line) -> None:
    graph = oi.parse_graph(src, FILE)
    oi.Simulator(oi.Model(), graph, device="reference").make_executor().step()
    with pytest.raises(Unsupported) as info:
        oi.Simulator(oi.Model(), graph, device="cpu")
    assert fragment in info.value.message
    assert info.value.loc is not None and (info.value.loc.filename, info.value.loc.line) == (FILE, line)


# --- oi-run --device cpu ---------------------------------------------------------------------------


def test_oi_run_cpu_matches_reference_on_kv_decode(tmp_path, capsys) -> None:
    from oi_compiler.tools.oi_run import main

    rng = np.random.default_rng(1)
    D = 3
    model = oi.Model(sizevars={"D": D, "T": 4},
                     tensors={w: rng.integers(-2, 3, (D, D)).astype(np.float32) for w in ("Wq", "Wk", "Wv")})  # fmt: skip
    model.save(tmp_path / "m.npz")
    np.save(tmp_path / "x.npy", rng.integers(-3, 4, (5, 1, D)).astype(np.float32))
    outputs = {}
    for device in DEVICES:
        argv = [str(EXAMPLES / "kv_decode.oi"), "--model", str(tmp_path / "m.npz"), "--steps", "5", "--device", device,
                "--feed", f"x={tmp_path / 'x.npy'}", "--fetch", "t", "keys", "values", "--save-state",
                str(tmp_path / f"{device}.st")]  # fmt: skip
        code = main(argv)
        outputs[device] = (code, *capsys.readouterr())
    assert outputs["cpu"] == outputs["reference"]
    assert outputs["cpu"][0] == 0 and outputs["cpu"][2] == ""
    assert outputs["cpu"][1].count("step ") == 5
    # each device continues the other's state file
    for device, other in (("cpu", "reference"), ("reference", "cpu")):
        code = main([str(EXAMPLES / "kv_decode.oi"), "--model", str(tmp_path / "m.npz"), "--device", device,
                     "--load-state", str(tmp_path / f"{other}.st"), "--feed", "x=[[1, 2, 3]]",
                     "--fetch", "t", "keys"])  # fmt: skip
        outputs[device] = (code, *capsys.readouterr())
    assert outputs["cpu"] == outputs["reference"]
    assert "t (scalar) = 6" in outputs["cpu"][1]


# --- mismatches found: the compiled path differs from the reference here --------------------------


def test_fetch_of_a_read_destination_before_it_is_read() -> None:
    ref, cpu = pair(
        """
        volatile { y: f32[2]; z: f32[2]; }
        persistent { T(i): f32[2] @table; }
        block entry { cache.read T[1] >> y; cache.read T[0..2] >> z; }
        """
    )
    for name in ("y", "z"):
        assert ref.fetch(name).shape == (2,)
        assert cpu.fetch(name).shape == ref.fetch(name).shape


def test_fetch_of_a_read_destination_in_a_loop_that_did_not_run() -> None:
    exes = pair(
        """
        dynamic { n: i64; }
        volatile { y: f32[2] @init(4.0); }
        persistent { T(i): f32[2] @table; }
        block entry { loop l (i in 0..n) { cache.read T[i] >> y; } }
        """
    )
    assert same_step(exes, n=0) is None
    assert_same_values(exes, ["y"])


def test_read_destination_after_a_failed_step() -> None:
    exes = pair(
        """
        dynamic { v: f32[2]; }
        volatile { y: f32[2]; }
        persistent { s: i64 @init(0); T(i): f32[2] @table; K(i): f32[2] @table @fixed(i=1); }
        block entry {
            cache.write v >> T[0];
            cache.read T[0] >> y;
            cache.increment s;
            cache.write v >> K[s];
        }
        """
    )
    assert same_step(exes, v=f32(1, 2))[1] == "cache table K index 0 exceeds fixed size 1 (index value 1)"
    assert exes[0].fetch("y").tolist() == [1.0, 2.0]
    assert_same_values(exes, ["y"])


def test_loaded_read_destination_after_a_failed_step(tmp_path) -> None:
    src = """
    dynamic { v: f32[2]; n: i64; }
    volatile { y: f32[2]; }
    persistent { s: i64; t: i64; T(i): f32[2] @table; K(i): f32[2] @table @fixed(i=2); }
    block entry {
        cache.write n >> s;
        cache.write v >> K[s];
        cache.write v >> T[t];
        cache.increment t;
        cache.read T[0..t] >> y;
    }
    """
    saver = simulators(src)["reference"].make_executor()
    for n in range(3):
        saver.insert(v=f32(n, n), n=0).step()
    path = saver.save_state(tmp_path / "s.st")
    exes = pair(src)
    for e in exes:
        e.load_state(path)
    assert_same_values(exes, ["y"])  # right after the load they agree
    assert same_step(exes, v=f32(9, 9), n=5)[1] == "cache table K index 0 exceeds fixed size 2 (index value 5)"
    assert_same_values(exes, ["y"])


def test_fetch_of_a_prefix_table_name() -> None:
    model = oi.Model(tensors={"w.0": f32(1, 2)})
    exes = pair("constant { W(l): f32[2] @pattern(\"w.{l}\"); } volatile { y: f32[2]; } block entry { op add(y, W[0]) >> y; }",
                model=model)  # fmt: skip
    assert _api_result(exes[0], lambda e: e.fetch("W")) == _api_result(exes[1], lambda e: e.fetch("W"))


def test_u64_index_past_i64_range_wraps_negative_as_upstream() -> None:
    """Upstream's `scalar_to_i64` casts a u64 with `as i64`: 2**63 and above read as negative, so
    both devices refuse the index (was: the reference used the unsigned value, cpu the wrapped one)."""
    exes = pair(
        """
        dynamic { v: f32[2]; }
        persistent { s: u64 @init(9223372036854775808); T(i): f32[2] @table; }
        block entry { cache.write v >> T[s]; }
        """
    )
    for exe in exes:
        with pytest.raises(oi.CacheError, match="cache index cannot be negative"):
            exe.insert(v=f32(1, 2)).step()
        assert exe.table_sizes("T") == [0] and exe.steps == 0


def test_huge_index_on_a_growable_table() -> None:
    """cpu tables are dense (capacity x entry): an index whose dense table cannot be allocated
    (2**62) is refused with a CacheError on both devices (the reference mirrors cpu's rule), and
    the failed step changes nothing."""
    exes = pair(
        """
        dynamic { v: f32[2]; }
        persistent { s: i64 @init(4611686018427387904); T(i): f32[2] @table; }
        block entry { cache.write v >> T[3]; cache.write v >> T[s]; }
        """
    )
    for exe in exes:
        with pytest.raises(oi.CacheError, match="cannot grow to 4611686018427387905 entries on device 'cpu'"):
            exe.insert(v=f32(1, 2)).step()
        assert exe.table_sizes("T") == [0] and exe.steps == 0


def test_error_location_of_the_same_graph_in_another_file(private_compile_cache) -> None:
    src = ("dynamic { v: f32[2]; }\npersistent { t: i32 @init(5); K(p): f32[2] @table @fixed(p=2); }\n"
           "block entry {\n    cache.write v >> K[t];\n}\n")  # fmt: skip
    for filename, text, where in (("first/g.oi", src, "first/g.oi:4:5"), ("second/g.oi", "\n\n" + src, "second/g.oi:6:5")):
        graph = oi.parse_graph(text, filename)
        exes = [oi.Simulator(oi.Model(), graph, device=device).make_executor() for device in DEVICES]
        assert same_step(exes, v=f32(1, 1))[2] == where


@pytest.mark.parametrize(("dtype", "node"), [("u8", "cache.increment 300 c;"), ("i8", "cache.decrement 129 c;")])
def test_increment_amount_wider_than_the_counter(dtype, node) -> None:
    exes = pair(f"persistent {{ c: {dtype} @init(1); }} block entry {{ {node} }}")
    assert same_step(exes) is None


TEMP_SRC = "volatile { one: f32[2] @init(1.0); } block entry { assign tmp: f32[2]; op add(tmp, one) >> tmp; }"


def test_fetch_of_an_assign_temporary_before_any_step() -> None:
    exes = pair(TEMP_SRC)
    assert _api_result(exes[0], lambda e: e.fetch("tmp")) == ("ExecutionError", "error: unknown variable: tmp")
    assert _api_result(exes[1], lambda e: e.fetch("tmp")) == _api_result(exes[0], lambda e: e.fetch("tmp"))


@pytest.mark.parametrize("method", ["state", "table_sizes"])
def test_state_of_an_assign_temporary(method) -> None:
    exes = pair(TEMP_SRC)
    assert same_step(exes) is None
    assert_same_values(exes, ["tmp"])  # after a step, fetch agrees
    results = [_api_result(e, lambda e: getattr(e, method)("tmp")) for e in exes]
    assert results[0] == ("ExecutionError", "error: unknown variable: tmp")
    assert results[1] == results[0]


def test_an_exact_array_is_copied_at_insert_not_held() -> None:
    """The insert fast path (an array of the declared dtype and shape, copied once into the step's
    buffer) keeps insert's meaning: changing the array after insert changes nothing."""
    exes = pair("dynamic { x: f32[2]; } volatile { y: f32[2]; } block entry { op relu(x) >> y; }")
    for exe in exes:
        x = np.array([1.0, -2.0], np.float32)
        exe.insert(x=x)
        x[:] = 7.0
        exe.step()
        np.testing.assert_array_equal(exe.fetch("y"), [1.0, 0.0])
        exe.insert(x=np.array([3, -1], np.int64)).step()  # the converting path
        np.testing.assert_array_equal(exe.fetch("y"), [3.0, 0.0])
