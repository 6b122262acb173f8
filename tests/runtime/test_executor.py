"""The reference executor (oi.Simulator / Executor): memory kinds and model binding, inserts,
control flow, transfer, yield/await, tracing, error locations and per-step rollback
(reference/openinfer.md §3, §5, §8, §10; choices in docs/semantics.md)."""

from __future__ import annotations

import copy
import re
import textwrap

import numpy as np
import pytest

import oi_compiler as oi

FILE = "exec.oi"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(autouse=True)
def _no_env_trace(monkeypatch):
    """Tests that compare stderr must not see lines printed for OI_TRACE set in the outer environment."""
    monkeypatch.delenv("OI_TRACE", raising=False)
    monkeypatch.delenv("OPENINFER_TRACE", raising=False)


def simulator(src: str, *, sizevars=None, tensors=None, model_sizevars=None, zero_constants=False) -> oi.Simulator:
    graph = oi.parse_graph(textwrap.dedent(src), FILE)
    model = oi.Model(sizevars=model_sizevars or {}, tensors=tensors or {})
    return oi.Simulator(model, graph, device="reference", sizevars=sizevars, zero_constants=zero_constants)


def executor(src: str, *, trace: bool = False, **kw) -> oi.Executor:
    sim = simulator(src, **kw)
    if trace:
        sim.with_trace()
    return sim.make_executor()


def step(exe: oi.Executor, **values) -> oi.Executor:
    if values:
        exe.insert(**values)
    exe.step()
    return exe


def line_col(src: str, needle: str) -> tuple[int, int]:
    text = textwrap.dedent(src)
    offset = text.index(needle)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def f32(*values) -> np.ndarray:
    return np.array(values, dtype=np.float32)


# --- memory kinds (§3) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decl", "tensors", "inserted", "expected"),
    [
        ("x: f32[2];", {}, f32(3, 4), f32(3, 4)),  # inserted
        ("x: f32[2];", {"x": f32(5, 6)}, None, f32(5, 6)),  # not inserted: the model's tensor
        ("x: f32[2] @init(2.5);", {}, None, f32(2.5, 2.5)),  # else @init
        ("x: f32[2];", {}, None, f32(0, 0)),  # else zeros
        ("x: f32[2] @init(2.5);", {"x": f32(5, 6)}, None, f32(5, 6)),  # the model beats @init
        ("x: f32[2];", {"x": f32(5, 6)}, f32(1, 1), f32(1, 1)),  # an insert beats the model
    ],
)
def test_dynamic_sources(decl, tensors, inserted, expected) -> None:
    exe = executor(f"dynamic {{ {decl} }} volatile {{ y: f32[2]; }} block entry {{ op add(x, x) >> y; }}", tensors=tensors)
    if inserted is not None:
        exe.insert(x=inserted)
    step(exe)
    np.testing.assert_array_equal(exe.fetch("y"), 2 * expected)


@pytest.mark.parametrize(
    ("decl", "tensors", "expected"),
    [
        ("v: f32[2];", {"v": f32(1, 2)}, f32(1, 2)),
        ("v: f32[2] @init(-1.0);", {}, f32(-1, -1)),
        ("v: f32[2];", {}, f32(0, 0)),
        ("v: i32[2] @init(7);", {}, None),
    ],
)
def test_volatile_sources(decl, tensors, expected) -> None:
    out = "i32" if "i32" in decl else "f32"
    exe = step(executor(f"volatile {{ {decl} y: {out}[2]; }} block entry {{ op add(v, v) >> y; }}", tensors=tensors))
    if expected is None:
        np.testing.assert_array_equal(exe.fetch("y"), np.array([14, 14], np.int32))
        assert exe.fetch("y").dtype == np.int32
    else:
        np.testing.assert_array_equal(exe.fetch("y"), 2 * expected)


def test_model_tensors_are_copied_into_buffers() -> None:
    w = f32(1, 2)
    sim = simulator("volatile { v: f32[2]; one: f32[2] @init(1.0); } block entry { op add(v, one) >> v; }", tensors={"v": w})
    exe = sim.make_executor()
    step(exe)
    step(exe)
    np.testing.assert_array_equal(exe.fetch("v"), f32(3, 4))  # kept across steps, updated in place
    np.testing.assert_array_equal(w, f32(1, 2))
    np.testing.assert_array_equal(sim.model.tensor("v"), f32(1, 2))  # the model is untouched
    np.testing.assert_array_equal(step(sim.make_executor()).fetch("v"), f32(2, 3))


def test_constant_from_model() -> None:
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    exe = step(executor("constant { W: f32[2, D]; } volatile { y: f32[2, D]; } block entry { op add(W, W) >> y; }",
                        tensors={"W": w}, model_sizevars={"D": 3}))
    np.testing.assert_array_equal(exe.fetch("y"), 2 * w)
    np.testing.assert_array_equal(exe.fetch("W"), w)


def test_ref_resolves_the_model_name() -> None:
    """docs/semantics.md: `@ref` is resolved (upstream's run time reads zeros, §9.1)."""
    exe = step(
        executor(
            'constant { w: f32[2] @ref("weight.0"); } volatile { y: f32[2]; } block entry { op add(w, w) >> y; }',
            tensors={"weight.0": f32(1, 2), "w": f32(100, 100)},
        )
    )
    np.testing.assert_array_equal(exe.fetch("y"), f32(2, 4))


