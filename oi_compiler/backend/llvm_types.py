"""Builtin types as llvmlite types, and the constants and conversions the translator shares.

`index` is `i64`; integers of 1, 4, 8, 16, 32 and 64 bits keep their width whatever their
signedness (`ui8` and `i8` are both `i8`; wider ones would need libgcc's `__divti3` & co.);
`f16` is `half`, `bf16` is `bfloat`, `f32` and `f64` are `float` and `double`. A memref is not
one LLVM type: the translator carries its descriptor fields separately
(`llvm_memref.MemRefDescriptor`), so only element types are converted here.

`bfloat` arithmetic is computed in `float`, widened and rounded back with integer ops
(`widen_bf16`, `round_to_bf16`: round to nearest, ties to even): on x86 LLVM lowers
`fptrunc float to bfloat` to a per-element call of compiler-rt's `__truncsfbf2`.

`f8E5M2` has no LLVM type: its values are their `i8` bit pattern, which memrefs, `select`,
`bitcast` and control flow move as is, and `extf`/`truncf` convert (`f8_to_half`,
`round_to_f8`); arithmetic on it is refused (the translator checks) — extend to f32 first.
"""

from __future__ import annotations

import functools
import ml_dtypes
import numpy as np
from llvmlite import ir
from llvmlite.ir.types import _BaseFloatType
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float8E5M2Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    MemRefType,
)
from xdsl.ir import Attribute

from oi_compiler.errors import PassError


class BFloatType(_BaseFloatType):
    """LLVM's `bfloat`, which llvmlite.ir lacks; constants print as `0xR` and 4 hex digits."""

    null = "0xR0000"
    intrinsic_name = "bf16"

    def __str__(self) -> str:
        return "bfloat"

    def format_constant(self, value: float) -> str:
        bits = int(np.array(value, dtype=ml_dtypes.bfloat16).view(np.uint16))
        return f"0xR{bits:04X}"


BFloatType._create_instance()

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
HALF = ir.HalfType()
F32 = ir.FloatType()
F64 = ir.DoubleType()
PTR = ir.PointerType()
INDEX = I64
INTEGER_WIDTHS = (1, 4, 8, 16, 32, 64)

_FLOATS: dict[type[Attribute], ir.Type] = {
    Float16Type: ir.HalfType(),
    BFloat16Type: BFloatType(),
    Float32Type: ir.FloatType(),
    Float64Type: ir.DoubleType(),
}
_FLOAT_BITS = {"half": 16, "bfloat": 16, "float": 32, "double": 64}


def scalar_type(attr: Attribute) -> ir.Type:
    """The LLVM type of a builtin scalar type; PassError for anything else."""
    if isinstance(attr, IntegerType) and attr.width.data in INTEGER_WIDTHS:
        return ir.IntType(attr.width.data)
    if isinstance(attr, IndexType):
        return INDEX
    if type(attr) in _FLOATS:
        return _FLOATS[type(attr)]
    if isinstance(attr, Float8E5M2Type):
        return I8  # its bit pattern: only moved, compared for identity, or converted (see f8_*)
    raise PassError(f"backend: unsupported type {attr}")


def constant(attr: Attribute, value: int | float) -> ir.Constant:
    """A scalar constant of builtin type `attr` (an f8E5M2 value as its bit pattern)."""
    if isinstance(attr, Float8E5M2Type):
        return ir.Constant(I8, int(np.array(value, dtype=ml_dtypes.float8_e5m2).view(np.uint8)))
    return ir.Constant(scalar_type(attr), value)


def element_type(memref: MemRefType) -> ir.Type:
    """The LLVM type of a memref's elements."""
    return scalar_type(memref.element_type)


def bit_width(ty: ir.Type) -> int:
    """Bits in an integer or float LLVM type."""
    return ty.width if isinstance(ty, ir.IntType) else _FLOAT_BITS[str(ty)]


def is_float(ty: ir.Type) -> bool:
    return isinstance(ty, _BaseFloatType)


def is_bfloat(ty: ir.Type) -> bool:
    return isinstance(ty, BFloatType)


@functools.lru_cache(maxsize=4096)
def index_const(value: int) -> ir.Constant:
    """An `index` constant, shared: the translator makes tens of thousands (offsets, sizes,
    strides, GEP indices) of a few values, and a shared one is built and printed once."""
    return ir.Constant(INDEX, value)


