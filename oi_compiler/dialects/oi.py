"""The `oi` dialect: OpenInfer graphs at the graph level (L3).

A graph is a list of variable declarations and named blocks of statements, one op
per DSL statement. Variables are named, mutable buffers, so ops name them by
symbol (`@x`) instead of passing SSA values; lowering turns them into buffers.
Statements that change state (cache writes, increments, decrements, resets,
barriers, ops writing their output) carry write effects, so no generic pass may
delete or merge them. Each op prints in a custom form close to the DSL:

    oi.graph @decode {
      oi.var persistent @K(l, t) : f16[H, Dh] @table @fixed(t = 4)
      oi.block @entry {
        oi.op matmul(@x, @W[l, 0], acc = [f32]) -> @y
        oi.cache.write @y -> @K[0, @t]        (indices are values or `s:e` slices)
        oi.cache.increment 1 @t
        oi.cache.read @K[0, :] -> @hist
        oi.loop layers (l in 0 to L) { ... }
        oi.return
      }
    }

Discardable attributes (those a pass attaches) print as MLIR's `attr-dict` does: last, or before
the trailing `: type` of `oi.assign`, only when there are any (`oi.cache.increment 1 @t {my.attr = 1}`,
`oi.loop l (i in 0 to 4) {...} {my.attr = 1}`), and read back the same.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DenseArrayBase,
    DictionaryAttr,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    SymbolRefAttr,
    UnitAttr,
    f64,
    i64,
)
from xdsl.ir import Attribute, Block, Dialect, Region, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    opt_prop_def,
    prop_def,
    region_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import (
    MemoryReadEffect,
    MemoryWriteEffect,
    NoTerminator,
)
from xdsl.utils.exceptions import VerifyException

from oi_compiler.dialects.oi_lowered import LOWERED_OPS
from oi_compiler.dialects.oi_nest import NEST_OPS
from oi_compiler.dialects.oi_attrs import (
    CacheAccessAttr,
    DimAttr,
    SliceAttr,
    TensorType,
    VarRefAttr,
    index_value,
    index_value_text,
    is_bare_identifier,
    parse_attr_dict,
    parse_index_value,
    print_attr_dict,
    with_attrs,
)
from oi_compiler.dtypes import DTYPE_NAMES, FLOAT_DTYPES, INT_RANGES, dtype_name, dtype_type

MEMORY_KINDS = ("dynamic", "volatile", "constant", "persistent")


def _body_region() -> Region:
    return Region(Block())


def _print_body(printer: Printer, region: Region) -> None:
    printer.print_string(" ")
    printer.print_region(region, print_entry_block_args=False, print_empty_block=False)


def _parse_body(parser: Parser) -> Region:
    region = parser.parse_region()
    if not region.blocks:
        region.add_block(Block())
    return region


def _print_ident_list(printer: Printer, names: Sequence[str]) -> None:
    printer.print_string("(" + ", ".join(names) + ")")


def _parse_ident_list(parser: Parser) -> list[str]:
    return parser.parse_comma_separated_list(parser.Delimiter.PAREN, lambda: parser.parse_identifier())


def _symbols(parser: Parser) -> list[str]:
    return parser.parse_comma_separated_list(parser.Delimiter.NONE, lambda: parser.parse_symbol_name().data)


# --- structure -------------------------------------------------------------------------


@irdl_op_definition
class GraphOp(IRDLOperation):
    """An OpenInfer graph: variable declarations and named blocks, in source order."""

    name = "oi.graph"

    sym_name = prop_def(StringAttr)
    body = region_def("single_block")

    traits = traits_def(NoTerminator())

    def __init__(self, name: str = "graph", body: Region | None = None):
        super().__init__(properties={"sym_name": StringAttr(name)}, regions=[body or _body_region()])

    @property
    def vars(self) -> list[VarOp]:
        return [op for op in self.body.block.ops if isinstance(op, VarOp)]

    @property
    def blocks(self) -> list[BlockOp]:
        return [op for op in self.body.block.ops if isinstance(op, BlockOp)]

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        _print_body(printer, self.body)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> GraphOp:
        name = parser.parse_symbol_name().data
        body = _parse_body(parser)
        return with_attrs(cls(name, body), parse_attr_dict(parser, cls))


@irdl_op_definition
class VarOp(IRDLOperation):
    """A variable declaration in one of the four memory sections.

    `indices` are table/prefix indices; `init`, `ref`, `pattern`, `table`,
    `auto_dim` and `fixed` are the DSL's `@` attributes with their meaning upstream; `paged`
    (`@paged(page = 16, pages = 256)`) is ours: the table's storage, entries in pages of `page`
    along its last index (`pages`: the pool's first size in pages).
    """

    name = "oi.var"

    kind = prop_def(StringAttr)
    sym_name = prop_def(StringAttr)
    var_type = prop_def(TensorType, prop_name="type")
    indices = prop_def(ArrayAttr[StringAttr])
    init = opt_prop_def(IntegerAttr | FloatAttr)
    ref = opt_prop_def(StringAttr)
    pattern = opt_prop_def(StringAttr)
    table = opt_prop_def(UnitAttr)
    auto_dim = opt_prop_def(ArrayAttr[StringAttr])
    fixed = opt_prop_def(DictionaryAttr)
    paged = opt_prop_def(DictionaryAttr)

    def __init__(
        self,
        kind: str,
        name: str,
        var_type: TensorType,
        *,
        indices: Sequence[str] = (),
        init: IntegerAttr | FloatAttr | None = None,
        ref: str | None = None,
        pattern: str | None = None,
        table: bool = False,
        auto_dim: Sequence[str] = (),
        fixed: Mapping[str, int] | None = None,
        paged: Mapping[str, int] | None = None,
    ):
        props: dict[str, Attribute] = {
            "kind": StringAttr(kind),
            "sym_name": StringAttr(name),
            "type": var_type,
            "indices": ArrayAttr([StringAttr(i) for i in indices]),
        }
        if init is not None:
            props["init"] = init
        if ref is not None:
            props["ref"] = StringAttr(ref)
        if pattern is not None:
            props["pattern"] = StringAttr(pattern)
        if table:
            props["table"] = UnitAttr()
        if auto_dim:
            props["auto_dim"] = ArrayAttr([StringAttr(a) for a in auto_dim])
        if fixed:
            props["fixed"] = DictionaryAttr({k: IntegerAttr(v, i64) for k, v in fixed.items()})
        if paged is not None:
            props["paged"] = DictionaryAttr({k: IntegerAttr(v, i64) for k, v in paged.items()})
        super().__init__(properties=props)

    # Plain-Python views, so passes and the verifier need not unwrap attributes.
    @property
    def var_name(self) -> str:
        return self.sym_name.data

    @property
    def memory(self) -> str:
        return self.kind.data

    @property
    def dtype(self) -> str:
        return self.var_type.dtype

    @property
    def index_names(self) -> list[str]:
        return [i.data for i in self.indices]

    @property
    def auto_dim_names(self) -> list[str]:
        return [a.data for a in self.auto_dim] if self.auto_dim else []

    @property
    def fixed_sizes(self) -> dict[str, int]:
        return {k: v.value.data for k, v in self.fixed.data.items()} if self.fixed else {}

    @property
    def paged_options(self) -> dict[str, int]:
        """`@paged`'s entries as written (`page`, `pages`); empty for a dense table."""
        return {k: v.value.data for k, v in self.paged.data.items()} if self.paged else {}

    @property
    def page_size(self) -> int:
        """Entries per page of a `@paged` table; 0 for dense storage."""
        return self.paged_options.get("page", 0)

    @property
    def pool_pages(self) -> int:
        """The first size of a `@paged` table's pool, in pages (0: the default)."""
        return self.paged_options.get("pages", 0)

    @property
    def init_value(self) -> int | float | bool | None:
        if self.init is None:
            return None
        if isinstance(self.init, IntegerAttr) and self.init.type == IntegerType(1):
            return bool(self.init.value.data)
        return self.init.value.data

    def verify_(self) -> None:
        if self.kind.data not in MEMORY_KINDS:
            raise VerifyException(f"unknown memory kind {self.kind.data}")
        if self.init is not None and dtype_name(self.var_type.element_type) is not None:
            try:
                init_attr(self.init_value, self.dtype)
            except ValueError as e:
                raise VerifyException(str(e)) from None

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.kind.data} ")
        printer.print_symbol_name(self.var_name)
        if self.indices.data:
            _print_ident_list(printer, self.index_names)
        printer.print_string(" : ")
        self.var_type.print_body(printer)
        if (value := self.init_value) is not None:
            text = "true" if value is True else "false" if value is False else _number_text(value)
            printer.print_string(f" @init({text})")
        if self.ref is not None:
            printer.print_string(" @ref(")
            printer.print_string_literal(self.ref.data)
            printer.print_string(")")
        if self.pattern is not None:
            printer.print_string(" @pattern(")
            printer.print_string_literal(self.pattern.data)
            printer.print_string(")")
        if self.table is not None:
            printer.print_string(" @table")
        if self.auto_dim is not None:
            printer.print_string(" @auto_dim")
            _print_ident_list(printer, self.auto_dim_names)
        if self.fixed is not None:
            entries = ", ".join(f"{k} = {v}" for k, v in self.fixed_sizes.items())
            printer.print_string(f" @fixed({entries})")
        if self.paged is not None:
            entries = ", ".join(f"{k} = {v}" for k, v in self.paged_options.items())
            printer.print_string(f" @paged({entries})")
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> VarOp:
        pos = parser.pos
        kind = parser.parse_identifier(" (a memory kind)")
        if kind not in MEMORY_KINDS:
            parser.raise_error(f"expected one of {', '.join(MEMORY_KINDS)}", pos, parser.pos)
        name = parser.parse_symbol_name().data
        indices = _parse_ident_list(parser) if parser._current_token.text == "(" else []
        parser.parse_punctuation(":")
        var_type = TensorType.parse_body(parser)
        dtype = var_type.dtype
        extra: dict = {}
        while True:
            attr_pos = parser.pos
            if (attr := parser.parse_optional_symbol_name()) is None:
                break
            key = attr.data
            if key in extra:
                parser.raise_error(f"duplicate @{key} attribute", attr_pos, parser.pos)  # as the DSL's parser
            if key == "init":
                with parser.in_parens():  # checked against the dtype after the last attribute, as in the DSL
                    extra["init"] = _parse_init_value(parser)
            elif key in ("ref", "pattern"):
                with parser.in_parens():
                    extra[key] = _parse_text(parser)
            elif key == "table":
                extra["table"] = True
            elif key == "auto_dim":
                extra["auto_dim"] = _parse_ident_list(parser)
            elif key in ("fixed", "paged"):
                with parser.in_parens():
                    entries = parser.parse_comma_separated_list(parser.Delimiter.NONE, lambda: _parse_fixed_entry(parser))
                extra[key] = dict(entries)
                if len(extra[key]) < len(entries):
                    parser.raise_error(f"@{key} names an {'index' if key == 'fixed' else 'option'} twice", attr_pos,
                                       parser.pos)  # fmt: skip
            else:
                parser.raise_error("unsupported attribute", attr_pos, parser.pos)
        if "init" in extra:
            value, start, end = extra["init"]
            try:
                extra["init"] = init_attr(value, dtype)
            except ValueError as e:
                parser.raise_error(str(e), start, end)
        attrs = parse_attr_dict(parser, cls)
        return with_attrs(cls(kind, name, var_type, indices=indices, **extra), attrs)