QKV_SRC = """
constant { QKV(layer, head): f32[2] @pattern("attn.{head}.qkv.{layer}"); }
volatile { y: f32[2]; }
block entry { %s }
"""


def qkv_tensors() -> dict:
    return {f"attn.{h}.qkv.{l}": np.full(2, 10 * l + h, np.float32) + f32(0, 0.5) for l in range(2) for h in range(3)}


def test_pattern_prefix_table_resolves_placeholders() -> None:
    exe = step(executor(QKV_SRC % "op add(QKV[1, 2], QKV[0, 1]) >> y;", tensors=qkv_tensors()))
    t = qkv_tensors()
    np.testing.assert_array_equal(exe.fetch("y"), t["attn.2.qkv.1"] + t["attn.1.qkv.0"])


def test_pattern_prefix_table_inside_loops() -> None:
    body = "loop layers (l in 0..L) { loop heads (h in 0..H) { op add(y, QKV[l, h]) >> y; } }"
    exe = step(executor(QKV_SRC % body, tensors=qkv_tensors(), sizevars={"L": 2, "H": 3}))
    np.testing.assert_array_equal(exe.fetch("y"), sum(qkv_tensors().values()))


def test_pattern_prefix_index_from_sizevar_and_scalar() -> None:
    src = """
    constant { W(l): f32[2] @pattern("layers.{l}.w"); }
    volatile { y: f32[2]; z: f32[2]; n: i32 @init(2); }
    block entry { op add(W[L], W[L]) >> y; op add(W[n], W[0]) >> z; }
    """
    tensors = {f"layers.{l}.w": np.full(2, l + 1, np.float32) for l in range(4)}
    exe = step(executor(src, tensors=tensors, sizevars={"L": 3}))
    np.testing.assert_array_equal(exe.fetch("y"), f32(8, 8))
    np.testing.assert_array_equal(exe.fetch("z"), f32(4, 4))


def test_pattern_missing_entry() -> None:
    exe = executor(QKV_SRC % "op add(QKV[5, 2], QKV[0, 1]) >> y;", tensors=qkv_tensors())
    with pytest.raises(oi.ExecutionError) as info:
        exe.step()
    assert info.value.message == "model variable not found: attn.2.qkv.5"
    # a volatile prefix table falls back to @init
    exe = step(
        executor(
            'volatile { V(l): f32[2] @pattern("v.{l}") @init(1.5); y: f32[2]; } block entry { op add(V[3], V[0]) >> y; }',
            tensors={"v.0": f32(1, 2)},
        )
    )
    np.testing.assert_array_equal(exe.fetch("y"), f32(2.5, 3.5))


def test_values_persist_across_steps() -> None:
    """Upstream never clears dynamic/volatile/assign buffers (§3 "Code reality")."""
    exe = executor(
        """
        dynamic { x: f32[2]; }
        volatile { acc: f32[2]; one: f32[2] @init(1.0); }
        block entry {
            assign t: f32[2];
            op add(t, one) >> t;
            op add(acc, x) >> acc;
        }
        """
    )
    exe.insert(x=f32(1, 2))
    for n in range(1, 4):
        step(exe)  # x stays inserted
        np.testing.assert_array_equal(exe.fetch("acc"), n * f32(1, 2))
        np.testing.assert_array_equal(exe.fetch("t"), f32(n, n))
    assert exe.steps == 3


def test_fetch_order_and_copies() -> None:
    exe = executor(
        """
        dynamic { x: f32[2]; }
        volatile { v: f32[2] @init(4.0); m: f32[2]; }
        persistent { p: f32[2] @init(9.0); }
        block entry { return; }
        """,
        tensors={"m": f32(7, 8)},
    )
    np.testing.assert_array_equal(exe.fetch("p"), f32(9, 9))
    np.testing.assert_array_equal(exe.fetch("m"), f32(7, 8))  # model
    np.testing.assert_array_equal(exe.fetch("v"), f32(4, 4))  # @init
    np.testing.assert_array_equal(exe.fetch("x"), f32(0, 0))
    exe.insert(x=f32(1, 2))
    got = exe.fetch("x")
    got[:] = 99
    np.testing.assert_array_equal(exe.fetch("x"), f32(1, 2))
    with pytest.raises(oi.ExecutionError) as info:
        exe.fetch("nope")
    assert info.value.message == "unknown variable: nope"
    with pytest.raises(oi.ExecutionError):
        exe.state("v")


@pytest.mark.parametrize(("name", "message"), [("y", "y is not persistent (volatile)"), ("zz", "unknown variable: zz")])
def test_state_and_table_sizes_of_a_non_persistent(name, message) -> None:
    exe = executor("volatile { y: f32; } persistent { p: i32; K(i): f32 @table; } block entry { return; }")
    assert exe.table_sizes("p") == [] and exe.table_sizes("K") == [0]
    with pytest.raises(oi.ExecutionError) as info:
        exe.state(name)
    assert info.value.message == message
    with pytest.raises(oi.ExecutionError) as info:
        exe.table_sizes(name)  # like state(): an OiError, not a bare KeyError
    assert info.value.message == message


