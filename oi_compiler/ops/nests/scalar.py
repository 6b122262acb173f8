"""Scalar arithmetic inside a nest body, in the reference's math dtypes.

A body computes exactly as the numpy reference does (`oi_compiler.ops.reference.core`):

* every value is first brought into its *math domain* (`Domain`): f8/f16/bf16/f32 into
  f32, f64 into f64, signed integers (i4 included) sign-extended into i64, unsigned
  integers and bool zero-extended into i64 (where comparisons, division and shifts are
  then the unsigned ones);
* the result goes back to the output dtype once (`narrow`): floats round (f64 math
  reaches f16/bf16 through f32, as `convert` does), integers keep their low bits (which
  is two's-complement wrap-around), bool is `value != 0`.

arith only takes signless integers, while the memrefs of unsigned dtypes hold `uiN`
elements, so `widen` turns a `uiN` value into `iN` with `builtin.unrealized_conversion_cast`
(a no-op reinterpretation) and `narrow` turns it back.

`Scalar(b, domain)` emits domain-aware ops at `b`'s insertion point (`s.add(x, y)`,
`s.lt(x, y)`, `s.const(1)`...), choosing arith's float, signed or unsigned variant.
"""

from __future__ import annotations

import math as pymath
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import arith
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import (
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    Signedness,
    UnrealizedConversionCastOp,
)
from xdsl.ir import Attribute, Operation, SSAValue

from oi_compiler.dtypes import FLOAT_DTYPES, dtype_type
from oi_compiler.ops.reference.settings import read_number

F32 = Float32Type()
F64 = Float64Type()
I1 = IntegerType(1)
I64 = IntegerType(64)
INDEX = IndexType()

FLOAT, SIGNED, UNSIGNED = "float", "signed", "unsigned"
SIGNED_DTYPES = frozenset({"i4", "i8", "i16", "i32", "i64"})


@dataclass(frozen=True)
class Domain:
    """Where a body computes: `kind` is float, signed or unsigned; `type` is f32, f64 or i64."""

    kind: str
    type: Attribute

    @property
    def is_float(self) -> bool:
        return self.kind == FLOAT


F32_DOMAIN = Domain(FLOAT, F32)
F64_DOMAIN = Domain(FLOAT, F64)
SIGNED_DOMAIN = Domain(SIGNED, I64)
UNSIGNED_DOMAIN = Domain(UNSIGNED, I64)


def domain_of(dtypes: Iterable[str]) -> Domain:
    """The math domain of these DSL dtypes (the reference's `core.math_dtype`)."""
    dtypes = list(dtypes)
    if any(d in FLOAT_DTYPES for d in dtypes):
        return F64_DOMAIN if "f64" in dtypes else F32_DOMAIN
    if any(d in SIGNED_DTYPES for d in dtypes):
        return SIGNED_DOMAIN
    return UNSIGNED_DOMAIN


def float_domain(dtypes: Iterable[str]) -> Domain:
    """f64 when any dtype is f64, else f32 (the decoder ops' rule)."""
    return F64_DOMAIN if "f64" in list(dtypes) else F32_DOMAIN


def require_float(op: str, dtypes: Iterable[str]) -> None:
    """The reference's refusal of integer inputs to float-only ops (`op exp does not support I32 inputs`)."""
    from oi_compiler.ops.reference.shapes import fail
    from oi_compiler.ops.registry import dtype_debug_name

    for d in dtypes:
        if d not in FLOAT_DTYPES:
            raise fail(op, f"does not support {dtype_debug_name(d)} inputs")


def bits(dtype: str) -> int:
    """The width of an integer or bool dtype."""
    return 1 if dtype == "bool" else int(dtype[1:])


def emit(b: Builder, op: Operation) -> SSAValue:
    """Insert `op` at `b` and return its (single) result."""
    b.insert(op)
    return op.results[0]


def reassociable(total: SSAValue) -> SSAValue:
    """`total`, a step `acc + x` of a float sum whose reference fixes no order (numpy's `sum`,
    `mean` and `einsum` are pairwise or blocked), marked `reassoc`: LLVM may then keep vector
    partial sums and add them up at the end. Each term is still computed and rounded alone;
    sums the reference adds in order (sum_axis, mean_axis, matmul) must not use this."""
    if isinstance(total.owner, arith.AddfOp):
        total.owner.fastmath = arith.FastMathFlagsAttr(["reassoc"])
    return total


# --- constants -----------------------------------------------------------------------------------