def round_to_bf16(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """A `float` rounded to the nearest `bfloat` (ties to even); NaNs stay quiet NaNs."""
    bits = builder.bitcast(value, I32)
    lsb = builder.and_(builder.lshr(bits, ir.Constant(I32, 16)), ir.Constant(I32, 1))
    rounded = builder.add(builder.add(bits, ir.Constant(I32, 0x7FFF)), lsb)
    quiet_nan = builder.or_(bits, ir.Constant(I32, 0x400000))
    is_nan = builder.fcmp_unordered("uno", value, value)
    chosen = builder.select(is_nan, quiet_nan, rounded)
    high = builder.trunc(builder.lshr(chosen, ir.Constant(I32, 16)), I16)
    return builder.bitcast(high, BFloatType())


def widen_bf16(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """A `bfloat` as the `float` it denotes (exact: its bits become the high half); others unchanged.

    Integer ops rather than `fpext`: LLVM would otherwise narrow `op(fpext a, fpext b)` back to a
    bfloat op, whose x86 lowering calls `__truncsfbf2` per element.
    """
    if not is_bfloat(value.type):
        return value
    bits = builder.zext(builder.bitcast(value, I16), I32)
    return builder.bitcast(builder.shl(bits, ir.Constant(I32, 16)), F32)


def convert_float(builder: ir.IRBuilder, value: ir.Value, target: ir.Type) -> ir.Value:
    """`value` (a float) converted to another float type, without LLVM's 16-bit libcalls.

    Narrowing `double` to a 16-bit type goes through `float`: a double rounding, as ml_dtypes
    does for bfloat16 (numpy's float64 -> float16 rounds once, and can differ in the last bit).
    """
    if value.type == target:
        return value
    value = widen_bf16(builder, value)
    if bit_width(target) == 16 and value.type != F32:
        value = _float_resize(builder, value, F32)
    if is_bfloat(target):
        return round_to_bf16(builder, value)
    return _float_resize(builder, value, target)


def f8_to_half(builder: ir.IRBuilder, bits: ir.Value) -> ir.Value:
    """An f8E5M2 bit pattern as the `half` it denotes (exact: e5m2 is f16's top byte)."""
    return builder.bitcast(builder.shl(builder.zext(bits, I16), ir.Constant(I16, 8)), HALF)


def round_to_f8(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """A `float` rounded to the nearest f8E5M2 (ties to even; NaN keeps its sign), as its bits.

    First to `half` rounding to odd (a `half` rounded to nearest, moved one step toward zero
    when that overshot, then made odd when inexact): with 8 spare bits this keeps the final
    rounding of the top byte correct, as one direct rounding would be.
    """
    half = builder.fptrunc(value, HALF)
    back = builder.fpext(half, F32)
    bits = builder.bitcast(half, I16)
    sign = builder.and_(bits, ir.Constant(I16, 0x8000))
    magnitude = builder.and_(bits, ir.Constant(I16, 0x7FFF))
    negative = builder.icmp_signed("<", builder.bitcast(value, I32), ir.Constant(I32, 0))
    overshot = builder.select(negative, builder.fcmp_ordered("<", back, value),
                              builder.fcmp_ordered(">", back, value))  # fmt: skip
    odd = builder.or_(builder.sub(magnitude, builder.zext(overshot, I16)), ir.Constant(I16, 1))
    magnitude = builder.select(builder.fcmp_ordered("!=", back, value), odd, magnitude)
    tie_to_even = builder.and_(builder.lshr(magnitude, ir.Constant(I16, 8)), ir.Constant(I16, 1))
    rounded = builder.add(builder.add(magnitude, ir.Constant(I16, 0x7F)), tie_to_even)
    rounded = builder.lshr(rounded, ir.Constant(I16, 8))
    rounded = builder.select(builder.fcmp_unordered("uno", value, value), ir.Constant(I16, 0x7E), rounded)
    return builder.trunc(builder.or_(rounded, builder.lshr(sign, ir.Constant(I16, 8))), I8)


def round_to_odd_f32(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """A `double` rounded to `float` to odd: truncated toward zero, the last bit set when inexact.

    Rounding that `float` again to a format of 22 bits or fewer (half, bfloat) gives the
    correctly rounded result of `value`: no double rounding. Overflow gives +-FLT_MAX (odd),
    which still rounds to infinity; NaN stays NaN.
    """
    narrow = builder.fptrunc(value, F32)
    back = builder.fpext(narrow, F64)
    bits = builder.bitcast(narrow, I32)
    negative = builder.icmp_signed("<", builder.bitcast(value, I64), ir.Constant(I64, 0))
    overshot = builder.select(negative, builder.fcmp_ordered("<", back, value),
                              builder.fcmp_ordered(">", back, value))  # fmt: skip
    odd = builder.or_(builder.sub(bits, builder.zext(overshot, I32)), ir.Constant(I32, 1))
    chosen = builder.select(builder.fcmp_ordered("!=", back, value), odd, bits)
    return builder.bitcast(chosen, F32)


def narrow_double(builder: ir.IRBuilder, value: ir.Value, target: ir.Type) -> ir.Value:
    """A `double` rounded once (to nearest, ties to even) to `half` or `bfloat` (via a `float`
    rounded to odd), or to `float`."""
    if target == F32:
        return builder.fptrunc(value, F32)
    odd = round_to_odd_f32(builder, value)
    return round_to_bf16(builder, odd) if is_bfloat(target) else builder.fptrunc(odd, target)


def widen_to_double(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """A `half`, `bfloat`, `float` or `double` as the `double` it denotes (exact)."""
    value = widen_bf16(builder, value)
    if value.type == HALF:
        value = builder.fpext(value, F32)
    return value if value.type == F64 else builder.fpext(value, F64)


def _float_resize(builder: ir.IRBuilder, value: ir.Value, target: ir.Type) -> ir.Value:
    if value.type == target:
        return value
    if bit_width(target) > bit_width(value.type):
        return builder.fpext(value, target)
    return builder.fptrunc(value, target)