def test_executors_are_independent_and_reset() -> None:
    sim = simulator("persistent { t: i32; } volatile { one: f32 @init(1.0); a: f32; } block entry { cache.increment t; op add(a, one) >> a; }")
    sim.with_trace()
    one, two = sim.make_executor(), sim.make_executor()
    step(one)
    step(one)
    step(two)
    assert int(one.state("t")) == 2 and int(two.state("t")) == 1
    assert float(one.fetch("a")) == 2.0 and float(two.fetch("a")) == 1.0
    one.reset()
    assert int(one.state("t")) == 0 and one.steps == 0 and one.trace() == []
    assert float(one.fetch("a")) == 0.0
    step(one)
    assert int(one.state("t")) == 1


# --- inserts ------------------------------------------------------------------------------------------

INSERT_SRC = """
dynamic { x: f32[2]; s: i32; }
volatile { v: f32[2]; }
constant { c: f32[2]; }
persistent { p: f32[2]; }
block entry { return; }
"""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"q": 1.0}, "unknown variable: q"),
        ({"x": [1.0, 2.0, 3.0]}, "insert x expects shape [2], got [3]"),
        ({"x": np.ones((2, 1), np.float32)}, "insert x expects shape [2], got [2, 1]"),
        ({"v": [1.0, 2.0]}, "cannot insert into volatile variable v"),
        ({"c": [1.0, 2.0]}, "cannot insert into constant variable c"),
        ({"p": [1.0, 2.0]}, "cannot insert into persistent variable p"),
    ],
)
def test_insert_errors(values, message) -> None:
    exe = executor(INSERT_SRC, zero_constants=True)
    exe.insert(x=f32(5, 6))
    with pytest.raises(oi.ExecutionError) as info:
        exe.insert({"x": f32(1, 1), **values})
    assert info.value.message == message
    np.testing.assert_array_equal(exe.fetch("x"), f32(5, 6))  # nothing inserted


def test_insert_converts_and_accepts_both_forms() -> None:
    exe = executor(INSERT_SRC, zero_constants=True)
    exe.insert({"x": [1, 2]}, s=np.int64(7))
    assert exe.fetch("x").dtype == np.float32 and exe.fetch("s").dtype == np.int32
    np.testing.assert_array_equal(exe.fetch("x"), f32(1, 2))
    assert int(exe.fetch("s")) == 7
    mine = f32(4, 5)
    exe.insert(x=mine)
    mine[:] = 0  # the executor keeps its own copy
    np.testing.assert_array_equal(exe.fetch("x"), f32(4, 5))
    exe.insert(s=[9])  # one element fits a scalar
    assert exe.fetch("s").shape == () and int(exe.fetch("s")) == 9


# --- control flow (§3) ---------------------------------------------------------------------------------

BRANCH_SRC = """
dynamic { ok: bool; x: f32; }
volatile { y: f32; one: f32 @init(1.0); two: f32 @init(2.0); }
block entry {
    op add(x, one) >> y;
    op add(y, one) >> y;
    branch ok good bad;
    branch algorithm;
    return;
}
block good {
    op mul(y, two) >> y;
    return;
}
block bad {
    op add(y, one) >> y;
    op add(y, one) >> y;
    return;
}
block algorithm {
    op mul(y, two) >> y;
    return;
}
"""


def test_branch_calls_and_resumes_numbering_across_blocks() -> None:
    """§3 log `branching_bad`: entry 0,1,2 -> bad 7,8,9 -> entry 3 -> algorithm 10,11 -> entry 4."""
    exe = step(executor(BRANCH_SRC, trace=True), ok=False, x=np.float32(1))
    trace = exe.trace()
    assert [(e["block_name"], e["node_index"]) for e in trace] == [
        ("entry", 0), ("entry", 1), ("entry", 2), ("bad", 7), ("bad", 8), ("bad", 9),
        ("entry", 3), ("algorithm", 10), ("algorithm", 11), ("entry", 4),
    ]  # fmt: skip
    assert float(exe.fetch("y")) == ((1 + 1 + 1) + 2) * 2
    exe2 = step(executor(BRANCH_SRC, trace=True), ok=True, x=np.float32(1))
    assert [e["node_index"] for e in exe2.trace()] == [0, 1, 2, 5, 6, 3, 10, 11, 4]
    assert float(exe2.fetch("y")) == (3 * 2) * 2


@pytest.mark.parametrize(("cond", "expected"), [("1", 10.0), ("0", 20.0), ("-3", 10.0)])
def test_branch_condition_non_zero(cond, expected) -> None:
    exe = executor(
        f"""
        volatile {{ c: i32 @init({cond}); y: f32; }}
        block entry {{ branch c a b; }}
        block a {{ op fill(y, value=10.0) >> y; }}
        block b {{ op fill(y, value=20.0) >> y; }}
        """
    )
    assert float(step(exe).fetch("y")) == expected


def test_return_in_callee_ends_only_the_callee() -> None:
    exe = executor(
        """
        volatile { y: f32; one: f32 @init(1.0); }
        block entry { branch sub; op add(y, one) >> y; }
        block sub { op add(y, one) >> y; return; op add(y, one) >> y; }
        """
    )
    assert float(step(exe).fetch("y")) == 2.0


def test_return_in_entry_ends_the_step() -> None:
    exe = executor("volatile { y: f32; one: f32 @init(1.0); } block entry { op add(y, one) >> y; return; op add(y, one) >> y; }")
    assert float(step(exe).fetch("y")) == 1.0