def round_f32(value: float) -> float:
    """`value` rounded to the nearest float32 (overflow gives +-inf), as a Python float."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return pymath.copysign(pymath.inf, value)


def wrap_signed(value: int, width: int) -> int:
    """`value` modulo 2**width, as the signed integer with those bits."""
    value &= (1 << width) - 1
    return value - (1 << width) if width > 1 and value >= 1 << (width - 1) else value


def float_const(b: Builder, value: float, type_: Attribute) -> SSAValue:
    value = float(value)
    if isinstance(type_, Float32Type):
        value = round_f32(value)
    return emit(b, arith.ConstantOp(FloatAttr(value, type_)))


def int_const(b: Builder, value: int, type_: Attribute) -> SSAValue:
    """An integer constant of a signless integer type (wrapped to its width) or index."""
    if isinstance(type_, IndexType):
        return emit(b, arith.ConstantOp(IntegerAttr.from_index_int_value(int(value))))
    width = type_.width.data
    if width == 1:
        return emit(b, arith.ConstantOp(IntegerAttr(int(value) & 1, I1)))
    return emit(b, arith.ConstantOp(IntegerAttr(wrap_signed(int(value), width), type_)))


def index_const(b: Builder, value: int) -> SSAValue:
    return int_const(b, value, INDEX)


# --- storage <-> math ----------------------------------------------------------------------------


def signless(b: Builder, value: SSAValue) -> SSAValue:
    """`value` as a signless integer (unsigned storage types are reinterpreted)."""
    t = value.type
    if isinstance(t, IntegerType) and t.signedness.data != Signedness.SIGNLESS:
        return emit(b, UnrealizedConversionCastOp.get([value], [IntegerType(t.width.data)]))
    return value


def as_storage(b: Builder, value: SSAValue, dtype: str) -> SSAValue:
    """A signless integer `value` reinterpreted as `dtype`'s storage type (uiN for unsigned)."""
    target = dtype_type(dtype)
    if value.type == target:
        return value
    return emit(b, UnrealizedConversionCastOp.get([value], [target]))


def resize_float(b: Builder, value: SSAValue, target: Attribute) -> SSAValue:
    """extf/truncf between float types (nothing when the types agree)."""
    source = value.type
    if source == target:
        return value
    if _float_width(target) > _float_width(source):
        return emit(b, arith.ExtFOp(value, target))
    return emit(b, arith.TruncFOp(value, target))


def _float_width(t: Attribute) -> int:
    return t.bitwidth  # type: ignore[attr-defined]


def resize_int(b: Builder, value: SSAValue, width: int, signed: bool) -> SSAValue:
    """A signless integer extended (sign or zero) or truncated to `width` bits."""
    source = value.type.width.data  # type: ignore[attr-defined]
    target = IntegerType(width)
    if source == width:
        return value
    if source > width:
        return emit(b, arith.TruncIOp(value, target))
    return emit(b, (arith.ExtSIOp if signed else arith.ExtUIOp)(value, target))


def widen(b: Builder, value: SSAValue, dtype: str, domain: Domain) -> SSAValue:
    """A stored element of `dtype` as a value of `domain` (integers into a float domain convert)."""
    if dtype in FLOAT_DTYPES:  # f8 too: extf to f32 (the backend's only f8 arithmetic)
        if not domain.is_float:
            raise ValueError(f"cannot widen {dtype} into an integer domain")
        return resize_float(b, value, domain.type)
    raw = signless(b, value)
    signed = dtype in SIGNED_DTYPES
    if domain.is_float:
        return emit(b, (arith.SIToFPOp if signed else arith.UIToFPOp)(raw, domain.type))
    return resize_int(b, raw, 64, signed)


def narrow(b: Builder, value: SSAValue, domain: Domain, dtype: str) -> SSAValue:
    """A `domain` value converted to a stored element of `dtype` (the reference's `convert`)."""
    if dtype == "bool":
        if value.type == I1:  # already a truth value (a comparison)
            return value
        if domain.is_float:
            return emit(b, arith.CmpfOp(value, float_const(b, 0.0, domain.type), "une"))
        return emit(b, arith.CmpiOp(value, int_const(b, 0, domain.type), "ne"))
    if dtype in FLOAT_DTYPES:
        if not domain.is_float:
            raise ValueError(f"integer results need an explicit rounding to become {dtype}")
        if dtype != "f64":
            value = resize_float(b, value, F32)  # f64 math reaches narrow floats through f32
        return resize_float(b, value, dtype_type(dtype))
    if domain.is_float:
        raise ValueError(f"float results need an explicit rounding to become {dtype}")
    return as_storage(b, resize_int(b, value, bits(dtype), signed=True), dtype)


# --- domain-aware ops ----------------------------------------------------------------------------

_CMPF = {"eq": "oeq", "ne": "une", "lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge"}
_CMPI_SIGNED = {"eq": "eq", "ne": "ne", "lt": "slt", "le": "sle", "gt": "sgt", "ge": "sge"}
_CMPI_UNSIGNED = {"eq": "eq", "ne": "ne", "lt": "ult", "le": "ule", "gt": "ugt", "ge": "uge"}


def float_setting(op: str, settings: Mapping[str, Any], name: str, default: Any) -> float | SSAValue:
    """A float-domain setting: a number, or the f64 `SSAValue` of a variable read at run time
    (`x = clamp(y, min=lo)`), which `Scalar.const` rounds to its domain as it would a number."""
    value = settings.get(name)
    if isinstance(value, SSAValue):
        return value
    return float(read_number(op, settings, name, default))


