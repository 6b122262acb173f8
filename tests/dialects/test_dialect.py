"""The `oi` dialect from Python: constructors, custom and generic printing and re-parsing, upstream's
describe_node texts, and memory effects that keep generic passes off stateful ops."""

from __future__ import annotations

import io
import math
from collections import Counter

import pytest
from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    f64,
    i64,
)
from xdsl.ir import Block, Region
from xdsl.printer import Printer

import oi_compiler as oi
from oi_compiler.dialects import oi as d
from oi_compiler.dialects.oi_attrs import CacheAccessAttr, DimAttr, SliceAttr, TensorType, VarRefAttr
from oi_compiler.dtypes import DTYPE_NAMES, dtype_type


def printed(module, generic: bool = False) -> str:
    buf = io.StringIO()
    Printer(stream=buf, print_generic_format=generic).print_op(module)
    return buf.getvalue()


def module_of(*body_ops, decls=()) -> ModuleOp:
    entry = d.BlockOp("entry", Region(Block(list(body_ops))))
    return ModuleOp([d.GraphOp("g", Region(Block([*decls, entry])))])


def assert_round_trips(module: ModuleOp) -> None:
    text = printed(module)
    for generic in (False, True):
        again = oi.parse_mlir(printed(module, generic), "rt.mlir")
        assert again.is_structurally_equivalent(module), printed(module, generic)
        assert printed(again) == text


def body_of(module: ModuleOp) -> list:
    graph = module.ops.first
    return list(graph.blocks[0].body.block.ops)


# --- constructors, printing, re-parsing -----------------------------------------------------------------

DECLS = [
    lambda: d.VarOp("persistent", "K", TensorType("f16", [DimAttr("H"), DimAttr(2, "D"), 4]), indices=["l", "t"],
                    table=True, fixed={"t": 4, "l": 2}),
    lambda: d.VarOp("persistent", "A", TensorType("f32", ["B"]), indices=["i", "j"], auto_dim=["i"], fixed={"i": 8}),
    lambda: d.VarOp("persistent", "t", TensorType("i32"), init=d.init_attr(-3, "i32")),
    lambda: d.VarOp("persistent", "u", TensorType("u64"), init=d.init_attr(2**64 - 1, "u64")),
    lambda: d.VarOp("persistent", "n", TensorType("i64"), init=d.init_attr(-(2**63), "i64")),
    lambda: d.VarOp("persistent", "f", TensorType("f32"), init=d.init_attr(-0.0, "f32")),
    lambda: d.VarOp("persistent", "f2", TensorType("f64"), init=d.init_attr(1e-300, "f64")),
    lambda: d.VarOp("persistent", "f3", TensorType("bf16"), init=d.init_attr(12345678.5, "bf16")),
    lambda: d.VarOp("persistent", "b", TensorType("bool"), init=d.init_attr(False, "bool")),
    lambda: d.VarOp("persistent", "b2", TensorType("bool"), init=d.init_attr(1, "bool")),
    lambda: d.VarOp("constant", "W", TensorType("bf16", ["D", "D"]), indices=["l"], pattern='w.{l}."q"\\\n\t'),
    lambda: d.VarOp("constant", "R", TensorType("i4", []), ref="model.r"),
    lambda: d.VarOp("dynamic", "x", TensorType("u4", [1])),
    lambda: d.VarOp("volatile", "v", TensorType("f8", ["B", DimAttr("S", "H")])),
]


@pytest.mark.parametrize("make", DECLS, ids=range(len(DECLS)))
def test_var_round_trip(make) -> None:
    var = make()
    module = ModuleOp([d.GraphOp("g", Region(Block([var])))])
    module.verify()
    assert_round_trips(module)


