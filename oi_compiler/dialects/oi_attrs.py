"""Types and attributes of the `oi` dialect.

Graph-level IR names OpenInfer variables symbolically (as `ml_program` names its
globals), so what an op reads or writes is an attribute, not an SSA value:

- `!oi.tensor<f32[B, 3*D]>`: a declared variable's type: a DSL dtype and symbolic dims;
- `#oi.ref<@W[l, 2]>`: a variable reference, optionally indexed (prefix tables);
- `#oi.access<@K[0, :, 2:, :-3]>`: a cache access, whose indices are values or
  start-inclusive, end-exclusive slices (`s:e`, either end optional, a negative
  end counts from the size); `@K` and `@K[]` differ, as in the DSL.

Index values are integer literals (`IntAttr`) or identifiers (`StringAttr`: a
size variable, a loop index or a persistent scalar, resolved at run time).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import ArrayAttr, IntAttr, NoneAttr, StringAttr, TypeAttribute
from xdsl.ir import Attribute, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition, param_def
from xdsl.parser import AttrParser
from xdsl.printer import Printer

from oi_compiler.dtypes import DTYPE_NAMES, dtype_name, dtype_type

IndexValue = IntAttr | StringAttr


# --- index values ------------------------------------------------------------------


def index_value(v: int | str) -> IndexValue:
    return IntAttr(v) if isinstance(v, int) else StringAttr(v)


def index_value_text(v: IndexValue) -> str:
    return str(v.data)


def parse_index_value(parser: AttrParser) -> IndexValue:
    if (n := parser.parse_optional_integer(allow_boolean=False, allow_negative=True)) is not None:
        return IntAttr(n)
    return StringAttr(parser.parse_identifier(" (an integer or an identifier)"))


def _parse_optional_index_value(parser: AttrParser) -> IndexValue | None:
    if (n := parser.parse_optional_integer(allow_boolean=False, allow_negative=True)) is not None:
        return IntAttr(n)
    if (ident := parser.parse_optional_identifier()) is not None:
        return StringAttr(ident)
    return None


class _BodySyntax:
    """For attributes whose generic form wraps their op-level syntax: `#oi.ref<@W[l]>`."""

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            self.print_body(printer)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            return cls.parse_body(parser).parameters


# --- dims and tensor types ----------------------------------------------------------


@irdl_attr_definition
class DimAttr(ParametrizedAttribute):
    """One dimension of a declared shape: an integer, a size name, or a product `a*b`."""

    name = "oi.dim"

    factors: ArrayAttr[IndexValue] = param_def()

    def __init__(self, *factors: int | str):
        super().__init__(ArrayAttr([index_value(f) for f in factors]))

    @property
    def text(self) -> str:
        return "*".join(index_value_text(f) for f in self.factors)

    def size(self, sizevars: Mapping[str, int]) -> int | None:
        """The dimension's value with these size variables, or None when one of its names is unknown."""
        value = 1
        for factor in self.factors:
            if isinstance(factor, IntAttr):
                value *= factor.data
            elif factor.data in sizevars:
                value *= sizevars[factor.data]
            else:
                return None
        return value

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.text}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            return (_parse_dim(parser).factors,)

    def verify(self) -> None:
        from xdsl.utils.exceptions import VerifyException

        if len(self.factors) not in (1, 2):
            raise VerifyException("a dimension is one atom or a product of two")


def _parse_dim(parser: AttrParser) -> DimAttr:
    first = parse_index_value(parser)
    if parser.parse_optional_punctuation("*") is not None:
        return DimAttr(first.data, parse_index_value(parser).data)
    return DimAttr(first.data)


def _dim_from(d: int | str) -> DimAttr:
    """A dim from an int or its text (`"B"`, `"3*D"`)."""
    if isinstance(d, int):
        return DimAttr(d)
    return DimAttr(*(int(f) if f.strip().isdigit() else f.strip() for f in d.split("*")))


