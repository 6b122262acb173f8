"""The `.oi` front end: the lexer (Rust tokens), the parser (ops and attributes per statement kind) and
every ParseError with its exact line:col."""

from __future__ import annotations

import math

import pytest
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    FileLineColLoc,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    SymbolRefAttr,
)

import oi_compiler as oi
from oi_compiler.dialects import oi as d
from oi_compiler.dialects.oi_attrs import CacheAccessAttr, SliceAttr, VarRefAttr
from oi_compiler.dtypes import INT_RANGES, dtype_type
from oi_compiler.errors import ParseError
from oi_compiler.frontend.oi_dsl import parse_module
from oi_compiler.frontend.oi_lexer import EOF, FLOAT, IDENT, INT, PUNCT, STRING, Lexer


def toks(text: str) -> list[tuple[str, object]]:
    """(kind, value-or-text) of every token but the final EOF."""
    out = Lexer(text).tokens()
    assert out[-1].kind == EOF
    return [(t.kind, t.value if t.kind in (INT, FLOAT, STRING) else t.text) for t in out[:-1]]


def lex_error(text: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        Lexer(text, "l.oi").tokens()
    return info.value


def graph_of(text: str, filename: str = "t.oi") -> d.GraphOp:
    return parse_module(text, filename).body.block.ops.first


def entry_ops(body: str) -> list:
    """The top-level statement ops of `block entry { body }`."""
    graph = graph_of(f"block entry {{\n{body}\n}}")
    return list(graph.blocks[0].body.block.ops)


def one(stmt: str):
    ops = entry_ops(stmt)
    assert len(ops) == 1, ops
    return ops[0]


def where(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first occurrence of `needle` in `text`."""
    offset = text.index(needle)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


# --- lexer -----------------------------------------------------------------------------------


def test_range_is_int_dotdot_int() -> None:
    assert toks("0..3") == [(INT, 0), (PUNCT, ".."), (INT, 3)]
    assert toks("2..") == [(INT, 2), (PUNCT, "..")]
    assert toks("..3") == [(PUNCT, ".."), (INT, 3)]
    assert toks("0..-3") == [(INT, 0), (PUNCT, ".."), (PUNCT, "-"), (INT, 3)]
    assert toks("0.5..1") == [(FLOAT, 0.5), (PUNCT, ".."), (INT, 1)]


@pytest.mark.parametrize(
    ("text", "value"),
    [("1.5e-3", 1.5e-3), ("1e5", 1e5), ("2.", 2.0), ("2.5E+2", 250.0), ("0.0", 0.0), ("1_0.2_5", 10.25), ("3e0", 3.0)],
)
def test_float_literals(text: str, value: float) -> None:
    out = Lexer(text).tokens()
    assert [(t.kind, t.text) for t in out[:-1]] == [(FLOAT, text)]
    assert out[0].value == value and isinstance(out[0].value, float)


def test_int_literals() -> None:
    assert toks("0 7 1_000 18446744073709551616") == [(INT, 0), (INT, 7), (INT, 1000), (INT, 2**64)]
    assert all(isinstance(v, int) for _, v in toks("12 1_2"))


def test_dot_after_int_before_identifier_is_not_a_float() -> None:
    # Rust: `1.foo` and `1.e3` are field accesses, `x.y` is a path-ish dot.
    assert toks("1.foo") == [(INT, 1), (PUNCT, "."), (IDENT, "foo")]
    assert toks("1.e3") == [(INT, 1), (PUNCT, "."), (IDENT, "e3")]
    assert toks("cache.read") == [(IDENT, "cache"), (PUNCT, "."), (IDENT, "read")]


def test_two_char_punctuation() -> None:
    assert toks(">> .. -> => :: > . -") == [
        (PUNCT, ">>"), (PUNCT, ".."), (PUNCT, "->"), (PUNCT, "=>"), (PUNCT, "::"), (PUNCT, ">"), (PUNCT, "."),
        (PUNCT, "-"),
    ]  # fmt: skip
    assert toks("a>>b") == [(IDENT, "a"), (PUNCT, ">>"), (IDENT, "b")]


def test_identifiers() -> None:
    assert toks("_x x_1 graph A9") == [(IDENT, "_x"), (IDENT, "x_1"), (IDENT, "graph"), (IDENT, "A9")]


def test_comments() -> None:
    assert toks("a // b c\nd") == [(IDENT, "a"), (IDENT, "d")]
    assert toks("a /* b */ c") == [(IDENT, "a"), (IDENT, "c")]
    assert toks("a /* /* */ */ c") == [(IDENT, "a"), (IDENT, "c")]
    assert toks("a /* x /* y /* z */ */ still comment */ c") == [(IDENT, "a"), (IDENT, "c")]
    assert toks("a /* // not a line comment */ c") == [(IDENT, "a"), (IDENT, "c")]
    assert toks("a // /* not a block comment\nc") == [(IDENT, "a"), (IDENT, "c")]
    assert toks("// only a comment") == []
    assert toks("/**/x") == [(IDENT, "x")]


def test_unterminated_nested_comment() -> None:
    err = lex_error("x\n  /* a /* b */ c")
    assert err.message == "unterminated block comment"
    assert (err.loc.filename, err.loc.line, err.loc.column) == ("l.oi", 2, 3)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'"plain"', "plain"),
        (r'"a\nb"', "a\nb"),
        (r'"t\tr\r"', "t\tr\r"),
        (r'"nul\0"', "nul\0"),
        (r'"back\\slash"', "back\\slash"),
        (r'"q\"q"', 'q"q'),
        (r'"s\'s"', "s's"),
        ('"multi\nline"', "multi\nline"),
        ('""', ""),
        ('"a {l} // not a comment /* */"', "a {l} // not a comment /* */"),
    ],
)
def test_string_escapes(text: str, value: str) -> None:
    out = Lexer(text).tokens()
    assert [(t.kind, t.value, t.text) for t in out[:-1]] == [(STRING, value, text)]


@pytest.mark.parametrize(("text", "value"), [(r'"\x41"', "A"), (r'"\u{e9}"', "é"), ('"a\\\n    b"', "ab")])
def test_rust_string_escapes_beyond_the_simple_ones(text: str, value: str) -> None:
    assert toks(text) == [(STRING, value)]


def test_rust_radix_integer_literals() -> None:
    assert toks("0x1F 0o17 0b101") == [(INT, 31), (INT, 15), (INT, 5)]


def test_line_and_column_across_lines() -> None:
    text = "a bb\n  ccc /* x\n y */ d\n\n\t\"s\ntr\" e\r\nf"
    out = Lexer(text, "f.oi").tokens()
    got = [(t.text, t.line, t.column) for t in out]
    assert got == [
        ("a", 1, 1), ("bb", 1, 3),
        ("ccc", 2, 3),
        ("d", 3, 7),
        ('"s\ntr"', 5, 2), ("e", 6, 5),
        ("f", 7, 1),
        ("", 7, 2),
    ]  # fmt: skip
    assert [t.offset for t in out] == [text.index(t.text) if t.text else len(text) for t in out]


def test_eof_token_location() -> None:
    out = Lexer("x\n").tokens()
    assert (out[-1].kind, out[-1].line, out[-1].column) == (EOF, 2, 1)
    out = Lexer("").tokens()
    assert [(t.kind, t.line, t.column) for t in out] == [(EOF, 1, 1)]


@pytest.mark.parametrize(
    ("text", "message", "needle"),
    [
        ("a $ b", "unexpected character `$`", "$"),
        ("x\n  'c'", "unexpected character `'`", "'"),
        ("op(k=1abc)", "unsupported literal suffix", "abc"),
        ("1.5f32", "unsupported literal suffix", "f32"),
        ('x\n "ab\\qc"', "unknown character escape", "\\q"),
        ('a "never closed', "unterminated string literal", '"'),
        ("a /* x", "unterminated block comment", "/*"),
    ],
)
def test_lexer_errors(text: str, message: str, needle: str) -> None:
    err = lex_error(text)
    assert err.message == message
    assert (err.loc.line, err.loc.column) == where(text, needle)
    assert str(err) == f"l.oi:{err.loc.line}:{err.loc.column}: error: {message}"


@pytest.mark.parametrize(
    ("text", "char"),
    [
        ("block entry { é; }", "é"),
        ("block entry { return; } ²", "²"),
        ("persistent { t:²i32; }", "²"),
        ("dynamic { xé: f32; }", "é"),
        ("dynamic { x: f32[٣]; }", "٣"),
    ],
)
def test_non_ascii_characters_give_a_parse_error(text: str, char: str) -> None:
    with pytest.raises(ParseError) as info:
        oi.parse_graph(text, "u.oi", verify=False)
    assert info.value.message == f"unexpected character `{char}`"
    assert (info.value.loc.line, info.value.loc.column) == where(text, char)


# --- parser: statements ------------------------------------------------------------------------


def test_upstream_cache_read_indices() -> None:
    op = one("cache.read table[1, .., 2.., ..3, 4..5] >> out;")
    assert isinstance(op, d.CacheReadOp)
    src = op.src
    assert src.var_name == "table" and src.is_bracketed
    assert list(src.indices) == [IntAttr(1), SliceAttr(None, None), SliceAttr(2, None), SliceAttr(None, 3), SliceAttr(4, 5)]
    assert [i.bounds if isinstance(i, SliceAttr) else i.data for i in src.indices] == [
        1, (None, None), (2, None), (None, 3), (4, 5)
    ]
    assert op.dst == VarRefAttr("out")


def test_empty_index_slots_are_full_slices() -> None:
    read = one("cache.read K[, 1,] >> out;")
    assert [i.bounds if isinstance(i, SliceAttr) else i.data for i in read.src.indices] == [(None, None), 1, (None, None)]
    assert one("cache.read K[1,] >> out;").src == CacheAccessAttr("K", [1, SliceAttr()])
    assert one("cache.read K[,] >> out;").src == CacheAccessAttr("K", [SliceAttr(), SliceAttr()])
    assert one("cache.reset K[0,,1];").target == CacheAccessAttr("K", [0, SliceAttr(), 1])


def test_unbracketed_and_empty_bracketed_access_differ() -> None:
    bare = one("cache.read A >> x;").src
    empty = one("cache.read A[] >> x;").src
    assert (bare.var_name, list(bare.indices), bare.is_bracketed) == ("A", [], False)
    assert (empty.var_name, list(empty.indices), empty.is_bracketed) == ("A", [], True)
    assert bare != empty
    assert one("cache.reset A;").target == bare
    assert one("cache.reset A[];").target == empty
    assert one("cache.write x >> A;").dst == bare
    assert one("cache.write x >> A[];").dst == empty


def test_cache_index_values() -> None:
    src = one("cache.read K[l, -2, t.., ..-1, a..b, 0..-3] >> x;").src
    assert list(src.indices) == list(
        CacheAccessAttr("K", ["l", -2, SliceAttr("t", None), SliceAttr(None, -1), SliceAttr("a", "b"), SliceAttr(0, -3)]).indices
    )


def test_cache_write() -> None:
    op = one("cache.write W[l, 2] >> K[l, t];")
    assert isinstance(op, d.CacheWriteOp)
    assert op.src == VarRefAttr("W", ["l", 2])
    assert op.dst == CacheAccessAttr("K", ["l", "t"])


def test_cache_increment_decrement_amounts() -> None:
    inc, inc2, dec, dec0 = entry_ops("cache.increment t; cache.increment 2 t; cache.decrement t; cache.decrement 0 s;")
    assert isinstance(inc, d.CacheIncrementOp) and isinstance(dec, d.CacheDecrementOp)
    assert [(o.target.data, o.amount.data) for o in (inc, inc2, dec, dec0)] == [("t", 1), ("t", 2), ("t", 1), ("s", 0)]


def test_assign() -> None:
    op = one("assign t0: f32[B, 3*D, 2];")
    assert isinstance(op, d.AssignOp)
    assert op.var_name == "t0" and op.var_type.dtype == "f32" and op.var_type.dim_texts == ["B", "3*D", "2"]
    scalar = one("assign s: i8;")
    assert scalar.var_type.is_scalar and scalar.var_type.dtype == "i8"
    assert one("assign s: i8[];").var_type.is_scalar


def test_op_inputs_and_output() -> None:
    op = one("op matmul(x, W[l, 0],) >> y;")
    assert isinstance(op, d.NamedOp)
    assert op.kind == "matmul" and op.output_name == "y"
    assert list(op.inputs) == [VarRefAttr("x"), VarRefAttr("W", ["l", 0])]
    assert dict(op.settings.data) == {}
    empty = one("op zeros() >> y;")
    assert list(empty.inputs) == [] and empty.output_name == "y"


def setting(text: str):
    op = one(f"op f(x, k={text}) >> y;")
    return op.settings.data["k"]


def test_setting_kinds() -> None:
    assert setting("0.5") == FloatAttr(0.5, 64)
    assert setting("-2.5") == FloatAttr(-2.5, 64)
    assert setting("1e-3") == FloatAttr(1e-3, 64)
    assert setting("3") == IntegerAttr(3, 64)
    assert setting("-1") == IntegerAttr(-1, 64)
    t, f = setting("true"), setting("false")
    assert t.type == IntegerType(1) and f.type == IntegerType(1)
    assert bool(t.value.data) is True and bool(f.value.data) is False
    assert setting('"relu"') == StringAttr("relu")
    assert setting(r'"a\"b"') == StringAttr('a"b')
    inf = setting("inf")
    assert isinstance(inf, FloatAttr) and inf.value.data == math.inf
    assert setting("eps_var") == SymbolRefAttr("eps_var")
    ints = setting("[1, -2, 3,]")
    assert isinstance(ints, DenseArrayBase) and tuple(ints.get_values()) == (1, -2, 3)
    empty = setting("[]")
    assert isinstance(empty, DenseArrayBase) and tuple(empty.get_values()) == ()


def test_dtype_settings() -> None:
    op = one("op cast(x, to=f16, acc=[i32, i64]) >> y;")
    assert op.settings.data["to"] == dtype_type("f16")
    assert op.settings.data["acc"] == ArrayAttr([dtype_type("i32"), dtype_type("i64")])
    assert one("op f(x, acc=[bf16]) >> y;").settings.data["acc"] == ArrayAttr([dtype_type("bf16")])


def test_settings_keep_source_order() -> None:
    op = one("op add(x, w, alpha=0.5, clamp_max=6.0, axes=[1, 2], tag=\"relu\", flag=true) >> t0;")
    assert list(op.settings.data) == ["alpha", "clamp_max", "axes", "tag", "flag"]


def test_branch() -> None:
    plain, cond = entry_ops("branch other; branch c then_b else_b;")
    assert isinstance(plain, d.BranchOp)
    assert (plain.cond, plain.then_block.data, plain.else_block) == (None, "other", None)
    assert (cond.cond.data, cond.then_block.data, cond.else_block.data) == ("c", "then_b", "else_b")


def test_barrier_dep_transfer_return() -> None:
    barrier, dep, transfer, transfer_idx, ret = entry_ops(
        "barrier; dep after(block_a) before(block_b); transfer a >> b; transfer W[0, l] >> V[1]; return;"
    )
    assert isinstance(barrier, d.BarrierOp) and isinstance(ret, d.ReturnOp)
    assert (dep.after.data, dep.before.data) == ("block_a", "block_b")
    assert (transfer.src, transfer.dst) == (VarRefAttr("a"), VarRefAttr("b"))
    assert (transfer_idx.src, transfer_idx.dst) == (VarRefAttr("W", [0, "l"]), VarRefAttr("V", [1]))


def test_yield_await() -> None:
    y, a = entry_ops("yield a, b, c; await a;")
    assert isinstance(y, d.YieldOp) and isinstance(a, d.AwaitOp)
    assert y.var_names == ["a", "b", "c"] and a.var_names == ["a"]


def test_loops_nest() -> None:
    (outer,) = entry_ops("loop layers (l in 0..L) { op add(x, W[l]) >> x; loop heads (h in start..4) { return; } }")
    assert isinstance(outer, d.LoopOp)
    assert (outer.label.data, outer.index.data, outer.bounds) == ("layers", "l", (0, "L"))
    body = list(outer.body.block.ops)
    assert [type(o) for o in body] == [d.NamedOp, d.LoopOp]
    inner = body[1]
    assert (inner.label.data, inner.index.data, inner.bounds) == ("heads", "h", ("start", 4))
    assert [type(o) for o in inner.body.block.ops] == [d.ReturnOp]
    (empty,) = entry_ops("loop e (i in 0..0) { }")
    assert list(empty.body.block.ops) == []


# --- parser: declarations --------------------------------------------------------------------------


def test_declarations_in_every_section() -> None:
    graph = graph_of(
        "dynamic { x: f32[B, D]; }\nvolatile { v: i8; }\nconstant { W(l): bf16[D] @pattern(\"w.{l}\"); c: u8 @ref(\"m.c\"); "
        "r: u8 @ref(model_name); }\n"
        "persistent { K(l, t): f16[H, 2*D] @table @fixed(t = 4, l = 2,); A(i, j): f32[D] @auto_dim(i, j); "
        "s: i32 @init(-3); }\nblock entry { return; }"
    )
    decls = {op.var_name: op for op in graph.vars}
    assert [(op.var_name, op.memory) for op in graph.vars] == [
        ("x", "dynamic"), ("v", "volatile"), ("W", "constant"), ("c", "constant"), ("r", "constant"),
        ("K", "persistent"), ("A", "persistent"), ("s", "persistent"),
    ]  # fmt: skip
    assert decls["x"].var_type.dim_texts == ["B", "D"] and decls["v"].var_type.is_scalar
    assert decls["W"].index_names == ["l"] and decls["W"].pattern.data == "w.{l}"
    assert decls["c"].ref.data == "m.c" and decls["r"].ref.data == "model_name"
    k = decls["K"]
    assert k.index_names == ["l", "t"] and k.table is not None and k.fixed_sizes == {"t": 4, "l": 2}
    assert k.var_type.dtype == "f16" and k.var_type.dim_texts == ["H", "2*D"]
    assert decls["A"].auto_dim_names == ["i", "j"] and decls["A"].table is None
    assert decls["s"].init_value == -3
    assert [b.block_name for b in graph.blocks] == ["entry"]


def test_sections_and_blocks_interleave() -> None:
    graph = graph_of("block a { return; } dynamic { x: f32; } block entry { return; } dynamic { y: f32; }")
    assert [op.name for op in graph.body.block.ops] == ["oi.block", "oi.var", "oi.block", "oi.var"]


def init_of(dtype: str, literal: str):
    graph = graph_of(f"persistent {{ v: {dtype} @init({literal}); }}")
    return graph.vars[0].init_value


INT_DTYPES = [dt for dt in INT_RANGES if dt != "bool"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_init_integer_range_boundaries_accepted(dtype: str) -> None:
    lo, hi = INT_RANGES[dtype]
    assert init_of(dtype, str(lo)) == lo
    assert init_of(dtype, str(hi)) == hi
    assert init_of(dtype, "0") == 0


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_init_integer_one_past_rejected(dtype: str) -> None:
    lo, hi = INT_RANGES[dtype]
    for value in (lo - 1, hi + 1):
        text = f"persistent {{\n  v: {dtype} @init({value});\n}}"
        with pytest.raises(ParseError) as info:
            parse_module(text, "t.oi")
        err = info.value
        assert err.message == f"{dtype} init out of range"
        line, col = where(text, str(value))
        assert err.loc.line == line
        assert err.loc.column in (col, col + 1) if value < 0 else err.loc.column == col


def test_init_expected_ranges() -> None:
    assert INT_RANGES["i4"] == (-8, 7) and INT_RANGES["u4"] == (0, 15)
    assert INT_RANGES["i8"] == (-128, 127) and INT_RANGES["u8"] == (0, 255)
    assert INT_RANGES["i64"] == (-(2**63), 2**63 - 1) and INT_RANGES["u64"] == (0, 2**64 - 1)


def test_init_u64_max_is_kept_exactly() -> None:
    assert init_of("u64", "18446744073709551615") == 2**64 - 1
    assert init_of("u64", "9223372036854775808") == 2**63
    text = str(parse_module("persistent { v: u64 @init(18446744073709551615); }", "t.oi"))
    assert "@init(18446744073709551615)" in text


def test_init_bool() -> None:
    assert init_of("bool", "true") is True
    assert init_of("bool", "false") is False
    assert init_of("bool", "1") is True
    assert init_of("bool", "0") is False
    with pytest.raises(ParseError, match="bool init out of range"):
        init_of("bool", "2")


@pytest.mark.parametrize("dtype", ["f8", "f16", "bf16", "f32", "f64"])
def test_init_float_dtypes(dtype: str) -> None:
    assert init_of(dtype, "5.0") == 5.0
    assert init_of(dtype, "-0.5") == -0.5
    assert init_of(dtype, "1e5") == 1e5
    assert init_of(dtype, "2.") == 2.0
    with pytest.raises(ParseError) as info:
        init_of(dtype, "5")
    assert info.value.message == f"int init requires an integer or bool dtype (write 5.0 for {dtype})"
    with pytest.raises(ParseError, match="error: bool init requires bool dtype$"):
        init_of(dtype, "true")


@pytest.mark.parametrize("dtype", [*INT_DTYPES, "bool"])
def test_init_float_literal_needs_float_dtype(dtype: str) -> None:
    with pytest.raises(ParseError) as info:
        init_of(dtype, "1.0")
    assert info.value.message == "float init requires f8/bf16/f16/f32/f64 dtype"
    if dtype != "bool":
        with pytest.raises(ParseError, match="error: bool init requires bool dtype$"):
            init_of(dtype, "false")


def test_every_dtype_is_accepted() -> None:
    names = "i8 i16 i32 i64 u8 u16 u32 u64 f8 f16 bf16 f32 f64 bool i4 u4".split()
    graph = graph_of("dynamic { " + " ".join(f"v{n}: {n}[2];" for n in names) + " }")
    assert [v.dtype for v in graph.vars] == names


@pytest.mark.parametrize("dtype", ["bitset", "i1", "i2", "u1", "u2", "t1", "t2", "f128", "float"])
def test_removed_and_unknown_dtypes(dtype: str) -> None:
    text = f"dynamic {{ x: {dtype}; }}"
    with pytest.raises(ParseError) as info:
        parse_module(text, "t.oi")
    assert info.value.message == f"unsupported dtype {dtype}"
    assert (info.value.loc.line, info.value.loc.column) == where(text, dtype)


# --- the graph! wrapper, names, locations --------------------------------------------------------------------


def test_graph_wrapper_optional() -> None:
    body = "dynamic { x: f32; } block entry { return; }"
    plain = str(parse_module(body, "m.oi"))
    assert str(parse_module(f"graph! {{ {body} }}", "m.oi")) == plain
    assert str(parse_module(f"graph! {{ {body} }};", "m.oi")) == plain
    assert str(parse_module(f"// header\ngraph! {{\n{body}\n}}\n// trailer\n", "m.oi")) == plain


def test_graph_name_comes_from_the_file_name() -> None:
    assert graph_of("block entry { return; }", "dir/kv_decode.oi").sym_name.data == "kv_decode"
    assert graph_of("block entry { return; }", "<string>").sym_name.data == "graph"
    assert graph_of("block entry { return; }", "my-model.oi").sym_name.data == "graph"


def test_each_statement_op_carries_its_location() -> None:
    text = "dynamic { x: f32; }\nblock entry {\n    op add(x, x) >> x;   cache.increment t;\n  loop l (i in 0..2) {\n" \
        "      barrier;\n  }\n  return;\n}\n"
    graph = graph_of(text, "loc.oi")
    expected = {
        "oi.graph": where(text, "dynamic"),
        "oi.var": where(text, "x: f32"),
        "oi.block": where(text, "block"),
        "oi.op": where(text, "op add"),
        "oi.cache.increment": where(text, "cache.increment"),
        "oi.loop": where(text, "loop"),
        "oi.barrier": where(text, "barrier"),
        "oi.return": where(text, "return"),
    }
    seen = {}
    for op in graph.walk():
        loc = op.location
        assert isinstance(loc, FileLineColLoc), op.name
        assert loc.filename.data == "loc.oi"
        seen[op.name] = (loc.line.data, loc.column.data)
    assert seen == expected


# --- the upstream worked example (reference §2) ---------------------------------------------------------------

WORKED_EXAMPLE = """\
persistent { state(i, j): f32[D] @table @auto_dim(i, j) @fixed(i=2, j=3); }
block entry {
    assign t0: f32[B, D];
    op add(x, w, alpha=0.5, clamp_max=6.0, axes=[1, 2], tag="relu", flag=true) >> t0;
    cache.write t0 >> state[0, 1];   cache.read state[0, 1] >> t0;
    cache.increment 2 state;         cache.decrement state;         cache.reset state[0, 1];
    branch cond_block then_block else_block;   barrier;   dep after(block_a) before(block_b);
    loop i (idx in 0..4) { yield t0; await t0; transfer t0 >> tmp; return; }
    return;
}
"""


def test_upstream_worked_example() -> None:
    graph = oi.parse_graph(WORKED_EXAMPLE, "worked.oi", verify=False)
    (state,) = graph.vars.values()
    assert state.memory == "persistent" and state.index_names == ["i", "j"]
    assert state.table is not None and state.auto_dim_names == ["i", "j"] and state.fixed_sizes == {"i": 2, "j": 3}
    assert state.var_type.dim_texts == ["D"]
    ops = list(graph.blocks["entry"].body.block.ops)
    assert [op.name for op in ops] == [
        "oi.assign", "oi.op", "oi.cache.write", "oi.cache.read", "oi.cache.increment", "oi.cache.decrement",
        "oi.cache.reset", "oi.branch", "oi.barrier", "oi.dep", "oi.loop", "oi.return",
    ]  # fmt: skip
    assign, add, write, read, inc, dec, reset, branch, _, dep, loop, _ = ops
    assert assign.var_name == "t0" and assign.var_type.dim_texts == ["B", "D"]
    assert add.kind == "add" and list(add.inputs) == [VarRefAttr("x"), VarRefAttr("w")] and add.output_name == "t0"
    s = add.settings.data
    assert s["alpha"] == FloatAttr(0.5, 64) and s["clamp_max"] == FloatAttr(6.0, 64)
    assert tuple(s["axes"].get_values()) == (1, 2) and s["tag"] == StringAttr("relu") and bool(s["flag"].value.data)
    assert write.src == VarRefAttr("t0") and write.dst == CacheAccessAttr("state", [0, 1])
    assert read.src == CacheAccessAttr("state", [0, 1]) and read.dst == VarRefAttr("t0")
    assert (inc.amount.data, inc.target.data, dec.amount.data, dec.target.data) == (2, "state", 1, "state")
    assert reset.target == CacheAccessAttr("state", [0, 1])
    assert branch.names == ["cond_block", "then_block", "else_block"]
    assert (dep.after.data, dep.before.data) == ("block_a", "block_b")
    assert (loop.label.data, loop.index.data, loop.bounds) == ("i", "idx", (0, 4))
    assert [o.name for o in loop.body.block.ops] == ["oi.yield", "oi.await", "oi.transfer", "oi.return"]
    # every statement sits where its first token is
    lines = WORKED_EXAMPLE.splitlines()
    for op in [*ops, *loop.body.block.ops]:
        loc = op.location
        keyword = "op " if op.name == "oi.op" else op.name.removeprefix("oi.")
        assert lines[loc.line.data - 1][loc.column.data - 1 :].startswith(keyword), (op.name, loc)
    assert (ops[3].location.line.data, ops[3].location.column.data) == (5, 38)  # second statement on a line


def test_worked_example_with_graph_wrapper_is_the_same() -> None:
    a = str(oi.parse_graph(WORKED_EXAMPLE, "w.oi", verify=False))
    b = str(oi.parse_graph("graph! {\n" + WORKED_EXAMPLE + "}\n", "w.oi", verify=False))
    assert a == b


# --- every ParseError, with its line:col ----------------------------------------------------------------

# (source, message, needle): the error is at the first occurrence of `needle`.
PARSE_ERRORS = [
    ("foo { }", "expected memory section or block", "foo"),
    ("graph { block entry { return; } }", "expected memory section or block", "graph"),
    ("block entry { return; } }", "expected memory section or block", "}\x00"),
    ("graph! { block entry { return; } } extra", "unexpected `extra` after the graph", "extra"),
    ("graph! { block entry { return; }", "expected `}`, found end of input", "\x00"),
    ("block entry { return; ", "expected `}`, found end of input", "\x00"),
    ("block { }", "expected block name, found `{`", "{"),
    ("block 1 { }", "expected block name, found `1`", "1"),
    ("persistent { K(): f32; }", "prefix table must declare at least one index", "("),
    ("persistent { K(a b): f32; }", "expected `)`, found `b`", "b)"),
    ("persistent { 1: f32; }", "expected variable name, found `1`", "1"),
    ("persistent { K f32; }", "expected `:`, found `f32`", "f32"),
    ("persistent { K: f32 }", "expected `;`, found `}`", "}"),
    ("persistent { K: 3; }", "expected dtype, found `3`", "3"),
    ("persistent { K: f33; }", "unsupported dtype f33", "f33"),
    ("persistent { K: f32[1.5]; }", "expected identifier or integer for dimension expression", "1.5"),
    ("persistent { K: f32[,]; }", "expected identifier or integer for dimension expression", ","),
    ("persistent { K: f32[a*b*c]; }", "expected `]`, found `*`", "*c"),
    ("persistent { K: f32 @frob; }", "unsupported attribute", "frob"),
    ("persistent { K: f32 @table @table; }", "duplicate @table attribute", "table;"),
    ("persistent { K: f32 @init(1.0) @init(2.0); }", "duplicate @init attribute", "init(2"),
    ("persistent { K: f32 @ref(1); }", "expected a string literal or an identifier", "1"),
    ("persistent { K: f32 @pattern(x); }", "expected a string literal", "x)"),
    ("persistent { K(i): f32 @auto_dim(); }", "@auto_dim requires at least one index", "()"),
    ("persistent { K(i): f32 @fixed(); }", "@fixed requires at least one entry", "()"),
    ("persistent { K(i): f32 @fixed(i=x); }", "expected integer, found `x`", "x)"),
    ("persistent { K(i): f32 @fixed(i=-1); }", "expected integer, found `-`", "-"),
    ("persistent { K(i): f32 @fixed(i 2); }", "expected `=`, found `2`", "2)"),
    ("persistent { K: i32 @init(true); }", "bool init requires bool dtype", "true"),
    ("persistent { K: i32 @init(1.5); }", "float init requires f8/bf16/f16/f32/f64 dtype", "1.5"),
    ("persistent { K: f32 @init(5); }", "int init requires an integer or bool dtype (write 5.0 for f32)", "5"),
    ("persistent { K: i8 @init(128); }", "i8 init out of range", "128"),
    ("persistent { K: u8 @init(256); }", "u8 init out of range", "256"),
    ("persistent { K: i8 @init(x); }", "expected a literal, found `x`", "x)"),
    ("persistent { K: f32 @init(inf); }", "expected a literal, found `inf`", "inf"),
    ("persistent { K: f32 @init(); }", "expected a literal, found `)`", ")"),
    ("block entry { frob; }", "unsupported node", "frob"),
    ("block entry { 42; }", "unsupported node", "42"),
    ("block entry { return }", "expected `;`, found `}`", "}"),
    ("block entry { assign t f32; }", "expected `:`, found `f32`", "f32"),
    ("block entry { assign t: f32[B] }", "expected `;`, found `}`", "}"),
    ("block entry { op (x) >> y; }", "expected op name, found `(`", "("),
    ("block entry { op f(a) y; }", "expected `>>`, found `y`", "y;"),
    ("block entry { op f(a) >> y[0]; }", "expected `;`, found `[`", "["),
    ("block entry { op f(,) >> y; }", "expected variable name, found `,`", ","),
    ("block entry { op f(a, W[]) >> y; }", "prefix access must include at least one index", "["),
    ("block entry { op f(a, W[-1]) >> y; }", "expected integer or identifier, found `-`", "-"),
    ("block entry { op f(a, W[0..1]) >> y; }", "expected `]`, found `..`", ".."),
    ("block entry { op f(a, k=1, k=2) >> y; }", "duplicate setting: k", "k=2"),
    ("block entry { op f(k=1, a) >> y; }", "positional args must come before settings", "a)"),
    ("block entry { op f(k=-x) >> y; }", "unexpected '-' before identifier", "x)"),
    ("block entry { op f(k=-inf) >> y; }", "unexpected '-' before identifier", "inf"),
    ("block entry { op f(k=;) >> y; }", "expected a setting value, found `;`", ";"),
    ("block entry { op f(to=7) >> y; }", "to must be a dtype identifier", "7"),
    ("block entry { op f(to=foo) >> y; }", "to must be a dtype identifier", "foo"),
    ("block entry { op f(to=[f32]) >> y; }", "to must be a dtype identifier", "["),
    ("block entry { op f(acc=i32) >> y; }", "acc must be a dtype list (e.g. acc=[i32, i64])", "i32"),
    ("block entry { op f(acc=[1, 2]) >> y; }", "acc must be a dtype list (e.g. acc=[i32, i64])", "["),
    ("block entry { op f(k=[i32]) >> y; }", "DTypeList only supported for acc attribute", "["),
    ("block entry { op f(acc=[i32, i3]) >> y; }", "unsupported dtype i3", "i3]"),
    ("block entry { op f(acc=[i32, 1]) >> y; }", "expected dtype, found `1`", "1]"),
    ("block entry { op f(k=[1, 2.5]) >> y; }", "expected integer, found `2.5`", "2.5"),
    ("block entry { op f(k=[1, x]) >> y; }", "expected integer, found `x`", "x]"),
    ("block entry { cache.frob K; }", "unsupported cache operation", "frob"),
    ("block entry { cache read K >> x; }", "expected `.`, found `read`", "read"),
    ("block entry { cache.read K[-t] >> y; }", "unexpected '-' before identifier", "t]"),
    ("block entry { cache.read K[>>] >> y; }", "expected integer or identifier, found `>>`", ">>]"),
    ("block entry { cache.read K[0] >> y[]; }", "prefix access must include at least one index", "[]"),
    ("block entry { cache.read K[0] y; }", "expected `>>`, found `y`", "y;"),
    ("block entry { cache.increment -1 t; }", "expected cache variable, found `-`", "-"),
    ("block entry { cache.increment 2.0 t; }", "expected cache variable, found `2.0`", "2.0"),
    ("block entry { branch ; }", "expected identifier, found `;`", ";"),
    ("block entry { branch a b; }", "branch expects condition and two target blocks", ";"),
    ("block entry { dep after(x.y) before(z); }", "expected `)`, found `.`", "."),
    ("block entry { dep before(x) after(z); }", "expected `after`, found `before`", "before"),
    ("block entry { dep after(x) (z); }", "expected `before`, found `(`", "(z"),
    ("block entry { loop l (i in -1..3) { } }", "expected identifier or integer for loop range", "-"),
    ("block entry { loop l (i in 0..=3) { } }", "expected identifier or integer for loop range", "="),
    ("block entry { loop l (i of 0..3) { } }", "expected `in`, found `of`", "of"),
    ("block entry { loop l (i in 0 3) { } }", "expected `..`, found `3`", "3)"),
    ("block entry { loop l (i in 0..3) { return; }", "expected `}`, found end of input", "\x00"),
    ("block entry { yield; }", "yield expects at least one variable", ";"),
    ("block entry { await ; }", "await expects at least one variable", ";"),
    ("block entry { yield a, ; }", "expected variable name, found `;`", ";"),
    ("block entry { transfer a >> b[0..1]; }", "expected `]`, found `..`", ".."),
]


def _error_loc(text: str, needle: str) -> tuple[int, int]:
    if needle == "\x00":  # end of input
        return text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1
    if needle.endswith("\x00"):  # the last occurrence
        offset = text.rindex(needle[:-1])
        return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1
    return where(text, needle)


@pytest.mark.parametrize("prefix", ["", "// a comment\n  /* two\n lines */\n"], ids=["line1", "line4"])
@pytest.mark.parametrize(("text", "message", "needle"), PARSE_ERRORS, ids=[c[1] + "|" + c[0] for c in PARSE_ERRORS])
def test_parse_error(text: str, message: str, needle: str, prefix: str) -> None:
    full = prefix + text
    with pytest.raises(ParseError) as info:
        oi.parse_graph(full, "e.oi")
    err = info.value
    assert isinstance(err, oi.OiError)
    assert err.message == message
    line, col = _error_loc(full, needle)
    assert (err.loc.filename, err.loc.line, err.loc.column) == ("e.oi", line, col)
    assert str(err) == f"e.oi:{line}:{col}: error: {message}"


def test_trailing_commas_are_accepted() -> None:
    graph = graph_of("persistent { K(a, b,): f32[2, D,] @auto_dim(a,) @fixed(a = 1,); }\nblock entry { op f(x, y,) >> z; "
                     "yield a; }")
    k = graph.vars[0]
    assert k.index_names == ["a", "b"] and k.var_type.dim_texts == ["2", "D"] and k.auto_dim_names == ["a"]
    assert k.fixed_sizes == {"a": 1}
    op = graph.blocks[0].body.block.ops.first
    assert [r.var_name for r in op.inputs] == ["x", "y"]


def test_parse_graph_verifies_by_default() -> None:
    text = "persistent { K(i): f32[4] @table; }\nvolatile { x: f32[4]; }\nblock entry {\n  cache.read K >> x;\n}"
    with pytest.raises(oi.VerifyError) as info:
        oi.parse_graph(text, "v.oi")
    assert info.value.message == "cache table K requires indices"
    assert (info.value.loc.line, info.value.loc.column) == (4, 3)
    assert oi.parse_graph(text, "v.oi", verify=False).vars["K"].index_names == ["i"]