def test_return_inside_a_loop_exits_only_the_loop() -> None:
    exe = executor(
        """
        volatile { y: f32; one: f32 @init(1.0); }
        block entry {
            loop outer (i in 0..3) {
                op add(y, one) >> y;
                loop inner (j in 0..5) { op add(y, one) >> y; return; }
                op add(y, one) >> y;
            }
            op mul(y, y) >> y;
        }
        """
    )
    assert float(step(exe).fetch("y")) == 81.0  # 3 * (1 + 1 + 1), squared


@pytest.mark.parametrize(
    ("bounds", "decls", "kw", "count"),
    [
        ("0..N", "", {"sizevars": {"N": 3}}, 3),
        ("1..N", "", {"model_sizevars": {"N": 4}}, 3),
        ("0..n", "volatile { n: i32 @init(4); }", {}, 4),
        ("s..e", "volatile { s: u8 @init(2); e: i64 @init(5); }", {}, 3),
        ("0..p", "persistent { p: i32 @init(2); }", {}, 2),
        ("0..d", "dynamic { d: i32 @init(6); }", {}, 6),
        ("3..1", "", {}, 0),
        ("2..2", "", {}, 0),
    ],
)
def test_loop_bounds(bounds, decls, kw, count) -> None:
    exe = executor(
        f"""
        {decls}
        volatile {{ y: f32; one: f32 @init(1.0); }}
        block entry {{ loop l (i in {bounds}) {{ op add(y, one) >> y; }} }}
        """,
        **kw,
    )
    assert float(step(exe).fetch("y")) == count


def test_loop_bounds_are_read_once() -> None:
    exe = executor(
        """
        volatile { n: i32 @init(3); k: i32 @init(1); y: f32; one: f32 @init(1.0); }
        block entry { loop l (i in 0..n) { op add(n, k) >> n; op add(y, one) >> y; } }
        """
    )
    step(exe)
    assert float(exe.fetch("y")) == 3.0 and int(exe.fetch("n")) == 6


def test_barrier_and_dep_are_traced_no_ops() -> None:
    exe = step(
        executor(
            "volatile { y: f32; one: f32 @init(1.0); } block entry { barrier; op add(y, one) >> y; dep after(a) before(b); }"
            " block a { return; } block b { return; }",
            trace=True,
        )
    )
    assert [(e["kind"], e["node_desc"]) for e in exe.trace()] == [
        ("Barrier", "barrier"), ("OpExecute", "op add(y,one) >> y"), ("Dep", "dep after(a) before(b)"),
    ]  # fmt: skip
    assert float(exe.fetch("y")) == 1.0


# --- transfer (§3) --------------------------------------------------------------------------------------


def test_transfer_aliases_in_place_ops_on_the_destination() -> None:
    exe = step(
        executor(
            """
            volatile { a: f32[2] @init(1.0); b: f32[2]; one: f32[2] @init(1.0); }
            block entry { transfer a >> b; op add(b, one) >> b; }
            """
        )
    )
    np.testing.assert_array_equal(exe.fetch("b"), f32(2, 2))
    np.testing.assert_array_equal(exe.fetch("a"), f32(2, 2))  # seen through the source


def test_transfer_aliases_writes_to_the_source() -> None:
    exe = executor(
        """
        dynamic { x: f32[2]; }
        volatile { a: f32[2]; b: f32[2]; }
        block entry { transfer a >> b; op add(x, x) >> a; }
        """
    )
    step(exe, x=f32(1, 3))
    np.testing.assert_array_equal(exe.fetch("b"), f32(2, 6))
    step(exe, x=f32(5, 5))  # the alias persists across steps
    np.testing.assert_array_equal(exe.fetch("b"), f32(10, 10))


# --- yield / await (§3, deterministic by choice) ------------------------------------------------------

ASYNC_SRC = """
volatile { v: f32[2] @init(1.0); w: f32[2]; u: f32[2] @init(5.0); one: f32[2] @init(1.0); }
persistent { t: i32; }
block entry {
    yield v, w, u;
    op add(v, one) >> v;
    op add(u, one) >> u;
    await v, w, u;
}
block worker_b { op add(w, one) >> w; cache.increment t; yield w; }
block worker_a { op add(v, v) >> v; cache.increment 10 t; yield v; }
"""


def test_yield_await_merges_mutated_values_deterministically() -> None:
    results = []
    for _ in range(3):
        exe = step(executor(ASYNC_SRC, trace=True))
        results.append((exe.fetch("v").tolist(), exe.fetch("w").tolist(), exe.fetch("u").tolist(), int(exe.state("t"))))
        order = [(e["block_name"], e["kind"]) for e in exe.trace()]
    assert results[0] == results[1] == results[2]
    v, w, u, t = results[0]
    assert v == [2.0, 2.0]  # worker_a's value from the snapshot (1 + 1) wins over the entry's
    assert w == [1.0, 1.0]
    assert u == [6.0, 6.0]  # mutated by no async block: the entry's value stays
    assert t == 11  # cache ops of both blocks act on the shared persistent state
    # async blocks run at the await; their events are dropped, as upstream's run_block drops them
    assert order == [("entry", "Yield"), ("entry", "OpExecute"), ("entry", "OpExecute"), ("entry", "Await")]