def _parse_optional_text(parser: Parser) -> str | None:
    """A string literal; escaped non-ASCII text, which xDSL lexes as bytes, is decoded as UTF-8."""
    if (text := parser.parse_optional_str_literal()) is not None:
        return text
    if (raw := parser.parse_optional_bytes_literal()) is not None:
        return raw.decode("utf-8", errors="replace")
    return None


def _parse_text(parser: Parser) -> str:
    if (text := _parse_optional_text(parser)) is None:
        parser.raise_error("string literal expected")
    return text


def _parse_fixed_entry(parser: Parser) -> tuple[str, int]:
    key = parser.parse_identifier()
    parser.parse_punctuation("=")
    return key, parser.parse_integer(allow_boolean=False, allow_negative=False)


def _parse_init_value(parser: Parser) -> tuple[int | float | bool, int, int]:
    """An `@init` literal as written, with where it starts and ends (`init_attr` checks it)."""
    pos = parser.pos
    value = parser.parse_optional_boolean()
    if value is None:
        value = parser.parse_number()
    return value, pos, parser.pos


def init_attr(value: int | float | bool, dtype: str) -> IntegerAttr | FloatAttr:
    """The attribute an `@init` literal is stored as; `ValueError` (upstream's words) if it does not fit."""
    if isinstance(value, bool):
        if dtype != "bool":
            raise ValueError("bool init requires bool dtype")
        return BoolAttr.from_bool(value)
    if isinstance(value, float):
        if dtype not in FLOAT_DTYPES:
            raise ValueError("float init requires f8/bf16/f16/f32/f64 dtype")
        return FloatAttr(value, f64)
    if dtype in FLOAT_DTYPES:
        raise ValueError(f"int init requires an integer or bool dtype (write {value}.0 for {dtype})")
    lo, hi = INT_RANGES[dtype]
    if not lo <= value <= hi:
        raise ValueError(f"{dtype} init out of range")
    if dtype == "bool":
        return BoolAttr.from_bool(bool(value))
    return IntegerAttr(value, dtype_type(dtype))