def test_var_printing() -> None:
    module = ModuleOp([d.GraphOp("g", Region(Block([f() for f in DECLS])))])
    lines = [line.strip() for line in printed(module).splitlines()[2:-2]]
    assert lines == [
        "oi.var persistent @K(l, t) : f16[H, 2*D, 4] @table @fixed(t = 4, l = 2)",
        "oi.var persistent @A(i, j) : f32[B] @auto_dim(i) @fixed(i = 8)",
        "oi.var persistent @t : i32 @init(-3)",
        "oi.var persistent @u : u64 @init(18446744073709551615)",
        "oi.var persistent @n : i64 @init(-9223372036854775808)",
        "oi.var persistent @f : f32 @init(-0.0)",
        "oi.var persistent @f2 : f64 @init(1.0e-300)",
        "oi.var persistent @f3 : bf16 @init(12345678.5)",
        "oi.var persistent @b : bool @init(false)",
        "oi.var persistent @b2 : bool @init(true)",
        'oi.var constant @W(l) : bf16[D, D] @pattern("w.{l}.\\22q\\22\\\\\\0A\\09")',
        'oi.var constant @R : i4 @ref("model.r")',
        "oi.var dynamic @x : u4[1]",
        "oi.var volatile @v : f8[B, S*H]",
    ]


def test_var_views() -> None:
    k = DECLS[0]()
    assert (k.var_name, k.memory, k.dtype, k.index_names, k.fixed_sizes) == ("K", "persistent", "f16", ["l", "t"], {"t": 4, "l": 2})
    assert k.var_type.dim_texts == ["H", "2*D", "4"] and not k.var_type.is_scalar
    assert DECLS[2]().init_value == -3 and DECLS[3]().init_value == 2**64 - 1
    assert DECLS[8]().init_value is False and DECLS[9]().init_value is True
    assert DECLS[11]().var_type.is_scalar and DECLS[1]().auto_dim_names == ["i"]


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_every_dtype_round_trips(dtype: str) -> None:
    module = ModuleOp([d.GraphOp("g", Region(Block([d.VarOp("dynamic", "x", TensorType(dtype, [2, "N"]))])))])
    assert f"oi.var dynamic @x : {dtype}[2, N]" in printed(module)
    assert_round_trips(module)
    assert TensorType(dtype).element_type == dtype_type(dtype)


SETTINGS = {
    "alpha": FloatAttr(0.5, f64),
    "beta": FloatAttr(-math.inf, f64),
    "gamma": FloatAttr(math.inf, f64),
    "tiny": FloatAttr(1e-7, f64),
    "whole": FloatAttr(3.0, f64),
    "n": IntegerAttr(-7, i64),
    "big": IntegerAttr(2**62, i64),
    "flag": BoolAttr.from_bool(True),
    "off": BoolAttr.from_bool(False),
    "s": StringAttr('he said "hi"\n\tand \\ left'),
    "empty_s": StringAttr(""),
    "v": SymbolRefAttr("someid"),
    "axes": DenseArrayBase.from_list(i64, [-1, 2]),
    "e": DenseArrayBase.from_list(i64, []),
    "to": dtype_type("f16"),
    "acc": ArrayAttr([dtype_type("i32"), dtype_type("u8")]),
}


def test_named_op_round_trip() -> None:
    op = d.NamedOp("matmul", [VarRefAttr("x"), VarRefAttr("W", ["l", 0]), "plain"], "y", SETTINGS)
    module = module_of(op)
    assert_round_trips(module)
    (again,) = body_of(oi.parse_mlir(printed(module)))
    assert dict(again.settings.data) == SETTINGS
    assert list(again.settings.data) == list(SETTINGS)  # order kept


def test_named_op_printing() -> None:
    op = d.NamedOp("add", ["x", VarRefAttr("W", ["l", 2])], "y", {"alpha": FloatAttr(0.5, f64), "axes": DenseArrayBase.from_list(i64, [1])})
    assert printed(module_of(op)).splitlines()[3].strip() == "oi.op add(@x, @W[l, 2], alpha = 0.5, axes = [1]) -> @y"
    assert printed(module_of(d.NamedOp("zeros", [], "y"))).splitlines()[3].strip() == "oi.op zeros() -> @y"