@irdl_attr_definition
class TensorType(_BodySyntax, ParametrizedAttribute, TypeAttribute):
    """The type of a declared variable: a DSL dtype and dims (none for a scalar)."""

    name = "oi.tensor"

    element_type: Attribute = param_def()
    dims: ArrayAttr[DimAttr] = param_def()

    def __init__(self, dtype: str | Attribute, dims: Sequence[DimAttr | int | str] = ()):
        element = dtype_type(dtype) if isinstance(dtype, str) else dtype
        dim_attrs = [d if isinstance(d, DimAttr) else _dim_from(d) for d in dims]
        super().__init__(element, ArrayAttr(dim_attrs))

    @property
    def dtype(self) -> str:
        return dtype_name(self.element_type) or str(self.element_type)

    @property
    def dim_texts(self) -> list[str]:
        return [d.text for d in self.dims]

    @property
    def is_scalar(self) -> bool:
        return not self.dims.data

    def print_body(self, printer: Printer) -> None:
        printer.print_string(self.dtype)
        if self.dims.data:
            printer.print_string("[" + ", ".join(self.dim_texts) + "]")

    @classmethod
    def parse_body(cls, parser: AttrParser) -> TensorType:
        pos = parser.pos
        dtype = parser.parse_identifier(" (a dtype)")
        if dtype not in DTYPE_NAMES:
            parser.raise_error(f"unsupported dtype {dtype}", pos, parser.pos)
        dims: list[DimAttr] = []
        if parser.parse_optional_punctuation("[") is not None:
            if parser.parse_optional_punctuation("]") is None:
                dims = parser.parse_comma_separated_list(parser.Delimiter.NONE, lambda: _parse_dim(parser))
                parser.parse_punctuation("]")
        return TensorType(dtype, dims)

    def verify(self) -> None:
        from xdsl.utils.exceptions import VerifyException

        if dtype_name(self.element_type) is None:
            raise VerifyException(f"unsupported dtype {self.element_type}")


# --- references and cache accesses ----------------------------------------------------


@irdl_attr_definition
class VarRefAttr(_BodySyntax, ParametrizedAttribute):
    """A reference to a variable; indices select an entry of a prefix table (`W[l, 2]`)."""

    name = "oi.ref"

    var: StringAttr = param_def()
    indices: ArrayAttr[IndexValue] = param_def()

    def __init__(self, var: str, indices: Sequence[int | str] = ()):
        super().__init__(StringAttr(var), ArrayAttr([index_value(i) for i in indices]))

    @property
    def var_name(self) -> str:
        return self.var.data

    @property
    def text(self) -> str:
        """The DSL spelling, as upstream flattens it (`W[l,2]`)."""
        if not self.indices.data:
            return self.var.data
        return f"{self.var.data}[{','.join(index_value_text(i) for i in self.indices)}]"

    def print_body(self, printer: Printer) -> None:
        printer.print_symbol_name(self.var.data)
        if self.indices.data:
            printer.print_string("[" + ", ".join(index_value_text(i) for i in self.indices) + "]")

    @classmethod
    def parse_body(cls, parser: AttrParser) -> VarRefAttr:
        var = parser.parse_symbol_name().data
        indices: list[IndexValue] = []
        if parser.parse_optional_punctuation("[") is not None:
            indices = parser.parse_comma_separated_list(parser.Delimiter.NONE, lambda: parse_index_value(parser))
            parser.parse_punctuation("]")
        return VarRefAttr(var, [i.data for i in indices])


@irdl_attr_definition
class SliceAttr(ParametrizedAttribute):
    """A slice index `start:end` of a cache access; either end may be absent."""

    name = "oi.slice"

    start: IndexValue | NoneAttr = param_def()
    end: IndexValue | NoneAttr = param_def()

    def __init__(self, start: int | str | None = None, end: int | str | None = None):
        super().__init__(
            NoneAttr() if start is None else index_value(start),
            NoneAttr() if end is None else index_value(end),
        )

    @property
    def bounds(self) -> tuple[int | str | None, int | str | None]:
        return tuple(None if isinstance(b, NoneAttr) else b.data for b in (self.start, self.end))

    @property
    def text(self) -> str:
        """The DSL spelling (`2..`, `..-3`, `..`)."""
        s, e = self.bounds
        return f"{'' if s is None else s}..{'' if e is None else e}"

    @property
    def ir_text(self) -> str:
        s, e = self.bounds
        return f"{'' if s is None else s}:{'' if e is None else e}"

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.ir_text}>")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            index = _parse_access_index(parser)
        if not isinstance(index, SliceAttr):
            parser.raise_error("expected a slice `start:end`")
        return (index.start, index.end)


CacheIndex = IndexValue | SliceAttr


def cache_index_text(index: CacheIndex, *, dsl: bool = False) -> str:
    if isinstance(index, SliceAttr):
        return index.text if dsl else index.ir_text
    return index_value_text(index)