class Scalar:
    """Emits arithmetic of one math domain at a builder's insertion point."""

    def __init__(self, b: Builder, domain: Domain) -> None:
        self.b = b
        self.domain = domain

    @property
    def is_float(self) -> bool:
        return self.domain.is_float

    @property
    def signed(self) -> bool:
        return self.domain.kind == SIGNED

    def _emit(self, op: Operation) -> SSAValue:
        return emit(self.b, op)

    # conversions and constants
    def widen(self, value: SSAValue, dtype: str) -> SSAValue:
        return widen(self.b, value, dtype, self.domain)

    def narrow(self, value: SSAValue, dtype: str) -> SSAValue:
        return narrow(self.b, value, self.domain, dtype)

    def const(self, value: Any) -> SSAValue:
        if isinstance(value, SSAValue):  # a setting read at run time: f64 (`float_setting`) rounded, or i64
            if not self.is_float:
                return resize_int(self.b, value, self.domain.type.width.data, signed=True)
            return resize_float(self.b, value, self.domain.type)
        if self.is_float:
            return float_const(self.b, float(value), self.domain.type)
        return int_const(self.b, int(value), self.domain.type)

    # arithmetic
    def add(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(arith.AddfOp(x, y) if self.is_float else arith.AddiOp(x, y))

    def sub(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(arith.SubfOp(x, y) if self.is_float else arith.SubiOp(x, y))

    def mul(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(arith.MulfOp(x, y) if self.is_float else arith.MuliOp(x, y))

    def divf(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(arith.DivfOp(x, y))

    def div_int(self, x: SSAValue, y: SSAValue) -> SSAValue:
        """Truncating integer division; `y` must be non-zero (and not -1 with x = i64 min)."""
        return self._emit(arith.DivSIOp(x, y) if self.signed else arith.DivUIOp(x, y))

    def rem_int(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(arith.RemSIOp(x, y) if self.signed else arith.RemUIOp(x, y))

    def neg(self, x: SSAValue) -> SSAValue:
        if self.is_float:
            return self._emit(arith.NegfOp(x))
        return self.sub(self.const(0), x)

    def cmp(self, predicate: str, x: SSAValue, y: SSAValue) -> SSAValue:
        """eq ne lt le gt ge; floats are ordered (false on NaN) except ne."""
        if self.is_float:
            return self._emit(arith.CmpfOp(x, y, _CMPF[predicate]))
        table = _CMPI_SIGNED if self.signed else _CMPI_UNSIGNED
        return self._emit(arith.CmpiOp(x, y, table[predicate]))

    def lt(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self.cmp("lt", x, y)

    def gt(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self.cmp("gt", x, y)

    def select(self, cond: SSAValue, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(arith.SelectOp(cond, x, y))

    def minimum(self, x: SSAValue, y: SSAValue) -> SSAValue:
        """Float min ignoring a NaN operand (numpy fmin); integer min."""
        if self.is_float:
            return self._emit(arith.MinnumfOp(x, y))
        return self._emit(arith.MinSIOp(x, y) if self.signed else arith.MinUIOp(x, y))

    def maximum(self, x: SSAValue, y: SSAValue) -> SSAValue:
        """Float max ignoring a NaN operand (numpy fmax); integer max."""
        if self.is_float:
            return self._emit(arith.MaxnumfOp(x, y))
        return self._emit(arith.MaxSIOp(x, y) if self.signed else arith.MaxUIOp(x, y))

    def max_propagating(self, x: SSAValue, y: SSAValue) -> SSAValue:
        """Float max that propagates NaN (numpy `max`)."""
        return self._emit(arith.MaximumfOp(x, y))

    def bool_and(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(arith.AndIOp(x, y))

    def bool_or(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(arith.OrIOp(x, y))

    def unary(self, op_class: type[Operation], x: SSAValue) -> SSAValue:
        """A `math` dialect op on one float value."""
        return self._emit(op_class(x))

    def pow(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self._emit(mathd.PowFOp(x, y))

    def exp(self, x: SSAValue) -> SSAValue:
        return self._emit(mathd.ExpOp(x))

    def sqrt(self, x: SSAValue) -> SSAValue:
        return self._emit(mathd.SqrtOp(x))

    def abs(self, x: SSAValue) -> SSAValue:
        if self.is_float:
            return self._emit(mathd.AbsFOp(x))
        if not self.signed:
            return x
        return self.select(self.lt(x, self.const(0)), self.neg(x), x)

    def is_zero(self, x: SSAValue) -> SSAValue:
        return self.cmp("eq", x, self.const(0))

    def from_index(self, value: SSAValue) -> SSAValue:
        """An index value (non-negative) in this domain."""
        as_i64 = self._emit(arith.IndexCastOp(value, I64))
        if self.is_float:
            return self._emit(arith.UIToFPOp(as_i64, self.domain.type))
        return as_i64