STATEMENTS = [
    lambda: d.AssignOp("tmp", TensorType("f8", ["B", 3])),
    lambda: d.CacheReadOp(CacheAccessAttr("K", [0, SliceAttr(), SliceAttr(2, None), SliceAttr(None, -3), SliceAttr("a", "b"), "t"]),
                          VarRefAttr("hist")),
    lambda: d.CacheReadOp(CacheAccessAttr("K", [], bracketed=True), "y"),
    lambda: d.CacheReadOp(CacheAccessAttr("K", [], bracketed=False), "y"),
    lambda: d.CacheReadOp(CacheAccessAttr("K", ["l"]), VarRefAttr("W", [0, "l"])),
    lambda: d.CacheWriteOp(VarRefAttr("y"), CacheAccessAttr("K", ["l", "t"])),
    lambda: d.CacheWriteOp("y", CacheAccessAttr("K")),
    lambda: d.CacheIncrementOp("t"),
    lambda: d.CacheIncrementOp("t", 5),
    lambda: d.CacheDecrementOp("t", 0),
    lambda: d.CacheDecrementOp("t"),
    lambda: d.CacheResetOp(CacheAccessAttr("K", [1, SliceAttr(0, "n")])),
    lambda: d.CacheResetOp(CacheAccessAttr("s")),
    lambda: d.BranchOp("a"),
    lambda: d.BranchOp("a", cond="c", else_block="b"),
    lambda: d.BarrierOp(),
    lambda: d.DepOp("x", "y"),
    lambda: d.TransferOp("a", VarRefAttr("b", [1])),
    lambda: d.LoopOp("layers", "l", 0, "L", Region(Block([d.ReturnOp()]))),
    lambda: d.LoopOp("outer", "i", "a", 3, Region(Block([d.LoopOp("inner", "j", "i", "n", Region(Block([d.BarrierOp()])))]))),
    lambda: d.LoopOp("empty", "i", 0, 0),
    lambda: d.YieldOp(["a", "b"]),
    lambda: d.AwaitOp(["a"]),
    lambda: d.ReturnOp(),
]

PRINTED = [
    "oi.assign @tmp : f8[B, 3]",
    "oi.cache.read @K[0, :, 2:, :-3, a:b, t] -> @hist",
    "oi.cache.read @K[] -> @y",
    "oi.cache.read @K -> @y",
    "oi.cache.read @K[l] -> @W[0, l]",
    "oi.cache.write @y -> @K[l, t]",
    "oi.cache.write @y -> @K",
    "oi.cache.increment 1 @t",
    "oi.cache.increment 5 @t",
    "oi.cache.decrement 0 @t",
    "oi.cache.decrement 1 @t",
    "oi.cache.reset @K[1, 0:n]",
    "oi.cache.reset @s",
    "oi.branch @a",
    "oi.branch @c, @a, @b",
    "oi.barrier",
    "oi.dep after(@x) before(@y)",
    "oi.transfer @a -> @b[1]",
    "oi.loop layers (l in 0 to L) {",
    "oi.loop outer (i in a to 3) {",
    "oi.loop empty (i in 0 to 0) {",
    "oi.yield @a, @b",
    "oi.await @a",
    "oi.return",
]


@pytest.mark.parametrize(("make", "text"), list(zip(STATEMENTS, PRINTED)), ids=PRINTED)
def test_statement_round_trip(make, text: str) -> None:
    module = module_of(make())
    module.verify()
    assert printed(module).splitlines()[3].strip() == text
    assert_round_trips(module)


def test_all_statements_in_one_module_round_trip() -> None:
    module = module_of(*(make() for make in STATEMENTS), decls=[f() for f in DECLS])
    assert_round_trips(module)


def test_dsl_and_python_built_ir_are_equal() -> None:
    parsed = oi.parse_graph(
        "persistent { K(l, t): f16[H, 2*D, 4] @table @fixed(t = 4, l = 2); }\n"
        "block entry { cache.read K[0, .., 2.., ..-3, a..b, t] >> hist; cache.increment 5 t; return; }",
        "g.oi",
        verify=False,
    )
    built = module_of(STATEMENTS[1](), STATEMENTS[8](), STATEMENTS[-1](), decls=[DECLS[0]()])
    assert printed(parsed.module) == printed(built)


def test_yield_needs_a_variable() -> None:
    with pytest.raises(oi.VerifyError) as info:
        oi.verify_module(module_of(d.YieldOp([])))
    assert "yield expects at least one variable" in info.value.message