def test_every_yielded_variable_a_block_wrote_is_merged() -> None:
    """Upstream merges the yielded variables (not only the awaited ones) back at the await."""
    exe = step(
        executor(
            """
            volatile { v: f32[2] @init(1.0); w: f32[2] @init(1.0); one: f32[2] @init(1.0); }
            block entry { yield v, w; await v; }
            block worker { op add(v, one) >> v; op add(w, one) >> w; yield v, w; }
            """
        )
    )
    np.testing.assert_array_equal(exe.fetch("v"), f32(2, 2))
    np.testing.assert_array_equal(exe.fetch("w"), f32(2, 2))  # yielded and mutated, though not awaited


def test_multiple_blocks_mutated() -> None:
    exe = executor(
        """
        volatile { v: f32[2] @init(1.0); one: f32[2] @init(1.0); }
        block entry { yield v; await v; }
        block a { op add(v, v) >> v; yield v; }
        block b { op add(v, one) >> v; yield v; }
        """
    )
    with pytest.raises(oi.ExecutionError) as info:
        exe.step()
    assert info.value.message == "multiple blocks mutated v"


def test_await_required_before_next_yield() -> None:
    src = """
    volatile { v: f32[2] @init(1.0); }
    block entry { yield v; yield v; await v; }
    block a { op add(v, v) >> v; yield v; }
    """
    exe = executor(src)
    with pytest.raises(oi.ExecutionError) as info:
        exe.step()
    assert info.value.message == "await required before next yield"
    line, col = line_col(src, "yield v; await")
    assert str(info.value) == f"{FILE}:{line}:{col}: error: await required before next yield"


def test_yield_without_await_still_runs_async_blocks() -> None:
    exe = step(
        executor(
            """
            volatile { v: f32[2] @init(1.0); }
            persistent { t: i32; }
            block entry { yield v; }
            block a { cache.increment t; yield v; }
            """
        )
    )
    assert int(exe.state("t")) == 1


# --- tracing (§8) ----------------------------------------------------------------------------------------

LOOP_SRC = """
dynamic { x: f32[2]; }
constant { QKV(layer, head): f32[2] @pattern("attn.{head}.qkv.{layer}"); }
volatile { y: f32[2]; }
block entry {
    op add(x, QKV[0, 0]) >> y;
    loop layers (l in 0..2) {
        loop heads (h in 0..2) {
            op add(y, QKV[l, h]) >> y;
        }
    }
    return;
}
"""


def test_loop_bodies_are_numbered_before_the_loop() -> None:
    """§2/§3: `op add(x,QKV[0,0])`=0, inner body op=1, inner loop=2, outer loop=3, `return`=4."""
    tensors = {f"attn.{h}.qkv.{l}": np.full(2, 1 + l + 10 * h, np.float32) for l in range(2) for h in range(2)}
    exe = step(executor(LOOP_SRC, trace=True, tensors=tensors), x=f32(0.5, 0.5))
    np.testing.assert_array_equal(exe.fetch("y"), f32(0.5, 0.5) + 1 + sum(tensors.values()))
    events = exe.trace()
    assert [e["node_index"] for e in events] == [0, 3, 2, 1, 1, 2, 1, 1, 4]
    assert [e["kind"] for e in events] == ["OpExecute", "Loop", "Loop", "OpExecute", "OpExecute",
                                           "Loop", "OpExecute", "OpExecute", "Return"]  # fmt: skip
    descs = {e["node_index"]: e["node_desc"] for e in events}
    assert descs == {
        0: "op add(x,QKV[0,0]) >> y",
        1: "op add(y,QKV[l,h]) >> y",  # loop variables are not substituted
        2: "loop heads (h in 0..2)",
        3: "loop layers (l in 0..2)",
        4: "return",
    }
    assert all(e["block_name"] == "entry" for e in events)
    assert {e["op_name"] for e in events if e["kind"] == "OpExecute"} == {"add"}
    uuids = {e["node_index"]: e["node_uuid"] for e in events}
    assert all(re.fullmatch(UUID, u) for u in uuids.values()) and len(set(uuids.values())) == 5


DESC_SRC = """
dynamic { c: bool; }
volatile { y: f32[2]; z: f32[2]; }
persistent { t: i32 @init(0); A(i, j): f32[2] @table; }
block entry {
    assign tmp: f32[2];
    op add(y, y) >> z;
    cache.read A[t, 0..3] >> z;
    cache.read A[0.., ..3] >> z;
    cache.read A[0..-1] >> z;
    cache.read A[] >> z;
    cache.write y >> A[0, t];
    cache.increment t;
    cache.increment 5 t;
    cache.decrement t;
    cache.decrement 2 t;
    cache.reset A[0];
    cache.reset A[];
    transfer y >> z;
    barrier;
    dep after(a) before(b);
    branch c a b;
    branch a;
    loop outer (i in 0..t) { return; }
    yield y, z;
    await y, z;
    return;
}
block a { return; }
block b { return; }
"""