def _number_text(value: int | float) -> str:
    """A number as text that reads back as the same number and the same kind (int/float)."""
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return "nan"
    text = repr(value)
    mantissa, e, exp = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + (f"e{exp}" if e else "")


@irdl_op_definition
class BlockOp(IRDLOperation):
    """A named block of statements; `entry` runs on each step, others via `branch` or `yield`."""

    name = "oi.block"

    sym_name = prop_def(StringAttr)
    body = region_def("single_block")

    traits = traits_def(NoTerminator())  # no effect trait: never dead, even when empty

    def __init__(self, name: str, body: Region | None = None):
        super().__init__(properties={"sym_name": StringAttr(name)}, regions=[body or _body_region()])

    @property
    def block_name(self) -> str:
        return self.sym_name.data

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.block_name)
        _print_body(printer, self.body)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> BlockOp:
        name = parser.parse_symbol_name().data
        body = _parse_body(parser)
        return with_attrs(cls(name, body), parse_attr_dict(parser, cls))


# --- statements ---------------------------------------------------------------------------


@irdl_op_definition
class AssignOp(IRDLOperation):
    """Declares a block-local temporary (`assign t: f32[B, D];`), zero-filled when first made."""

    name = "oi.assign"

    sym_name = prop_def(StringAttr)
    var_type = prop_def(TensorType, prop_name="type")

    traits = traits_def(MemoryWriteEffect())

    def __init__(self, name: str, var_type: TensorType):
        super().__init__(properties={"sym_name": StringAttr(name), "type": var_type})

    @property
    def var_name(self) -> str:
        return self.sym_name.data

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.var_name)
        print_attr_dict(printer, self)
        printer.print_string(" : ")
        self.var_type.print_body(printer)

    @classmethod
    def parse(cls, parser: Parser) -> AssignOp:
        name = parser.parse_symbol_name().data
        attrs = parse_attr_dict(parser, cls)
        parser.parse_punctuation(":")
        return with_attrs(cls(name, TensorType.parse_body(parser)), attrs)