def test_custom_form_parse_errors_are_located() -> None:
    text = "builtin.module {\n  oi.graph @g {\n    oi.var nowhere @x : f32\n  }\n}\n"
    with pytest.raises(oi.ParseError) as info:
        oi.parse_mlir(text, "p.mlir")
    assert (info.value.loc.line, info.value.loc.column) == (3, 12)
    assert "expected one of dynamic, volatile, constant, persistent" in info.value.message
    text = "builtin.module {\n  oi.graph @g {\n    oi.var dynamic @x : f33\n  }\n}\n"
    with pytest.raises(oi.ParseError) as info:
        oi.parse_mlir(text, "p.mlir")
    assert (info.value.loc.line, info.value.loc.column) == (3, 25)
    assert "unsupported dtype f33" in info.value.message


# --- describe: upstream's describe_node ------------------------------------------------------------------

DESCRIBED = [
    ("assign t0: f32[B];", "assign t0"),
    ("op add(x, w, alpha=0.5) >> t0;", "op add(x,w) >> t0"),
    ("op matmul(x, W[l, 0]) >> y;", "op matmul(x,W[l,0]) >> y"),
    ("op zeros() >> y;", "op zeros() >> y"),
    ("cache.read A[i, 0..3] >> x;", "cache.read A[i,0..3] >> x"),
    ("cache.read A[1, .., 2.., ..3, 4..5, ..-2] >> x;", "cache.read A[1,,2..,..3,4..5,..-2] >> x"),
    ("cache.read A >> x;", "cache.read A >> x"),
    ("cache.read A[] >> x;", "cache.read A[] >> x"),
    ("cache.write x >> A[l, t];", "cache.write x >> A[l,t]"),
    ("cache.write W[0] >> A;", "cache.write W[0] >> A"),
    ("cache.increment t;", "cache.increment t"),
    ("cache.increment 5 t;", "cache.increment 5 t"),
    ("cache.decrement t;", "cache.decrement t"),
    ("cache.decrement 2 t;", "cache.decrement 2 t"),
    ("cache.reset A[0, 1];", "cache.reset A[0,1]"),
    ("cache.reset s;", "cache.reset s"),
    ("branch c a b;", "branch c a b"),
    ("branch t;", "branch t"),
    ("loop n (i in a..b) { return; }", "loop n (i in a..b)"),
    ("loop layers (l in 0..4) { }", "loop layers (l in 0..4)"),
    ("yield a, b;", "yield a, b"),
    ("yield a;", "yield a"),
    ("await a, b;", "await a, b"),
    ("dep after(x) before(y);", "dep after(x) before(y)"),
    ("transfer a >> b;", "transfer a >> b"),
    ("transfer W[0, l] >> b;", "transfer W[0,l] >> b"),
    ("barrier;", "barrier"),
    ("return;", "return"),
]


@pytest.mark.parametrize(("stmt", "text"), DESCRIBED, ids=[t for _, t in DESCRIBED])
def test_describe(stmt: str, text: str) -> None:
    graph = oi.parse_graph(f"block entry {{ {stmt} }}", "d.oi", verify=False)
    (op,) = graph.blocks["entry"].body.block.ops
    assert d.describe(op) == text


def test_describe_python_built_ops() -> None:
    assert d.describe(d.CacheIncrementOp("t", 1)) == "cache.increment t"
    assert d.describe(d.CacheIncrementOp("t", 5)) == "cache.increment 5 t"
    assert d.describe(d.AssignOp("t", TensorType("f32"))) == "assign t"
    assert d.describe(d.LoopOp("n", "i", "a", "b")) == "loop n (i in a..b)"
    assert d.describe(d.BranchOp("a", cond="c", else_block="b")) == "branch c a b"


# --- memory effects: generic passes keep stateful ops ---------------------------------------------------------