DESCRIPTIONS = [
    (0, "Assign", "assign tmp"),
    (1, "OpExecute", "op add(y,y) >> z"),
    (2, "CacheRead", "cache.read A[t,0..3] >> z"),
    (3, "CacheRead", "cache.read A[0..,..3] >> z"),
    (4, "CacheRead", "cache.read A[0..-1] >> z"),
    (5, "CacheRead", "cache.read A[] >> z"),
    (6, "CacheWrite", "cache.write y >> A[0,t]"),
    (7, "CacheIncrement", "cache.increment t"),
    (8, "CacheIncrement", "cache.increment 5 t"),
    (9, "CacheDecrement", "cache.decrement t"),
    (10, "CacheDecrement", "cache.decrement 2 t"),
    (11, "CacheReset", "cache.reset A[0]"),
    (12, "CacheReset", "cache.reset A[]"),
    (13, "Transfer", "transfer y >> z"),
    (14, "Barrier", "barrier"),
    (15, "Dep", "dep after(a) before(b)"),
    (16, "Branch", "branch c a b"),
    (23, "Return", "return"),  # block a (numbered after every entry node)
    (17, "Branch", "branch a"),
    (23, "Return", "return"),
    (19, "Loop", "loop outer (i in 0..t)"),  # t == 3 here
    (18, "Return", "return"),  # the loop body, numbered before its loop
    (20, "Yield", "yield y, z"),
    (21, "Await", "await y, z"),  # a and b are branch targets: no async block runs
    (22, "Return", "return"),
]


def test_descriptions_and_kinds_exactly_as_upstream() -> None:
    exe = step(executor(DESC_SRC, trace=True), c=True)
    got = [(e["node_index"], e["kind"], e["node_desc"]) for e in exe.trace()]
    assert got == DESCRIPTIONS
    assert {k for _, k, _ in got} == {
        "Assign", "OpExecute", "CacheRead", "CacheWrite", "CacheIncrement", "CacheDecrement", "CacheReset",
        "Transfer", "Barrier", "Dep", "Branch", "Loop", "Return", "Yield", "Await",
    }  # fmt: skip


def test_description_of_a_full_slice_is_empty() -> None:
    """Upstream `graph/node.rs::format_cache_access` renders `Slice{None, None}` as an empty string,
    so `A[.., 1]` and `A[, 1]` both describe as `A[,1]` (and `A[1, ..]` as `A[1,]`)."""
    exe = step(
        executor(
            """
            volatile { z: f32[2]; }
            persistent { A(i, j): f32[2] @table; }
            block entry { cache.read A[.., 1] >> z; cache.read A[1, ..] >> z; }
            """,
            trace=True,
        )
    )
    assert [e["node_desc"] for e in exe.trace()] == ["cache.read A[,1] >> z", "cache.read A[1,] >> z"]


def test_trace_dict_shape_step_return_and_accumulation() -> None:
    sim = simulator("volatile { y: f32; one: f32 @init(1.0); } block entry { op add(y, one) >> y; barrier; }")
    plain = sim.make_executor()
    plain_last = plain.step()  # upstream's step returns the last event whether or not it traces
    assert plain_last is not None and plain_last.kind == "Barrier" and plain.trace() == [] and plain.events == []
    sim.with_trace()
    exe = sim.make_executor()
    last = exe.step()
    assert last is not None and last.kind == "Barrier" and last.node_index == 1
    event = exe.trace()[0]
    assert set(event) >= {"block_name", "node_index", "node_uuid", "kind", "params", "output", "micros"}
    assert event["params"] == [] and event["output"] == [] and event["micros"] == [0, 0, 0]
    exe.step()
    assert [e["node_index"] for e in exe.trace()] == [0, 1, 0, 1]  # accumulates over steps
    assert exe.trace()[0]["node_uuid"] == exe.trace()[2]["node_uuid"]
    assert len(exe.events) == 4


def test_timer_gives_non_zero_times() -> None:
    sim = simulator("dynamic { x: f32[64, 64]; } volatile { y: f32[64, 64]; } block entry { op matmul(x, x) >> y; op add(y, y) >> y; }")
    exe = sim.with_trace().with_timer().make_executor()
    step(exe, x=np.ones((64, 64), np.float32))
    events = exe.events
    assert all(e.nanos > 0 for e in events)
    for e, d in zip(events, exe.trace()):
        ms, us, ns = d["micros"]
        assert d["micros"] != [0, 0, 0] and 0 <= us < 1000 and 0 <= ns < 1000
        assert ms * 1_000_000 + us * 1000 + ns == e.nanos


def test_failing_nodes_emit_nothing() -> None:
    src = """
    dynamic { v: f32[2]; }
    volatile { y: f32[2]; }
    persistent { t: i32 @init(0); K(p): f32[2] @table @fixed(p=1); }
    block entry {
        cache.read K[0] >> y;
        cache.increment t;
        cache.write v >> K[t];
        barrier;
    }
    """
    exe = executor(src, trace=True)
    with pytest.raises(oi.CacheError):
        exe.step()
    assert [e["node_index"] for e in exe.trace()] == [0, 1]


@pytest.mark.parametrize(("var", "value", "prints"), [
    ("OI_TRACE", "full", True), ("OPENINFER_TRACE", "full", True), ("OI_TRACE", "FULL", True),
    ("OPENINFER_TRACE", "1", False), ("OI_TRACE", "", False),
])  # fmt: skip
def test_env_trace_prints_lines_to_stderr(monkeypatch, capsys, var, value, prints) -> None:
    monkeypatch.delenv("OI_TRACE", raising=False)
    monkeypatch.delenv("OPENINFER_TRACE", raising=False)
    monkeypatch.setenv(var, value)
    exe = executor("volatile { y: f32[2]; one: f32[2] @init(1.0); } block entry { op add(y, one) >> y; return; }")
    step(exe)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    if not prints:
        assert lines == []
        return
    assert len(lines) == 2
    assert re.fullmatch(rf"0 {UUID} \[entry\] -- op add\(y,one\) >> y -- \(0ms 0us 0ns\)", lines[0]), lines[0]
    assert re.fullmatch(rf"1 {UUID} \[entry\] -- return -- \(0ms 0us 0ns\)", lines[1]), lines[1]
    assert exe.trace() == []  # printing does not record without with_trace()


