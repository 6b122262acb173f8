"""Every op of the `oi` dialect round-trips through its custom syntax with discardable attributes
attached (the `attr-dict` a pass relies on), and through the generic form."""

from __future__ import annotations

import io

import pytest
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, StringAttr, UnitAttr, i64
from xdsl.printer import Printer

from oi_compiler.dialects.oi import OI
from oi_compiler.errors import ParseError
from oi_compiler.graph import parse_mlir

# Modules that hold at least one instance of every op of the dialect, in the forms each op takes.
SAMPLES = [
    """
oi.graph @g {
  oi.var dynamic @x : f32[D]
  oi.var constant @W(l) : f32[D] @pattern("w.{l}")
  oi.var volatile @c : bool
  oi.var volatile @y : f32[D]
  oi.var persistent @t : i32 @init(0)
  oi.var persistent @K(l, pos) : f32[D] @table @fixed(pos = 8)
  oi.var persistent @P : f32[D] @auto_dim(pos)
  oi.block @entry {
    oi.assign @tmp : f32[D]
    oi.op add(@x, @W[0]) -> @y
    oi.op relu(@x, alpha = 0.5, clamp_max = inf) -> @y
    oi.cache.write @y -> @K[0, t]
    oi.cache.read @K[0, 0:t] -> @y
    oi.cache.read @P -> @y
    oi.cache.increment 2 @t
    oi.cache.decrement 1 @t
    oi.cache.reset @K[]
    oi.cache.reset @t
    oi.cache.append @y -> @K[@t]
    oi.cache.append skip @y -> @K[@t]
    oi.cache.save @y -> @P
    oi.cache.load @P -> @y
    oi.cache.fork @K, @P [@y] 0 -> t at 2
    oi.cache.pop 2 @K [@y] t
    oi.cache.reset_where @K, @P [@y] where @c
    oi.branch @c, @other, @other
    oi.branch @other
    oi.barrier
    oi.dep after(@other) before(@entry)
    oi.transfer @y -> @tmp
    oi.loop layers (l in 0 to 2) {
      oi.op add(@x, @W[l]) -> @y
    }
    oi.loop empty (e in 0 to 0) {
    }
    oi.yield @y
    oi.await @y, @tmp
    oi.return
  }
  oi.block @other {
  }
}
""",
    """
oi.graph @k {
  oi.var volatile @q : f32[2, 8]
  oi.var persistent @pos : i32 @init(0)
  oi.block @entry {
    oi.kernel add(@q, @q) -> @q <{nest_key = "add-2x8"}> {
    ^bb0(%a: memref<2x8xf32>, %b: memref<2x8xf32>, %c: memref<2x8xf32>):
    }
    oi.kernel rope(@q, position = @pos, theta = 10000.0) -> @q <{runtime_settings = ["position"]}> {
    ^bb0(%a: memref<2x8xf32>, %b: memref<2x8xf32>, %p: i32):
    }
    oi.kernel add(@q, @q) -> @q <{static_error = "no", settings = {n = 3 : i32}}> {
    }
  }
}
""",
    """
func.func @step(%s: memref<?xi64>, %slot: index, %n: index, %code: i32, %A: memref<4x8xf32>) {
  %a = oi.state_view %s[%slot] : memref<?xi64> -> memref<4xf32>
  %b = oi.state_view %s[%slot] (%n) : memref<?xi64> -> memref<?x4xf32>
  oi.step_exit %code : i32
  oi.nest domain(i = 4, j = 8) arrays(input_output "A 1" = %A : memref<4x8xf32>) {
  ^bb0(%i: index, %j: index):
    %v = memref.load %A[%i, %j] : memref<4x8xf32>
    memref.store %v, %A[%i, %j] : memref<4x8xf32>
  } {oi.schedule = {splits = [["i", "ii", 2]]}}
  oi.nest domain(i = 4) arrays(input_output A = %A : memref<4x8xf32>) {
  } {oi.scheduled}
  func.return
}
""",
]

ATTRS = {"test.attr": IntegerAttr(7, i64), "test.unit": UnitAttr(), "test.list": ArrayAttr([StringAttr("a")])}
OP_NAMES = sorted(op.name for op in OI.operations)


def printed(module, generic: bool = False) -> str:
    buf = io.StringIO()
    Printer(stream=buf, print_generic_format=generic).print_op(module)
    return buf.getvalue()


def ops_named(module, name: str) -> list:
    return [op for op in module.walk() if op.name == name]


def test_the_samples_hold_every_op_of_the_dialect() -> None:
    found = {op.name for text in SAMPLES for op in parse_mlir(text).walk()}
    assert set(OP_NAMES) <= found, sorted(set(OP_NAMES) - found)


def test_every_op_prints_in_a_custom_form() -> None:
    for text in SAMPLES:
        assert '"oi.' not in printed(parse_mlir(text)), "an oi op printed in the generic form"


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("name", OP_NAMES)
def test_attached_attributes_round_trip(name: str, generic: bool) -> None:
    checked = 0
    for text in SAMPLES:
        module = parse_mlir(text)
        targets = ops_named(module, name)
        if not targets:
            continue
        for op in targets:
            op.attributes.update(ATTRS)
        first = printed(module, generic)
        if not generic:
            assert first.count("test.attr = 7 : i64, test.unit, test.list = [\"a\"]}") == len(targets), first
        again = parse_mlir(first)
        assert again.is_structurally_equivalent(module), first
        for op, back in zip(targets, ops_named(again, name), strict=True):
            assert dict(back.attributes) == dict(op.attributes) == {**dict(op.attributes), **ATTRS}
            assert dict(back.properties) == dict(op.properties)
        assert printed(again, generic) == first
        assert printed(again) == printed(module)
        checked += len(targets)
    assert checked, f"no sample of {name}"


@pytest.mark.parametrize("name", OP_NAMES)
def test_no_attributes_no_attr_dict(name: str) -> None:
    for text in SAMPLES:
        module = parse_mlir(text)
        for op in ops_named(module, name):
            op.attributes.clear()
        out = printed(module)
        assert "{}" not in out
        assert printed(parse_mlir(out)) == out


@pytest.mark.parametrize(
    "text",
    [
        "oi.graph @g {\n oi.var persistent @t : i32\n oi.block @entry {\n  oi.cache.increment 1 @t {amount = 2}\n }\n}",
        "oi.graph @g {\n oi.var volatile @y : f32\n oi.block @entry {\n  oi.yield @y {vars = 1}\n }\n}",
        "oi.graph @g {\n oi.block @entry {\n }\n} {sym_name = \"h\"}",
    ],
)
def test_an_attr_dict_may_not_restate_a_property(text: str) -> None:
    with pytest.raises(ParseError, match="already passed through the operation custom assembly format"):
        parse_mlir(text)