SettingValue = FloatAttr | IntegerAttr | StringAttr | SymbolRefAttr | DenseArrayBase | ArrayAttr | TypeAttribute


def _string_literal(text: str) -> str:
    """`text` as an MLIR string literal, escaped the way xDSL's lexer reads it back."""
    buf = io.StringIO()
    Printer(stream=buf).print_string_literal(text)
    return buf.getvalue()


def setting_text(value: Attribute) -> str:
    """A setting value in DSL spelling (`0.5`, `[1, 2]`, `[f32, i32]`, `"relu"`, `inf`, `@name`)."""
    if isinstance(value, IntegerAttr) and value.type == IntegerType(1):
        return "true" if value.value.data else "false"
    if isinstance(value, IntegerAttr | FloatAttr):
        return _number_text(value.value.data)
    if isinstance(value, StringAttr):
        return _string_literal(value.data)
    if isinstance(value, SymbolRefAttr):
        return "@" + value.root_reference.data
    if isinstance(value, DenseArrayBase):
        return "[" + ", ".join(str(v) for v in value.get_values()) + "]"
    if isinstance(value, ArrayAttr):
        return "[" + ", ".join(dtype_name(t) or str(t) for t in value) + "]"
    if (name := dtype_name(value)) is not None:
        return name
    return str(value)


def _parse_setting_value(parser: Parser) -> Attribute:
    if parser.parse_optional_punctuation("[") is not None:
        if parser.parse_optional_punctuation("]") is not None:
            return DenseArrayBase.from_list(i64, [])
        if parser._current_token.text in DTYPE_NAMES:
            types = parser.parse_comma_separated_list(parser.Delimiter.NONE, lambda: _parse_dtype(parser))
            parser.parse_punctuation("]")
            return ArrayAttr(types)
        ints = parser.parse_comma_separated_list(
            parser.Delimiter.NONE, lambda: parser.parse_integer(allow_boolean=False, allow_negative=True)
        )
        parser.parse_punctuation("]")
        return DenseArrayBase.from_list(i64, ints)
    if (s := _parse_optional_text(parser)) is not None:
        return StringAttr(s)
    if (sym := parser.parse_optional_symbol_name()) is not None:
        return SymbolRefAttr(sym.data)
    if (b := parser.parse_optional_boolean()) is not None:
        return BoolAttr.from_bool(b)
    negative = parser.parse_optional_punctuation("-") is not None
    if (word := parser.parse_optional_keyword_in(("inf", "nan"))) is not None:
        return FloatAttr(-math.inf if negative and word == "inf" else getattr(math, word), f64)
    if (n := parser.parse_optional_number()) is not None:
        n = -n if negative else n
        return FloatAttr(n, f64) if isinstance(n, float) else IntegerAttr(n, i64)
    if negative:
        parser.raise_error("expected a number after '-'")
    return _parse_dtype(parser)


def _parse_dtype(parser: Parser) -> Attribute:
    pos = parser.pos
    name = parser.parse_identifier(" (a setting value)")
    if name not in DTYPE_NAMES:
        parser.raise_error(f"unsupported dtype {name}", pos, parser.pos)
    return dtype_type(name)