def test_env_trace_and_with_trace_together(monkeypatch, capsys) -> None:
    monkeypatch.setenv("OI_TRACE", "full")
    exe = executor("volatile { y: f32; } block entry { barrier; }", trace=True)
    step(exe)
    step(exe)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and len(exe.trace()) == 2
    assert lines[0] == exe.events[0].line()


# --- errors: locations, model binding ---------------------------------------------------------------------


def test_cache_error_carries_the_statement_location() -> None:
    src = """
    dynamic { v: f32[2]; }
    persistent { t: i32 @init(4); K(p): f32[2] @table @fixed(p=4); }
    block entry {
        cache.write v >> K[t];
    }
    """
    exe = executor(src)
    with pytest.raises(oi.CacheError) as info:
        step(exe, v=f32(1, 2))
    line, col = line_col(src, "cache.write v")
    assert str(info.value) == f"{FILE}:{line}:{col}: error: cache table K index 0 exceeds fixed size 4 (index value 4)"
    assert info.value.loc.filename == FILE and (info.value.loc.line, info.value.loc.column) == (line, col)
    assert info.value.node == "block entry node cache.write v >> K[t]"


def test_error_location_inside_a_loop_and_callee() -> None:
    src = """
    volatile { y: f32[2]; }
    persistent { K(p): f32[2] @table @fixed(p=2); }
    block entry { branch sub; }
    block sub {
        loop l (i in 0..5) {
            cache.read K[i] >> y;
        }
    }
    """
    with pytest.raises(oi.CacheError) as info:
        step(executor(src))
    line, col = line_col(src, "cache.read K[i]")
    assert str(info.value) == f"{FILE}:{line}:{col}: error: cache table K index 0 exceeds fixed size 2 (index value 2)"
    assert info.value.node == "block sub node cache.read K[i] >> y"


@pytest.mark.parametrize(
    ("decl", "tensors", "message"),
    [
        ('constant { w: f32[4] @ref("w.0"); }', {}, "model variable not found: w.0"),
        ("constant { w: f32[4]; }", {"w": np.zeros(4, np.float16)}, "model dtype mismatch for w: model F16, graph F32"),
        ("constant { w: f32[4]; }", {"w": np.zeros(5, np.float32)}, "model shape mismatch for w: model [5], graph [4]"),
        ("volatile { w: f32[2, 2]; }", {"w": np.zeros(4, np.float32)}, "model shape mismatch for w: model [4], graph [2, 2]"),
        ("dynamic { w: i32[4]; }", {"w": np.zeros(4, np.int64)}, "model dtype mismatch for w: model I64, graph I32"),
        ('volatile { w: f32[4] @ref("x"); }', {"x": np.zeros(3, np.float32)}, "model shape mismatch for w: model [3], graph [4]"),
    ],
)
def test_model_binding_errors_at_construction(decl, tensors, message) -> None:
    src = f"{decl}\nvolatile {{ y: f32[4]; }}\nblock entry {{ return; }}"
    with pytest.raises(oi.ModelError) as info:
        simulator(src, tensors=tensors)
    assert info.value.message == message
    assert str(info.value).startswith(f"{FILE}:1:")


def test_one_element_model_tensor_fits_any_one_element_declaration() -> None:
    exe = step(executor("constant { s: f32[1, 1]; } volatile { y: f32[1, 1]; } block entry { op add(s, s) >> y; }",
                        tensors={"s": np.float32(2.0)}))
    np.testing.assert_array_equal(exe.fetch("y"), [[4.0]])


def test_unknown_sizevar_at_construction() -> None:
    with pytest.raises(oi.VerifyError) as info:
        simulator("dynamic { x: f32[D]; } block entry { return; }")
    assert "unknown size" in info.value.message and "D" in info.value.message


def test_sizevars_argument_overrides_the_model() -> None:
    sim = simulator("dynamic { x: f32[D]; } block entry { return; }", model_sizevars={"D": 2}, sizevars={"D": 5})
    exe = sim.make_executor()
    assert exe.fetch("x").shape == (5,)


def test_unknown_device() -> None:
    graph = oi.parse_graph("block entry { return; }", FILE)
    with pytest.raises(oi.OiError):
        oi.Simulator(oi.Model(), graph, device="tpu")


# --- rollback ----------------------------------------------------------------------------------------------


def persistent_snapshot(exe: oi.Executor) -> dict:
    """A deep copy of every persistent variable: value bytes, dtype, shape, sizes/counts, entries."""
    snap = {}
    for name in exe.store:
        value = exe.state(name)
        storage = exe.store[name]
        entries = getattr(storage, "entries", {})
        snap[name] = copy.deepcopy(
            {
                "dtype": value.dtype.str,
                "shape": value.shape,
                "bytes": value.tobytes(),
                "sizes": exe.table_sizes(name),
                "entries": sorted((k, v.dtype.str, v.shape, v.tobytes()) for k, v in entries.items()),
            }
        )
    return snap