def _parse_access_index(parser: AttrParser) -> CacheIndex:
    start = None
    if parser.parse_optional_punctuation(":") is None:
        start = _parse_optional_index_value(parser)
        if start is None:
            parser.raise_error("expected an index value or a slice")
        if parser.parse_optional_punctuation(":") is None:
            return start
    end = _parse_optional_index_value(parser)
    return SliceAttr(None if start is None else start.data, None if end is None else end.data)


@irdl_attr_definition
class CacheAccessAttr(_BodySyntax, ParametrizedAttribute):
    """What a cache op touches: `@A` (unbracketed), `@A[]`, or `@A[i, s:e, ...]`."""

    name = "oi.access"

    var: StringAttr = param_def()
    indices: ArrayAttr[CacheIndex] = param_def()
    bracketed: IntAttr = param_def()

    def __init__(self, var: str, indices: Sequence[CacheIndex | int | str] = (), bracketed: bool | None = None):
        idx = [i if isinstance(i, Attribute) else index_value(i) for i in indices]
        if bracketed is None:
            bracketed = bool(idx)
        super().__init__(StringAttr(var), ArrayAttr(idx), IntAttr(int(bracketed)))

    @property
    def var_name(self) -> str:
        return self.var.data

    @property
    def is_bracketed(self) -> bool:
        return bool(self.bracketed.data)

    @property
    def has_slices(self) -> bool:
        return any(isinstance(i, SliceAttr) for i in self.indices)

    @property
    def text(self) -> str:
        """As upstream's `describe_node` prints it (`A[i,0..3]`; a full slice prints as nothing: `A[,1]`)."""
        if not self.is_bracketed:
            return self.var.data

        def index_text(index: CacheIndex) -> str:
            if isinstance(index, SliceAttr) and index.bounds == (None, None):
                return ""
            return cache_index_text(index, dsl=True)

        return f"{self.var.data}[{','.join(index_text(i) for i in self.indices)}]"

    def print_body(self, printer: Printer) -> None:
        printer.print_symbol_name(self.var.data)
        if self.is_bracketed:
            printer.print_string("[" + ", ".join(cache_index_text(i) for i in self.indices) + "]")

    @classmethod
    def parse_body(cls, parser: AttrParser) -> CacheAccessAttr:
        var = parser.parse_symbol_name().data
        if parser.parse_optional_punctuation("[") is None:
            return CacheAccessAttr(var, (), bracketed=False)
        indices: list[CacheIndex] = []
        if parser.parse_optional_punctuation("]") is None:
            indices = parser.parse_comma_separated_list(parser.Delimiter.NONE, lambda: _parse_access_index(parser))
            parser.parse_punctuation("]")
        return CacheAccessAttr(var, indices, bracketed=True)


# --- discardable attributes in the ops' custom syntax ------------------------------------


def print_attr_dict(printer: Printer, op, *, exclude: Sequence[str] = ()) -> None:
    """The op's discardable attributes as ` {...}` (MLIR's `attr-dict`), nothing when there are none."""
    printer.print_op_attributes(op.attributes, reserved_attr_names=exclude)


def parse_attr_dict(parser: AttrParser, op_type) -> dict[str, Attribute]:
    """An optional `attr-dict`; a key that names one of `op_type`'s properties is an error."""
    reserved = op_type.get_irdl_definition().properties.keys()
    attrs = parser.parse_optional_attr_dict_with_reserved_attr_names(reserved)
    return dict(attrs.data) if attrs is not None else {}


def with_attrs(op, attrs: Mapping[str, Attribute]):
    """`op` with `attrs` added to its discardable attributes (for custom parsers)."""
    op.attributes.update(attrs)
    return op


def is_bare_identifier(text: str) -> bool:
    """Whether `text` lexes as one MLIR bare identifier (else it prints as a string literal)."""
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$.]*", text) is not None


def print_prop_dict(printer: Printer, props: Mapping[str, Attribute]) -> None:
    """Properties the custom syntax does not spell, as ` <{...}>` (MLIR's `prop-dict`), if any."""
    if props:
        printer.print_string(" <")
        printer.print_attr_dict(props)
        printer.print_string(">")


def parse_prop_dict(parser: AttrParser, op_type, spelled: Sequence[str] = ()) -> dict[str, Attribute]:
    """An optional `<{...}>` of `op_type`'s properties, none of them one in `spelled` (given by the syntax)."""
    pos = parser.pos
    props = parser.parse_optional_properties_dict()
    known = op_type.get_irdl_definition().properties.keys()
    for key in props:
        if key in spelled or key not in known:
            parser.raise_error(f"property {key!r} cannot be given here", pos, parser.pos)
    return props