@irdl_op_definition
class NamedOp(IRDLOperation):
    """`op name(inputs, settings) >> output`: an op from the registry (see `oi_compiler.ops`)."""

    name = "oi.op"

    op_name = prop_def(StringAttr)
    inputs = prop_def(ArrayAttr[VarRefAttr])
    output = prop_def(StringAttr)
    settings = prop_def(DictionaryAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(
        self,
        op_name: str,
        inputs: Sequence[VarRefAttr | str],
        output: str,
        settings: Mapping[str, Attribute] | None = None,
    ):
        refs = [i if isinstance(i, VarRefAttr) else VarRefAttr(i) for i in inputs]
        super().__init__(
            properties={
                "op_name": StringAttr(op_name),
                "inputs": ArrayAttr(refs),
                "output": StringAttr(output),
                "settings": DictionaryAttr(dict(settings or {})),
            }
        )

    @property
    def kind(self) -> str:
        return self.op_name.data

    @property
    def output_name(self) -> str:
        return self.output.data

    def print(self, printer: Printer) -> None:
        print_op_call(printer, self.kind, self.inputs, self.settings.data, self.output_name)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> NamedOp:
        op_name, inputs, settings, output = parse_op_call(parser)
        return with_attrs(cls(op_name, inputs, output, settings), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        return f"op {self.kind}({','.join(r.text for r in self.inputs)}) >> {self.output_name}"


def print_op_call(
    printer: Printer, kind: str, inputs: Sequence[VarRefAttr], settings: Mapping[str, Attribute], output: str
) -> None:
    """` kind(@in, ..., key = value, ...) -> @out`, the syntax `oi.op` and `oi.kernel` share."""
    parts = [_ref_text(ref) for ref in inputs]
    parts += [f"{k} = {setting_text(v)}" for k, v in settings.items()]
    printer.print_string(f" {kind}(" + ", ".join(parts) + ") -> ")
    printer.print_symbol_name(output)


def parse_op_call(parser: Parser) -> tuple[str, list[VarRefAttr], dict[str, Attribute], str]:
    """`kind(@in, ..., key = value, ...) -> @out`: (kind, inputs, settings, output)."""
    op_name = parser.parse_identifier(" (an op name)")
    inputs: list[VarRefAttr] = []
    settings: dict[str, Attribute] = {}

    def parse_arg() -> None:
        if parser._current_token.text.startswith("@"):
            if settings:
                parser.raise_error("positional args must come before settings")
            inputs.append(VarRefAttr.parse_body(parser))
            return
        key_pos = parser.pos
        key = parser.parse_identifier(" (a setting name)")
        if key in settings:
            parser.raise_error(f"duplicate setting: {key}", key_pos, parser.pos)
        parser.parse_punctuation("=")
        settings[key] = _parse_setting_value(parser)

    parser.parse_comma_separated_list(parser.Delimiter.PAREN, parse_arg)
    parser.parse_punctuation("->")
    return op_name, inputs, settings, parser.parse_symbol_name().data


def is_dsl_setting(key: str, value: Attribute) -> bool:
    """Whether `key = value` reads back unchanged from its DSL spelling (`setting_text`)."""
    if not is_bare_identifier(key) or key in ("true", "false"):
        return False
    if isinstance(value, IntegerAttr):
        return value.type in (i64, IntegerType(1))
    if isinstance(value, FloatAttr):
        return value.type == f64
    if isinstance(value, StringAttr):
        return True
    if isinstance(value, SymbolRefAttr):
        return not value.nested_references.data and is_bare_identifier(value.root_reference.data)
    if isinstance(value, DenseArrayBase):
        return value.elt_type == i64
    if isinstance(value, ArrayAttr):
        return bool(value.data) and all(dtype_name(t) is not None for t in value)
    return dtype_name(value) is not None


def _ref_text(ref: VarRefAttr) -> str:
    text = "@" + ref.var_name
    if ref.indices.data:
        text += "[" + ", ".join(index_value_text(i) for i in ref.indices) + "]"
    return text


class _MoveOp(IRDLOperation):
    """Shared `src -> dst` syntax of `cache.read`, `cache.write` and `transfer`."""

    SRC: ClassVar[type[VarRefAttr] | type[CacheAccessAttr]]
    DST: ClassVar[type[VarRefAttr] | type[CacheAccessAttr]]

    def __init__(self, src: VarRefAttr | CacheAccessAttr | str, dst: VarRefAttr | CacheAccessAttr | str):
        src = self.SRC(src) if isinstance(src, str) else src
        dst = self.DST(dst) if isinstance(dst, str) else dst
        super().__init__(properties={"src": src, "dst": dst})

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        self.src.print_body(printer)
        printer.print_string(" -> ")
        self.dst.print_body(printer)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser):
        src = cls.SRC.parse_body(parser)
        parser.parse_punctuation("->")
        dst = cls.DST.parse_body(parser)
        return with_attrs(cls(src, dst), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        return f"{self.name.removeprefix('oi.')} {self.src.text} >> {self.dst.text}"


@irdl_op_definition
class CacheReadOp(_MoveOp):
    """`cache.read A[...] >> x`: copies the selected cache contents into `x` (growing the table)."""

    name = "oi.cache.read"

    SRC: ClassVar = CacheAccessAttr
    DST: ClassVar = VarRefAttr
    src = prop_def(CacheAccessAttr)
    dst = prop_def(VarRefAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())


@irdl_op_definition
class CacheWriteOp(_MoveOp):
    """`cache.write x >> A[...]`: stores a copy of `x` as the addressed cache entry."""

    name = "oi.cache.write"

    SRC: ClassVar = VarRefAttr
    DST: ClassVar = CacheAccessAttr
    src = prop_def(VarRefAttr)
    dst = prop_def(CacheAccessAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())


class _CacheStepOp(IRDLOperation):
    """Shared shape of `cache.increment` and `cache.decrement`."""

    target = prop_def(StringAttr)
    amount = prop_def(IntAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, target: str, amount: int = 1):
        super().__init__(properties={"target": StringAttr(target), "amount": IntAttr(amount)})

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.amount.data} ")
        printer.print_symbol_name(self.target.data)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser):
        amount = parser.parse_optional_integer(allow_boolean=False, allow_negative=False)
        op = cls(parser.parse_symbol_name().data, 1 if amount is None else amount)
        return with_attrs(op, parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        word = self.name.removeprefix("oi.")
        amount = "" if self.amount.data == 1 else f"{self.amount.data} "
        return f"{word} {amount}{self.target.data}"


@irdl_op_definition
class CacheIncrementOp(_CacheStepOp):
    """`cache.increment [n] t`: adds n (default 1) to a persistent scalar, wrapping integers."""

    name = "oi.cache.increment"


@irdl_op_definition
class CacheDecrementOp(_CacheStepOp):
    """`cache.decrement [n] t`: subtracts n (default 1) from a persistent scalar, wrapping integers."""

    name = "oi.cache.decrement"


@irdl_op_definition
class CacheResetOp(IRDLOperation):
    """`cache.reset A[...]`: a scalar/plain cache back to `@init`; a table prefix deleted."""

    name = "oi.cache.reset"

    target = prop_def(CacheAccessAttr)

    traits = traits_def(MemoryWriteEffect())

    def __init__(self, target: CacheAccessAttr):
        super().__init__(properties={"target": target})

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        self.target.print_body(printer)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> CacheResetOp:
        target = CacheAccessAttr.parse_body(parser)
        return with_attrs(cls(target), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        return f"cache.reset {self.target.text}"


@irdl_op_definition
class CacheAppendOp(IRDLOperation):
    """`cache.append x >> K[off]`: a ragged batched append (baracuda's `KvCacheAppendPlan`). For a
    table `K(b, ..., l)`, `K[b, ..., off[b] + l] = x[b, ..., l]` for every cell of `x`; `skip`:
    cells past a `@fixed` last index are dropped instead of failing the step."""

    name = "oi.cache.append"

    src = prop_def(VarRefAttr)
    table = prop_def(StringAttr)
    offsets = prop_def(StringAttr)
    skip = prop_def(BoolAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, src: VarRefAttr | str, table: str, offsets: str, skip: bool = False):
        src = VarRefAttr(src) if isinstance(src, str) else src
        props = {"src": src, "table": StringAttr(table), "offsets": StringAttr(offsets),
                 "skip": BoolAttr.from_bool(skip)}  # fmt: skip
        super().__init__(properties=props)

    @property
    def on_out_of_range(self) -> str:
        return "skip" if self.skip.value.data else "error"

    def print(self, printer: Printer) -> None:
        printer.print_string(" skip " if self.skip.value.data else " ")
        self.src.print_body(printer)
        printer.print_string(f" -> @{self.table.data}[@{self.offsets.data}]")
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> CacheAppendOp:
        skip = parser.parse_optional_keyword("skip") is not None
        src = VarRefAttr.parse_body(parser)
        parser.parse_punctuation("->")
        table = parser.parse_symbol_name().data
        parser.parse_punctuation("[")
        offsets = parser.parse_symbol_name().data
        parser.parse_punctuation("]")
        return with_attrs(cls(src, table, offsets, skip), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        policy = " @on_out_of_range(skip)" if self.skip.value.data else ""
        return f"cache.append {self.src.text} >> {self.table.data}[{self.offsets.data}]{policy}"


@irdl_op_definition
class CacheSaveOp(_MoveOp):
    """`cache.save x >> F`: vortex_torch's Save. At the end of a step that succeeds, the field `F`
    (a table `F(s): T[D0, D1]`) holds the rows of `x` (`[S, D0, D1]`) as they were at the save (the
    step's last save wins). A side effect: no pass removes it, read or not."""

    name = "oi.cache.save"

    SRC: ClassVar = VarRefAttr
    DST: ClassVar = VarRefAttr
    src = prop_def(VarRefAttr)
    dst = prop_def(VarRefAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())


@irdl_op_definition
class CacheLoadOp(CacheReadOp):
    """`cache.load F >> y`: vortex_torch's Load. `y` gets the field `F` (`[S, D0, D1]`) as the
    previous step left it, wherever the step's saves are (they apply at its end). Otherwise a
    `cache.read F[..] >> y`: its access is that full slice."""

    name = "oi.cache.load"

    SRC: ClassVar = CacheAccessAttr
    DST: ClassVar = VarRefAttr
    src = prop_def(CacheAccessAttr)
    dst = prop_def(VarRefAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, src: str, dst: VarRefAttr | str):
        super().__init__(CacheAccessAttr(src, [SliceAttr()], bracketed=True), dst)

    def print(self, printer: Printer) -> None:
        printer.print_string(f" @{self.field} -> ")
        self.dst.print_body(printer)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> CacheLoadOp:
        field = parser.parse_symbol_name().data
        parser.parse_punctuation("->")
        dst = VarRefAttr.parse_body(parser)
        return with_attrs(cls(field, dst), parse_attr_dict(parser, cls))

    @property
    def field(self) -> str:
        return self.src.var_name

    @property
    def description(self) -> str:
        return f"cache.load {self.field} >> {self.dst.text}"


class _SequenceOp(IRDLOperation):
    """Shared shape of the sequence statements: tables `K(b, ..., t)` (a sequence per first index,
    a position per last) and the persistent vector of their lengths, one per sequence."""

    tables = prop_def(ArrayAttr[StringAttr])
    lengths = prop_def(StringAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    @property
    def table_names(self) -> list[str]:
        return [t.data for t in self.tables]

    def _print_group(self, printer: Printer) -> None:
        printer.print_string(" " + ", ".join(f"@{t}" for t in self.table_names) + f" [@{self.lengths.data}]")

    @staticmethod
    def _parse_group(parser: Parser) -> tuple[list[str], str]:
        tables = [parser.parse_symbol_name().data]
        while parser.parse_optional_punctuation(",") is not None:
            tables.append(parser.parse_symbol_name().data)
        parser.parse_punctuation("[")
        lengths = parser.parse_symbol_name().data
        parser.parse_punctuation("]")
        return tables, lengths

    def _group_text(self) -> str:
        return f"{', '.join(self.table_names)} [{self.lengths.data}]"


def _group_props(tables: Sequence[str], lengths: str) -> dict[str, Attribute]:
    return {"tables": ArrayAttr([StringAttr(t) for t in tables]), "lengths": StringAttr(lengths)}


@irdl_op_definition
class CacheForkOp(_SequenceOp):
    """`cache.fork K, V [len] src >> dst at p`: sequence `dst` becomes the first `p` entries of
    sequence `src` in every table (the rest of `dst` emptied) and `len[dst] = p` (TVM's
    `ForkSequence`; a paged storage shares the pages)."""

    name = "oi.cache.fork"

    src = prop_def(IntAttr | StringAttr)
    dst = prop_def(IntAttr | StringAttr)
    position = prop_def(IntAttr | StringAttr)

    def __init__(self, tables: Sequence[str], lengths: str, src: int | str, dst: int | str, position: int | str):
        props = {**_group_props(tables, lengths), "src": index_value(src), "dst": index_value(dst),
                 "position": index_value(position)}  # fmt: skip
        super().__init__(properties=props)

    def print(self, printer: Printer) -> None:
        self._print_group(printer)
        printer.print_string(f" {self.src.data} -> {self.dst.data} at {self.position.data}")
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> CacheForkOp:
        tables, lengths = cls._parse_group(parser)
        src = parse_index_value(parser)
        parser.parse_punctuation("->")
        dst = parse_index_value(parser)
        parser.parse_keyword("at")
        position = parse_index_value(parser)
        return with_attrs(cls(tables, lengths, src.data, dst.data, position.data), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        return f"cache.fork {self._group_text()} {self.src.data} >> {self.dst.data} at {self.position.data}"


@irdl_op_definition
class CachePopOp(_SequenceOp):
    """`cache.pop n K, V [len] b`: the last `n` entries of sequence `b` removed from every table
    (back to `@init`) and `len[b] -= n` (TVM's `PopN`: a rejected speculative token's rollback)."""

    name = "oi.cache.pop"

    count = prop_def(IntAttr | StringAttr)
    sequence = prop_def(IntAttr | StringAttr)

    def __init__(self, count: int | str, tables: Sequence[str], lengths: str, sequence: int | str):
        props = {**_group_props(tables, lengths), "count": index_value(count), "sequence": index_value(sequence)}
        super().__init__(properties=props)

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.count.data}")
        self._print_group(printer)
        printer.print_string(f" {self.sequence.data}")
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> CachePopOp:
        count = parse_index_value(parser)
        tables, lengths = cls._parse_group(parser)
        sequence = parse_index_value(parser)
        return with_attrs(cls(count.data, tables, lengths, sequence.data), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        return f"cache.pop {self.count.data} {self._group_text()} {self.sequence.data}"


@irdl_op_definition
class CacheResetWhereOp(_SequenceOp):
    """`cache.reset K, V [len] where m`: every sequence `b` with `m[b]` nonzero emptied in every
    table and `len[b] = 0` (a masked reset of chosen sequences of a batch)."""

    name = "oi.cache.reset_where"

    mask = prop_def(StringAttr)

    def __init__(self, tables: Sequence[str], lengths: str, mask: str):
        super().__init__(properties={**_group_props(tables, lengths), "mask": StringAttr(mask)})

    def print(self, printer: Printer) -> None:
        self._print_group(printer)
        printer.print_string(f" where @{self.mask.data}")
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> CacheResetWhereOp:
        tables, lengths = cls._parse_group(parser)
        parser.parse_keyword("where")
        mask = parser.parse_symbol_name().data
        return with_attrs(cls(tables, lengths, mask), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        return f"cache.reset {self._group_text()} where {self.mask.data}"


@irdl_op_definition
class BranchOp(IRDLOperation):
    """`branch b` or `branch c a b`: runs a block as a call, then continues after the branch."""

    name = "oi.branch"

    cond = opt_prop_def(StringAttr)
    then_block = prop_def(StringAttr)
    else_block = opt_prop_def(StringAttr)

    def __init__(self, then_block: str, cond: str | None = None, else_block: str | None = None):
        props: dict[str, Attribute] = {"then_block": StringAttr(then_block)}
        if cond is not None:
            props["cond"] = StringAttr(cond)
        if else_block is not None:
            props["else_block"] = StringAttr(else_block)
        super().__init__(properties=props)

    @property
    def names(self) -> list[str]:
        parts = [self.cond, self.then_block, self.else_block]
        return [p.data for p in parts if p is not None]

    def print(self, printer: Printer) -> None:
        printer.print_string(" " + ", ".join("@" + n for n in self.names))
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> BranchOp:
        pos = parser.pos
        names = _symbols(parser)
        if len(names) == 1:
            op = cls(names[0])
        elif len(names) == 3:
            op = cls(names[1], cond=names[0], else_block=names[2])
        else:
            parser.raise_error("branch expects condition and two target blocks", pos, parser.pos)
        return with_attrs(op, parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        return "branch " + " ".join(self.names)


@irdl_op_definition
class BarrierOp(IRDLOperation):
    """`barrier`: an ordering point; nothing moves across it."""

    name = "oi.barrier"

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    assembly_format = "attr-dict"

    def __init__(self):
        super().__init__()

    @property
    def description(self) -> str:
        return "barrier"


@irdl_op_definition
class DepOp(IRDLOperation):
    """`dep after(a) before(b)`: an explicit ordering edge between two names."""

    name = "oi.dep"

    after = prop_def(StringAttr)
    before = prop_def(StringAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, after: str, before: str):
        super().__init__(properties={"after": StringAttr(after), "before": StringAttr(before)})

    def print(self, printer: Printer) -> None:
        printer.print_string(f" after(@{self.after.data}) before(@{self.before.data})")
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> DepOp:
        parser.parse_keyword("after")
        with parser.in_parens():
            after = parser.parse_symbol_name().data
        parser.parse_keyword("before")
        with parser.in_parens():
            before = parser.parse_symbol_name().data
        return with_attrs(cls(after, before), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        return f"dep after({self.after.data}) before({self.before.data})"


@irdl_op_definition
class TransferOp(_MoveOp):
    """`transfer a >> b`: `b` becomes an alias of `a`'s buffer (no copy)."""

    name = "oi.transfer"

    SRC: ClassVar = VarRefAttr
    DST: ClassVar = VarRefAttr
    src = prop_def(VarRefAttr)
    dst = prop_def(VarRefAttr)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())


#: How deeply `oi.loop`s may nest: the front end and the verifier refuse a deeper one (at that
#: loop) before anything recursive (printing, lowering, the cpu build) walks it. Both devices run
#: this many levels.
MAX_LOOP_DEPTH = 64


@irdl_op_definition
class LoopOp(IRDLOperation):
    """`loop name (i in a..b) { ... }`: runs the body for i = a .. b-1; bounds are read once."""

    name = "oi.loop"

    label = prop_def(StringAttr)
    index = prop_def(StringAttr)
    start = prop_def(IntAttr | StringAttr)
    end = prop_def(IntAttr | StringAttr)
    body = region_def("single_block")

    traits = traits_def(NoTerminator())  # no effect trait: an empty loop still runs (and traces)

    def __init__(self, label: str, index: str, start: int | str, end: int | str, body: Region | None = None):
        super().__init__(
            properties={
                "label": StringAttr(label),
                "index": StringAttr(index),
                "start": index_value(start),
                "end": index_value(end),
            },
            regions=[body or _body_region()],
        )

    @property
    def bounds(self) -> tuple[int | str, int | str]:
        return self.start.data, self.end.data

    def print(self, printer: Printer) -> None:
        s, e = self.bounds
        printer.print_string(f" {self.label.data} ({self.index.data} in {s} to {e})")
        _print_body(printer, self.body)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> LoopOp:
        label = parser.parse_identifier(" (a loop name)")
        with parser.in_parens():
            index = parser.parse_identifier(" (a loop index)")
            parser.parse_keyword("in")
            start = parse_index_value(parser)
            parser.parse_keyword("to")
            end = parse_index_value(parser)
        body = _parse_body(parser)
        return with_attrs(cls(label, index, start.data, end.data, body), parse_attr_dict(parser, cls))

    @property
    def description(self) -> str:
        s, e = self.bounds
        return f"loop {self.label.data} ({self.index.data} in {s}..{e})"


class _VarListOp(IRDLOperation):
    """Shared shape of `yield` and `await`: a non-empty list of variable names."""

    vars = prop_def(ArrayAttr[StringAttr])

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, names: Sequence[str]):
        super().__init__(properties={"vars": ArrayAttr([StringAttr(n) for n in names])})

    @property
    def var_names(self) -> list[str]:
        return [v.data for v in self.vars]

    def print(self, printer: Printer) -> None:
        printer.print_string(" " + ", ".join("@" + n for n in self.var_names))
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser):
        names = _symbols(parser)
        return with_attrs(cls(names), parse_attr_dict(parser, cls))

    def verify_(self) -> None:
        if not self.vars.data:
            raise VerifyException(f"{self.name.removeprefix('oi.')} expects at least one variable")

    @property
    def description(self) -> str:
        return f"{self.name.removeprefix('oi.')} {', '.join(self.var_names)}"


@irdl_op_definition
class YieldOp(_VarListOp):
    """`yield a, b`: in the entry block, starts the async blocks on a snapshot of these vars."""

    name = "oi.yield"


@irdl_op_definition
class AwaitOp(_VarListOp):
    """`await a, b`: joins the async blocks and merges the variables they changed."""

    name = "oi.await"


@irdl_op_definition
class ReturnOp(IRDLOperation):
    """`return`: leaves the current block (or, inside a loop, the loop)."""

    name = "oi.return"

    assembly_format = "attr-dict"

    def __init__(self):
        super().__init__()

    @property
    def description(self) -> str:
        return "return"


STATEMENT_OPS = (
    AssignOp,
    NamedOp,
    CacheReadOp,
    CacheWriteOp,
    CacheIncrementOp,
    CacheDecrementOp,
    CacheResetOp,
    CacheAppendOp,
    CacheSaveOp,
    CacheLoadOp,
    CacheForkOp,
    CachePopOp,
    CacheResetWhereOp,
    BranchOp,
    BarrierOp,
    DepOp,
    TransferOp,
    LoopOp,
    YieldOp,
    AwaitOp,
    ReturnOp,
)

OI = Dialect("oi", [GraphOp, VarOp, BlockOp, *STATEMENT_OPS, *LOWERED_OPS, *NEST_OPS], [TensorType, DimAttr, VarRefAttr, SliceAttr, CacheAccessAttr])


def describe(op) -> str:
    """Upstream's `describe_node` text for a statement (used in traces and diagnostics)."""
    if isinstance(op, AssignOp):
        return f"assign {op.var_name}"
    return op.description