ROLLBACK_SRC = """
dynamic { v: f32[2]; u: f32[3]; rst: bool; bad: bool; }
volatile { m: f32[2]; w: f32[2]; z: f32[2]; }
persistent {
    t: i32 @init(0);
    c: i64 @init(100);
    big: i32 @init(9);
    W: f32[2];
    K(p): f32[2] @table @fixed(p=8);
    M(r): f32[2] @init(1.0) @auto_dim(r) @fixed(r=6);
}
block entry { branch rst clear main; }
block clear { cache.reset t; }
block main {
    cache.increment c;
    cache.write v >> W;
    cache.write v >> K[t];
    cache.read M[t] >> m;
    cache.reset K[0];
    branch bad boom fine;
    cache.increment t;
}
block fine { }
block boom { %s }
"""

ROLLBACK_CASES = {
    # `boom` runs (bad=True) after the step has changed c, W, K (an entry, a reset, sizes) and M
    "fixed_overflow": ("cache.increment t; cache.write v >> K[big];", oi.CacheError,
                       "cache table K index 0 exceeds fixed size 8 (index value 9)"),
    "auto_dim_max": ("cache.increment 2 t; cache.read M[big] >> m;", oi.CacheError,
                     "auto_dim M exceeds fixed max 6 for 0"),
    "write_shape": ("cache.read K[0..2] >> w; cache.write w >> K[1];", oi.CacheError,
                    "cache.write K expects shape [2], got [2, 2]"),
    "op_failure": ("cache.read K[0..2] >> w; op add(w, u) >> z;", oi.ExecutionError,
                   "op add cannot broadcast shapes [2, 2] and [3]"),
}  # fmt: skip


def rollback_exe(case: str) -> oi.Executor:
    return executor(ROLLBACK_SRC % ROLLBACK_CASES[case][0])


def feed(n: int, bad: bool = False) -> dict:
    return {"v": np.full(2, n + 0.5, np.float32), "u": np.zeros(3, np.float32), "rst": False, "bad": bad}


def test_rollback_cases_are_well_formed() -> None:
    """Sanity check of the fixture: with a value that never fails, the same steps succeed."""
    for case in ROLLBACK_CASES:
        exe = rollback_exe(case)
        for n in range(3):
            step(exe, **feed(n))
        assert int(exe.state("t")) == 3, case


@pytest.mark.parametrize("case", list(ROLLBACK_CASES))
def test_failed_step_restores_every_persistent_variable(case) -> None:
    exe = rollback_exe(case)
    for n in range(3):
        step(exe, **feed(n))
    before = persistent_snapshot(exe)
    assert before["t"]["bytes"] == np.int32(3).tobytes()
    _, error, message = ROLLBACK_CASES[case]
    with pytest.raises(error) as info:
        step(exe, **feed(3, bad=True))
    assert info.value.message == message
    assert persistent_snapshot(exe) == before
    assert exe.steps == 3  # a failed step does not count
    # the same failure again changes nothing either
    with pytest.raises(error):
        exe.step()
    assert persistent_snapshot(exe) == before


@pytest.mark.parametrize("case", list(ROLLBACK_CASES))
def test_executor_keeps_working_after_a_failed_step(case) -> None:
    exe, ref = rollback_exe(case), rollback_exe(case)
    inputs = [feed(n) for n in range(3)]
    for values in inputs:
        step(exe, **values)
        step(ref, **values)
    with pytest.raises(oi.OiError):
        step(exe, **feed(3, bad=True))
    # recover: reset t, then two more good steps on both
    later = [{"rst": True}, feed(10), feed(11)]
    for values in later:
        step(exe, **values)
        step(ref, **values)
    assert persistent_snapshot(exe) == persistent_snapshot(ref)
    assert int(exe.state("t")) == 2
    assert exe.steps == ref.steps == 6


def test_rollback_restores_a_table_entry_overwritten_in_the_step() -> None:
    exe = executor(
        """
        dynamic { v: f32[2]; }
        persistent { n: i32 @init(0); K(p): f32[2] @table @fixed(p=2); }
        block entry {
            cache.write v >> K[0];
            cache.increment n;
            cache.write v >> K[n];
        }
        """
    )
    step(exe, v=f32(1, 2))
    before = persistent_snapshot(exe)
    np.testing.assert_array_equal(exe.state("K"), [[1, 2], [1, 2]])
    with pytest.raises(oi.CacheError):
        step(exe, v=f32(7, 7))
    assert persistent_snapshot(exe) == before
    np.testing.assert_array_equal(exe.state("K"), [[1, 2], [1, 2]])


def test_oi_trace_set_after_the_executor_was_made_still_prints(monkeypatch, capsys) -> None:
    monkeypatch.delenv("OI_TRACE", raising=False)
    monkeypatch.delenv("OPENINFER_TRACE", raising=False)
    exe = executor("block entry { barrier; return; }")
    monkeypatch.setenv("OI_TRACE", "full")
    exe.step()
    assert "[entry] -- barrier --" in capsys.readouterr().err


def test_a_yield_ending_a_loop_in_a_called_block_traces_the_loop_once() -> None:
    exe = executor(
        """
        volatile { h: f32 @init(1.0); }
        block entry { branch prod; return; }
        block prod { loop l (i in 0..3) { yield h; } }
        """,
        trace=True,
    )
    exe.step()
    kinds = [(e["block_name"], e["kind"]) for e in exe.trace()]
    assert kinds == [("entry", "Branch"), ("prod", "Loop"), ("prod", "Yield"), ("entry", "Return")]
