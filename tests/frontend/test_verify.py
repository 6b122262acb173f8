"""The graph verifier: one failing input per rule (exact message and line:col), and valid graphs."""

from __future__ import annotations

import re

import pytest

import oi_compiler as oi

from oi_compiler.dialects.oi import BranchOp, CacheReadOp
from oi_compiler.dialects.oi_attrs import CacheAccessAttr
from oi_compiler.errors import VerifyError
from oi_compiler.frontend.oi_dsl import parse_module
from oi_compiler.verify import verify_graph


def graph_of(text: str):
    return parse_module(text, "t.oi").body.block.ops.first


def verify_error(text_or_graph, sizevars=None) -> VerifyError:
    graph = graph_of(text_or_graph) if isinstance(text_or_graph, str) else text_or_graph
    with pytest.raises(VerifyError) as info:
        verify_graph(graph, sizevars=sizevars)
    return info.value


def line_col(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of character `offset` of `text`."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def where(text: str, needle: str) -> tuple[int, int]:
    """The line and column of the first occurrence of `needle` in `text`."""
    return line_col(text, text.index(needle))


# --- valid graphs ----------------------------------------------------------------------------

# §2's worked parser test, adapted so it validates: `state` is a plain table (the table +
# auto-dim combination declares no table index), the settings go to ops that take them,
# and the names it uses are declared.
WORKED_EXAMPLE = """
dynamic { x: f32[B, D]; w: f32[B, D]; cond: bool; }
volatile { tmp: f32[B, D]; }
persistent { state(i, j): f32[B, D] @table @fixed(i=2, j=3); step: i32 @init(0); }
block entry {
    assign t0: f32[B, D];
    op add(x, w) >> t0;
    op relu(t0, alpha=0.5, clamp_max=6.0) >> t0;
    cache.write t0 >> state[0, 1];   cache.read state[0, 1] >> t0;
    cache.increment 2 step;          cache.decrement step;          cache.reset state[0, 1];
    branch cond then_block else_block;   barrier;   dep after(block_a) before(block_b);
    loop i (idx in 0..4) { yield t0; await t0; transfer t0 >> tmp; return; }
    return;
}
block then_block { return; }
block else_block { return; }
"""

KV_DECODE = """
dynamic { x: f32[D]; }
constant { Wk: f32[D, D]; Wv: f32[D, D]; }
volatile { k: f32[D]; v: f32[D]; k_hist: f32[T, D]; v_hist: f32[T, D]; }
persistent {
    t: i32 @init(0);
    K(p): f32[D] @table @fixed(p=16);
    V(p): f32[D] @table @fixed(p=16);
}
block entry {
    op matmul(x, Wk) >> k;
    op matmul(x, Wv) >> v;
    cache.write k >> K[t];
    cache.write v >> V[t];
    cache.read K[0..t] >> k_hist;
    cache.read V[..] >> v_hist;
    cache.read K[15] >> k;
    cache.increment t;
    return;
}
"""

LAYERS = """
dynamic { x: f32[B, D]; }
constant {
    W(l): f32[D, D] @pattern("layers.{l}.weight");
    QKV(layer, head): f32[D] @pattern("attn.{head}.qkv.{layer}");
}
volatile { h: f32[B, D]; kv: f16[H, Dh]; }
persistent { K(l, t): f16[H, Dh] @table @fixed(l=4); step: i32 @init(0); }
block entry {
    loop layers (l in 0..L) {
        op matmul(x, W[l]) >> h;
        loop heads (hd in 0..NH) { op add(h, QKV[l, hd]) >> h; }
        cache.write kv >> K[l, step];
        cache.read K[l] >> kv;
    }
    cache.increment step;
    return;
}
"""

ASYNC = """
dynamic { x: f32[D]; }
volatile { h: f32[D]; }
block entry { yield x; op relu(x) >> h; await x; return; }
block worker { await x; op neg(x) >> x; yield x; }
"""

AUTO_DIM = """
dynamic { row: f16[D, H]; }
persistent { M(r, c): f16[D, H] @auto_dim(r, c) @fixed(r=8); n: i64; one: f32[1]; }
block entry {
    cache.write row >> M[n, 0];
    cache.read M >> row;
    cache.read M[1] >> row;
    cache.reset M;
    branch one side side;
    return;
}
block side { return; }
"""

SIZES = {"B": 2, "D": 4, "T": 3, "H": 2, "Dh": 2, "L": 2, "NH": 2}


@pytest.mark.parametrize("text", [WORKED_EXAMPLE, KV_DECODE, LAYERS, ASYNC, AUTO_DIM])
def test_valid_graphs_pass(text: str) -> None:
    verify_graph(graph_of(text))
    verify_graph(graph_of(text), sizevars=SIZES)


def test_sample_graph_is_rejected_for_its_table_with_auto_dims() -> None:
    text = "persistent { state(i, j): f32[D] @table @auto_dim(i, j); }\nblock entry { return; }"
    err = verify_error(text)
    assert err.message == "persistent table state must declare at least one table index"
    assert (err.loc.line, err.loc.column) == (1, 14)


# --- one failing input per rule -----------------------------------------------------------------

DECLS = """
dynamic { x: f32[D]; xb: f32[B, D]; i: i32[D]; u: u8[D]; c: bool; vec: f32[D]; x1: f32[1]; }
volatile { y: f32[D]; h: f16[D]; v: i32; n: f32[N]; }
constant { k: f32[D]; W(l): f32[D] @pattern("w.{l}"); }
persistent {
    t: i32 @init(0); flag: bool; P: f32[D]; q4: i4;
    K(l): f16[D] @table @fixed(l=4); K2(l, s): f16[D] @table; M(r): f16[D] @auto_dim(r);
}
"""

# (message, the entry block's body, where the error points); the body follows DECLS.
BODY_CASES = {
    # vars / context
    "assign-shadows": ("assign shadows declared variable y", "assign y: f32;", "assign y"),
    "duplicate-temp": ("duplicate temporary t0", "assign t0: f32; assign t0: f32;", "assign t0", 1),
    # cache ops
    "unknown-cache-var": ("unknown cache variable Z", "cache.read Z[0] >> y;", "cache.read"),
    "read-not-persistent": ("cache.read expects persistent variable, got Volatile y", "cache.read y >> h;", "cache"),
    "write-not-persistent": ("cache.write expects persistent variable, got Dynamic x", "cache.write y >> x;", "cache"),
    "reset-not-persistent": ("cache.reset expects persistent variable, got Constant k", "cache.reset k;", "cache"),
    "bump-not-persistent": (
        "cache operation expects persistent variable, got Volatile v",
        "cache.increment v;",
        "cache",
    ),
    "bump-not-scalar": ("cache increment expects scalar P", "cache.decrement 2 P;", "cache"),
    "bump-bool": ("cache increment does not support dtype Bool for flag", "cache.increment flag;", "cache"),
    "bump-packed": ("cache increment does not support dtype I4 for q4", "cache.increment q4;", "cache"),
    "table-unbracketed": ("cache table K requires indices", "cache.read K >> h;", "cache"),
    "plain-too-many": ("cache access expects at most 1 indices, got 2", "cache.read P[0, 1] >> y;", "cache"),
    "auto-dim-slice": ("cache access M does not support slice indices", "cache.read M[0..2] >> h;", "cache"),
    "reset-slice": ("cache.reset K requires scalar indices", "cache.reset K[1..];", "cache"),
    "table-too-many": ("cache access K expects at most 1 indices, got 2", "cache.read K[0, 1] >> h;", "cache"),
    "auto-too-many": ("cache access expects at most 1 indices, got 2", "cache.write h >> M[0, 1];", "cache"),
    "negative-index": ("cache index cannot be negative", "cache.read K[-1] >> h;", "cache"),
    "negative-slice-start": ("cache index cannot be negative", "cache.read K[-2..] >> h;", "cache"),
    "volatile-index": ("unknown cache index v", "cache.read K[v] >> h;", "cache"),
    "non-scalar-index": ("unknown cache index P", "cache.reset K[P];", "cache"),
    "temp-index": ("unknown cache index j", "assign j: i32; cache.read K[j] >> h;", "cache"),
    "read-into-constant": ("cache.read output k must be mutable non-persistent memory", "cache.read P >> k;", "cache"),
    "read-into-persistent": (
        "cache.read output P must be mutable non-persistent memory",
        "cache.read P >> P;",
        "cache",
    ),
    "read-unknown-dst": ("unknown variable: z", "cache.read K[0] >> z;", "cache"),
    "read-dtype": ("cache.read K -> y dtype mismatch F16 vs F32", "cache.read K[0] >> y;", "cache"),
    "write-dtype": ("cache.write y -> K dtype mismatch F32 vs F16", "cache.write y >> K[0];", "cache"),
    "write-unknown-src": ("unknown variable: z", "cache.write z >> K[0];", "cache"),
    "write-from-persistent": ("persistent cache P must be read via cache.read", "cache.write P >> P;", "cache"),
    "write-slice": ("cache.write K does not support slice indices", "cache.write h >> K[0..2];", "cache"),
    "write-partial": ("cache.write K2 does not support slice indices", "cache.write h >> K2[0];", "cache"),
    "write-all": ("cache.write K does not support slice indices", "cache.write h >> K[];", "cache"),
    "plain-indexed-read": ("cache P does not support indexed access", "cache.read P[0] >> y;", "cache"),
    "plain-indexed-write": ("cache.write P does not support indexed writes", "cache.write y >> P[];", "cache"),
    "fixed-exceeded": ("cache table K index 0 exceeds fixed size 4 (index value 4)", "cache.write h >> K[4];", "cache"),
    "write-shape": ("cache.write K expects shape [D], got [B, D]", "assign z: f16[B, D]; cache.write z >> K[0];", "cache"),
    "slice-backwards": ("slice end 2 before start 3", "cache.read K2[3..2, 0] >> h;", "cache"),
    "fixed-slice-exceeded": ("cache table K index 0 exceeds fixed size 4 (slice end 5)", "cache.read K[1..5] >> h;", "cache"),
    # persistent and constant memory through ops
    "op-reads-persistent": ("persistent cache P must be read via cache.read", "op add(P, x) >> y;", "op"),
    "op-writes-persistent": ("persistent cache P must be written via cache.write", "op add(x, x) >> P;", "op"),
    "op-writes-constant": ("cannot write to constant memory: k", "op add(x, x) >> k;", "op"),
    # ops
    "unknown-op": ("unsupported op foo", "op foo(x) >> y;", "op"),
    "arity": ("op add expects 2 inputs, got 1", "op add(x) >> y;", "op"),
    "no-accumulation": ("op div does not support accumulation", "op div(i, i, acc=[i64]) >> i;", "op"),
    "unknown-input": ("unknown input variable z", "op add(x, z) >> y;", "op"),
    "unknown-prefix-input": ("unknown input variable Z[0]", "op add(x, Z[0]) >> y;", "op"),
    "broadcast": ("op min does not allow broadcast inputs", "op min(x, xb) >> y;", "op"),
    "broadcast-texts": ("op min does not allow broadcast inputs", "op min(x, n) >> y;", "op"),
    "output-dtype": ("op add output dtype mismatch for h: expected F16, got F32", "op add(x, x) >> h;", "op"),
    "acc-output-dtype": (
        "op add output dtype mismatch for i: expected I32, got I64",
        "op add(i, i, acc=[i64]) >> i;",
        "op",
    ),
    "unknown-output": ("unknown output variable z", "op add(x, x) >> z;", "op"),
    "inplace": ("op popcount does not support inplace writes", "op popcount(u) >> u;", "op"),
    "dtype-support": ("op is_finite does not support I32 -> Bool for mode Normal", "op is_finite(i) >> c;", "op"),
    "dtype-support-acc": (
        "op add does not support F32 -> F32 for mode Accumulate",
        "op add(x, x, acc=[f32]) >> y;",
        "op",
    ),
    "cast-output": ("op cast does not support F32 -> Bool for mode Normal", "op cast(x, to=bool) >> c;", "op"),
    "cast-without-to": ("op cast requires setting to", "op cast(x) >> y;", "op"),
    "unsupported-setting": ("unsupported add setting: alpha", "op add(x, x, alpha=0.5) >> y;", "op"),
    "setting-type": ("unsupported relu setting type: alpha", 'op relu(x, alpha="big") >> y;', "op"),
    "setting-scalar-kind": (
        "unsupported sum_axis setting type: keepdims",
        "op sum_axis(x, keepdims=1) >> y;",
        "op",
    ),
    "setting-list": ("unsupported sum_axis setting type: axes", "op sum_axis(x, axes=2) >> y;", "op"),
    "setting-var-unknown": ("unknown attribute variable: s", "op relu(x, alpha=s) >> y;", "op"),
    "setting-var-not-scalar": ("attribute vec must be scalar", "op relu(x, alpha=vec) >> y;", "op"),
    "prefix-without-indices": ("prefix table W must be accessed with indices", "op add(x, W) >> y;", "op"),
    "not-a-prefix-table": ("variable x is not a prefix table", "op add(x[0], x) >> y;", "op"),
    "prefix-index-count": ("prefix table W expects 1 indices, got 2", "op add(x, W[0, 1]) >> y;", "op"),
    "prefix-index-unknown": ("unknown prefix index vec", "op add(x, W[vec]) >> y;", "op"),
    # transfer
    "transfer-unknown-src": ("unknown transfer source z", "transfer z >> y;", "transfer"),
    "transfer-unknown-dst": ("unknown transfer destination z", "transfer x >> z;", "transfer"),
    "transfer-into-constant": ("cannot transfer into k", "transfer x >> k;", "transfer"),
    "transfer-into-persistent": ("cannot transfer into P", "transfer x >> P;", "transfer"),
    "transfer-from-persistent": ("persistent cache P must be read via cache.read", "transfer P >> y;", "transfer"),
    "transfer-dtype": ("transfer dtype mismatch x -> h: F32 vs F16", "transfer x >> h;", "transfer"),
    "transfer-shape": ("transfer shape mismatch xb -> y: [B, D] vs [D]", "transfer xb >> y;", "transfer"),
    # control flow
    "branch-target": ("branch target block not found: nowhere", "branch nowhere;", "branch"),
    "branch-else-target": ("branch target block not found: nowhere", "branch c entry nowhere;", "branch"),
    "branch-unknown-cond": ("unknown variable z", "branch z entry entry;", "branch"),
    "branch-cond-not-scalar": ("vec must be scalar", "branch vec entry entry;", "branch"),
    "loop-bound-not-scalar": (
        "loop end bound vec is invalid: vec must be scalar",
        "loop a (j in 0..vec) { return; }",
        "loop",
    ),
    "loop-bound-outer-index": (
        "loop end bound j is invalid: unknown variable j",
        "loop a (j in 0..4) { loop b (m in 0..j) { return; } }",
        "loop b",
    ),
    "await-constant": ("await cannot target constant k", "await k;", "await"),
    "await-unknown": ("unknown variable: z", "await z;", "await"),
    "yield-unknown": ("unknown variable: z", "yield x, z;", "yield"),
}


def where_in_block(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """Line and column of the `nth` occurrence of `needle` after the entry block opens."""
    offset = text.index("block entry")
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    return line_col(text, offset)


@pytest.mark.parametrize("case", BODY_CASES.values(), ids=BODY_CASES.keys())
def test_statement_rule(case) -> None:
    message, body, at, *nth = case
    text = DECLS + "block entry {\n    " + body + "\n}\n"
    err = verify_error(text)
    assert err.message == message
    assert (err.loc.line, err.loc.column) == where_in_block(text, at, *nth)


# --- with size variables ------------------------------------------------------------------------

SIZED_CASES = {
    "loop-index-out-of-scope": (
        "unknown cache index j",
        "loop a (j in 0..2) { cache.read K[j] >> h; } cache.read K[j] >> h;",
        "cache.read",
        1,
    ),
    "unknown-sizevar-index": ("unknown cache index S", "cache.read K[S] >> h;", "cache"),
    "assign-unknown-size": ("unknown size: S", "assign z: f32[S];", "assign"),
    "loop-start-unknown": (
        "loop start bound S is invalid: unknown variable S",
        "loop a (j in S..2) { return; }",
        "loop",
    ),
    "prefix-index-unknown-size": ("unknown prefix index S", "op add(x, W[S]) >> y;", "op"),
    "broadcast-by-value": ("op min does not allow broadcast inputs", "op min(x, n) >> y;", "op"),
    "transfer-shape-by-value": ("transfer shape mismatch xb -> y: [2, 4] vs [4]", "transfer xb >> y;", "transfer"),
}

SIZED = {"B": 2, "D": 4, "N": 3}


@pytest.mark.parametrize("case", SIZED_CASES.values(), ids=SIZED_CASES.keys())
def test_statement_rule_with_sizevars(case) -> None:
    message, body, at, *nth = case
    text = DECLS + "block entry {\n    " + body + "\n}\n"
    err = verify_error(text, SIZED)
    assert err.message == message
    assert (err.loc.line, err.loc.column) == where_in_block(text, at, *nth)


def test_without_sizevars_unknown_names_may_be_sizevars() -> None:
    text = DECLS + "block entry { cache.read K[S] >> h; loop a (j in S..E) { op add(x, W[S]) >> y; } }"
    verify_graph(graph_of(text))


def test_sizevars_make_same_sized_dims_equal() -> None:
    text = DECLS + "block entry { op min(x, n) >> y; transfer x >> n; }"
    verify_graph(graph_of(text), sizevars={"B": 2, "D": 4, "N": 4})


def test_invalid_dims() -> None:
    text = "dynamic { x: f32[B, 2*S]; }\nblock entry { return; }"
    err = verify_error(text, {"B": 2})
    assert err.message == "invalid dims for x: unknown size: S"
    assert (err.loc.line, err.loc.column) == (1, 11)


def test_one_element_tensors_are_scalars() -> None:
    text = DECLS + "block entry { branch x1 entry entry; loop a (j in 0..x1) { return; } }"
    verify_graph(graph_of(text), sizevars=SIZED)


# --- declarations ---------------------------------------------------------------------------------

# (message, declarations; the error points at the first declared name of the last line)
DECL_CASES = {
    "duplicate-decl": ("duplicate variable declaration x", "dynamic { x: f32; }\nvolatile { x: f32; }"),
    "persistent-pattern": (
        "persistent variable P cannot use @pattern or @ref",
        'persistent { P(l): f32 @table @pattern("p.{l}"); }',
    ),
    "persistent-ref": ("persistent variable P cannot use @pattern or @ref", 'persistent { P: f32 @ref("p"); }'),
    "table-no-indices": ("persistent table K missing table indices", "persistent { K: f32[D] @table; }"),
    "auto-dim-no-indices": (
        "persistent variable M declares cache attributes but has no indices",
        "persistent { M: f32[D] @auto_dim(r); }",
    ),
    "indices-need-table": (
        "persistent variable K with indices must use @table or @auto_dim",
        "persistent { K(l): f32[D]; }",
    ),
    "duplicate-cache-index": ("persistent cache K has duplicate index l", "persistent { K(l, l): f32[D] @table; }"),
    "no-table-index": (
        "persistent table C must declare at least one table index",
        "persistent { C(r): f32[D] @table @auto_dim(r); }",
    ),
    "auto-dim-undeclared": ("auto_dim index x is not declared on M", "persistent { M(r): f32[D] @auto_dim(x); }"),
    "auto-dim-duplicate": (
        "auto_dim index r is duplicated on M",
        "persistent { M(r, c): f32[D, D] @auto_dim(r, r); }",
    ),
    "auto-dim-count": ("auto_dim requires 2 dims, got 1", "persistent { M(r, c): f32[D] @auto_dim(r, c); }"),
    "fixed-undeclared": ("fixed index z is not declared on K", "persistent { K(l): f32[D] @table @fixed(z=2); }"),
    "fixed-zero": ("fixed index l on K must be greater than 0", "persistent { K(l): f32[D] @table @fixed(l=0); }"),
    "packed-table": ("cache table packed dtypes not supported", "persistent { K(l): u4[D] @table; }"),
    "prefix-dynamic": (
        "prefix table W must be in volatile or constant memory",
        'dynamic { W(l): f32[D] @pattern("w.{l}"); }',
    ),
    "prefix-dynamic-no-pattern": ("prefix table W must be in volatile or constant memory", "dynamic { W(l): f32[D]; }"),
    "prefix-ref": (
        "prefix table W cannot use @reference",
        'constant { W(l): f32[D] @pattern("w.{l}") @ref("w"); }',
    ),
    "prefix-cache-attrs": (
        "prefix table W cannot use cache attributes",
        'volatile { W(l): f32[D] @pattern("w.{l}") @table; }',
    ),
    "prefix-no-index": ("prefix table W must declare at least one index", 'constant { W: f32[D] @pattern("w"); }'),
    "prefix-duplicate-index": (
        "prefix table W has duplicate index l",
        'constant { W(l, l): f32[D] @pattern("w.{l}"); }',
    ),
    "pattern-missing": (
        "pattern for W is missing placeholder {h}",
        'constant { W(l, h): f32[D] @pattern("w.{l}"); }',
    ),
    "pattern-unknown": (
        "pattern for W references unknown index {x}",
        'constant { W(l): f32[D] @pattern("w.{l}.{x}"); }',
    ),
    "pattern-unclosed": ("pattern placeholder missing closing brace", 'constant { W(l): f32[D] @pattern("w.{l"); }'),
    "pattern-empty": ("pattern placeholder cannot be empty", 'constant { W(l): f32[D] @pattern("w.{l}.{}"); }'),
    "pattern-invalid": ("invalid pattern placeholder {1a}", 'constant { W(l): f32[D] @pattern("w.{l}.{1a}"); }'),
    "prefix-no-pattern": ("prefix table W is missing @pattern", "constant { W(l): f32[D]; }"),
    "cache-attrs-not-persistent": (
        "cache attributes are only supported on persistent variables: v",
        "volatile { v: f32[D] @fixed(l=2); }",
    ),
}


@pytest.mark.parametrize("case", DECL_CASES.values(), ids=DECL_CASES.keys())
def test_declaration_rule(case) -> None:
    message, decls = case
    text = decls + "\nblock entry { return; }\n"
    err = verify_error(text)
    assert err.message == message
    last = decls.split("\n")[-1]
    line = decls.count("\n") + 1
    assert (err.loc.line, err.loc.column) == (line, last.index("{") + 3)


# --- graph-level and block-level rules --------------------------------------------------------------


#: graph-wide rules: (text, message, (line, column))
GRAPH_CASES = {
    "no blocks": ("dynamic { x: f32; }", "graph has no blocks", (1, 1)),
    "duplicate block": ("block entry { return; }\nblock entry { return; }", "duplicate block entry", (2, 1)),
    "temporaries are graph-wide": ("block entry { assign t: f32; return; }\nblock other { assign t: f32; }",
                                   "duplicate temporary t", (2, 15)),
    "temporary used before its assign": ("dynamic { x: f32; }\nblock entry { op add(x, x) >> t; assign t: f32; }",
                                         "unknown output variable t", (2, 15)),
    "yield not final in an async block": ("dynamic { x: f32; }\nblock entry { return; }\nblock worker { yield x; return; }",
                                          "yield in block worker must be the final node", (3, 16)),
    "await without yield": ("dynamic { x: f32; }\nblock entry { return; }\nblock worker { await x; return; }",
                            'block worker awaits ["x"] but never yields them', (3, 16)),
    "await what it does not yield": ("dynamic { x: f32; y: f32; }\nblock entry { return; }\n"
                                     "block worker { await x, y; yield x; }",
                                     "block worker awaits y but does not yield it", (3, 16)),
}  # fmt: skip


@pytest.mark.parametrize("case", GRAPH_CASES.values(), ids=GRAPH_CASES.keys())
def test_graph_rule(case) -> None:
    text, message, loc = case
    err = verify_error(text)
    assert (err.message, (err.loc.line, err.loc.column)) == (message, loc)


def test_entry_block_may_yield_anywhere() -> None:
    text = "dynamic { x: f32; }\nblock main { yield x; await x; return; }\nblock worker { await x; yield x; }"
    verify_graph(graph_of(text))  # no block named entry: the first block is the entry


def test_cache_access_missing_brackets() -> None:
    text = "volatile { h: f16[D]; }\npersistent { M(r): f16[D] @auto_dim(r); }\nblock entry { cache.read M[0] >> h; }"
    graph = graph_of(text)
    read = next(op for op in graph.walk() if isinstance(op, CacheReadOp))
    read.properties["src"] = CacheAccessAttr("M", [0], bracketed=False)
    err = verify_error(graph)
    assert err.message == "cache access M missing brackets"
    assert (err.loc.line, err.loc.column) == (3, 15)


def test_branch_requires_else_block() -> None:
    text = "dynamic { c: bool; }\nblock entry { branch c entry entry; }"
    graph = graph_of(text)
    branch = next(op for op in graph.walk() if isinstance(op, BranchOp))
    del branch.properties["else_block"]
    err = verify_error(graph)
    assert err.message == "branch c requires else block"
    assert (err.loc.line, err.loc.column) == (2, 15)


def test_errors_print_file_line_col() -> None:
    err = verify_error(DECLS + "block entry {\n    cache.read K >> h;\n}\n")
    assert str(err) == "t.oi:10:5: error: cache table K requires indices"


# --- rules only IR text can break (the DSL cannot spell a negative index or bound) ---------


def _ir_error(text: str) -> VerifyError:
    import oi_compiler as oi

    with pytest.raises(VerifyError) as info:
        oi.Graph(oi.parse_mlir(text, "neg.mlir")).verify()
    return info.value


def test_negative_prefix_index_in_ir_text() -> None:
    err = _ir_error(
        'oi.graph @g {\n  oi.var constant @W(l) : f32[4] @pattern("w.{l}")\n  oi.var volatile @y : f32[4]\n'
        "  oi.block @entry {\n    oi.op abs(@W[-1]) -> @y\n  }\n}\n"
    )
    assert (err.message, err.loc.line, err.loc.column) == ("prefix index of W cannot be negative", 5, 5)


def test_negative_loop_bound_in_ir_text() -> None:
    err = _ir_error("oi.graph @g {\n  oi.block @entry {\n    oi.loop l (i in -5 to 2) {\n    }\n  }\n}\n")
    assert (err.message, err.loc.line, err.loc.column) == ("loop start bound -5 is invalid: it is negative", 3, 5)


@pytest.mark.parametrize(("text", "message"), [
    ("dynamic { x: f32[2]; } persistent { K(p): f32[2] @table; }\n"
     "block entry { loop l (i in 0..9223372036854775808) { cache.write x >> K[0]; } }",
     "loop end bound 9223372036854775808 is out of range (at most 2**63 - 1)"),
    ("constant { W(l): f32[2] @pattern(\"w.{l}\"); } volatile { y: f32[2]; }\n"
     "block entry { op add(y, W[18446744073709551616]) >> y; }",
     "prefix index 18446744073709551616 of W is out of range (at most 2**63 - 1)"),
])  # fmt: skip
def test_literals_past_i64_are_refused(text, message) -> None:
    """Issue #15 item 7: the reference used such literals exactly, the compiled step modulo 2**64."""
    with pytest.raises(oi.VerifyError, match=re.escape(message)):
        oi.parse_graph(text, "big.oi").verify()