EFFECTS_GRAPH = """\
dynamic { x: f32[4]; c: bool; }
volatile { y: f32[4]; z: f32[4]; }
persistent { t: i32 @init(0); K(p): f32[4] @table; s: f32[4]; }
block entry {
  assign tmp: f32[4];
  op add(x, x) >> y;
  op add(x, x) >> y;
  op add(x, x) >> y;
  cache.write y >> K[t];
  cache.write y >> K[t];
  cache.increment t;
  cache.increment t;
  cache.decrement t;
  cache.decrement t;
  cache.read K[0..t] >> z;
  cache.read K[0..t] >> z;
  cache.reset K[0];
  cache.reset K[0];
  cache.reset s;
  cache.reset s;
  barrier;
  barrier;
  dep after(x) before(y);
  dep after(x) before(y);
  transfer y >> z;
  transfer y >> z;
  loop l (i in 0..2) { op add(x, x) >> y; op add(x, x) >> y; cache.write y >> K[i]; barrier; }
  branch c a b;
  branch c a b;
  return;
}
block a { cache.increment t; cache.increment t; return; }
block b { yield y; yield y; }
"""


def op_counts(module) -> Counter:
    return Counter(op.name for op in module.walk())


@pytest.mark.parametrize("pipeline", ["canonicalize", "cse", "dce", "canonicalize,cse,dce", "dce,cse,canonicalize,cse,dce"])
def test_generic_passes_keep_stateful_ops(pipeline: str) -> None:
    graph = oi.parse_graph(EFFECTS_GRAPH, "e.oi")
    before = op_counts(graph.module)
    assert before["oi.op"] == 5 and before["oi.cache.write"] == 3 and before["oi.barrier"] == 3
    text = str(graph)
    oi.run_passes(graph.module, pipeline)
    assert op_counts(graph.module) == before
    assert str(graph) == text  # nothing moved either
    graph.verify()


def test_effect_traits() -> None:
    from xdsl.traits import MemoryReadEffect, MemoryWriteEffect

    for cls in (d.NamedOp, d.CacheReadOp, d.CacheWriteOp, d.CacheIncrementOp, d.CacheDecrementOp, d.TransferOp,
                d.YieldOp, d.AwaitOp, d.BarrierOp, d.DepOp):
        assert cls.has_trait(MemoryWriteEffect), cls.name
    for cls in (d.CacheResetOp, d.AssignOp):
        assert cls.has_trait(MemoryWriteEffect), cls.name
    for cls in (d.BarrierOp, d.DepOp):
        assert cls.has_trait(MemoryReadEffect), cls.name


@pytest.mark.parametrize("pipeline", ["canonicalize", "cse", "dce", "canonicalize,cse,dce"])
def test_empty_blocks_and_loops_survive_passes(pipeline: str) -> None:
    graph = oi.parse_graph(
        "dynamic { c: bool; }\nblock entry { loop l (i in 0..4) { } loop m (j in 0..0) { } branch c a b; return; }\n"
        "block a { }\nblock b { loop n (k in 0..2) { loop o (q in 0..2) { } } }\n",
        "e.oi",
    )
    before = op_counts(graph.module)
    assert before["oi.loop"] == 4 and before["oi.block"] == 3
    oi.run_passes(graph.module, pipeline)
    assert op_counts(graph.module) == before
    assert list(graph.blocks) == ["entry", "a", "b"]


def test_python_built_duplicates_survive_passes() -> None:
    stmts = [d.NamedOp("add", ["x", "x"], "y"), d.NamedOp("add", ["x", "x"], "y"),
             d.CacheWriteOp("y", CacheAccessAttr("K", ["t"])), d.CacheWriteOp("y", CacheAccessAttr("K", ["t"])),
             d.CacheIncrementOp("t"), d.CacheIncrementOp("t"), d.CacheResetOp(CacheAccessAttr("K", [0])),
             d.CacheResetOp(CacheAccessAttr("K", [0])), d.BarrierOp(), d.BarrierOp(), d.ReturnOp()]
    module = module_of(*stmts)
    before = op_counts(module)
    oi.run_passes(module, "canonicalize,cse,dce")
    assert op_counts(module) == before


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
def test_non_ascii_strings_round_trip(generic: bool) -> None:
    module = module_of(
        d.NamedOp("f", ["x"], "y", {"s": StringAttr("日本")}),
        decls=[d.VarOp("constant", "W", TensorType("f32"), indices=["l"], pattern="wé.{l}")],
    )
    again = oi.parse_mlir(printed(module, generic), "u.mlir")
    assert printed(again) == printed(module)
