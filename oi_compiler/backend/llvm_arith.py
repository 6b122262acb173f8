"""The `arith` and `math` dialects' emitters: one table entry per op.

Integer ops map to LLVM instructions (`overflow<nsw, nuw>` becomes the instruction's flags) or
to `llvm.smax`-style intrinsics; `floordivsi`/`ceildivsi`/`ceildivui` are expanded from `sdiv`
and `srem` as MLIR's arith-expand does. Float ops carry the op's `fastmath` flags. `math.exp`,
`log`, `tanh` and `erf` are `llvm_vecmath`'s inline functions (branch-free, so loops of them
vectorise); other `math` ops use LLVM intrinsics where LLVM has one, otherwise libm (`sinhf`,
`atanf`, ...), which MCJIT resolves from the process. 16-bit floats: `math` computes in `float`
and rounds back (as numpy does for float16); `bf16` arithmetic also does, since LLVM's bfloat
rounding is a libcall (see `llvm_types.round_to_bf16`). Exceptions that must round once:
`math.fma` on 16-bit floats (`emit_fma`) and `sitofp`/`uitofp` to `bf16`
(`int_to_double_for_bf16`) go through `double` and round to odd before the final rounding;
`math.fpowi` is `pow` in `double` with the sign fixed by the exponent's parity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from llvmlite import ir
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import Float8E5M2Type, FloatAttr, IntegerAttr
from xdsl.ir import Operation

from oi_compiler.backend import llvm_vecmath
from oi_compiler.backend.llvm_memref import Emitter, LoweredValue, MemRefDescriptor, flatten, unflatten
from oi_compiler.backend.llvm_types import (
    F32,
    F64,
    I1,
    I64,
    bit_width,
    constant,
    convert_float,
    f8_to_half,
    is_bfloat,
    narrow_double,
    round_to_f8,
    scalar_type,
    widen_bf16,
    widen_to_double,
)
from oi_compiler.errors import PassError

if TYPE_CHECKING:
    from oi_compiler.backend.llvm import FunctionEmitter

_ALL_FAST = frozenset({"reassoc", "nnan", "ninf", "nsz", "arcp", "contract", "afn"})


def fastmath_flags(op: Operation) -> tuple[str, ...]:
    """The op's `fastmath<...>` as LLVM flags (MLIR and LLVM spell them alike)."""
    attr = getattr(op, "fastmath", None)
    flags = frozenset(str(flag) for flag in attr.data) if attr is not None else frozenset()
    return ("fast",) if flags == _ALL_FAST else tuple(sorted(flags))


def overflow_flags(op: Operation) -> tuple[str, ...]:
    attr = getattr(op, "overflow_flags", None)
    return tuple(sorted(str(flag) for flag in attr.data)) if attr is not None else ()


def _operands(fx: FunctionEmitter, op: Operation) -> list[ir.Value]:
    return [fx.value(v) for v in op.operands]


def _result_type(op: Operation) -> ir.Type:
    return scalar_type(op.results[0].type)


# ----------------------------------------------------------------------------- integers


def int_instruction(name: str) -> Emitter:
    """An LLVM binary instruction (`add`, `sdiv`, `lshr`...) with the op's overflow flags."""

    def emit(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
        lhs, rhs = _operands(fx, op)
        folded = fold_identity(name, lhs, rhs)
        if folded is not None:
            return [folded]
        return [getattr(fx.builder, name)(lhs, rhs, flags=overflow_flags(op))]

    return emit


def fold_identity(name: str, lhs: ir.Value, rhs: ir.Value) -> ir.Value | None:
    """`x + 0`, `0 + x`, `x - 0`, `x * 1`, `1 * x` as `x`, `x * 0` and `0 * x` as 0, else None.

    The lowering leaves such ops (indices times a constant 0 stride...); not emitting them lets
    the memref emitters fold the address arithmetic further, and spares LLVM the instructions.
    (`x * 0` is 0 even where `x` is poison: a refinement LLVM's own folding makes.)"""
    if name == "add" or name == "sub":
        if isinstance(rhs, ir.Constant) and rhs.constant == 0:
            return lhs
        if name == "add" and isinstance(lhs, ir.Constant) and lhs.constant == 0:
            return rhs
    elif name == "mul":
        for const, other in ((lhs, rhs), (rhs, lhs)):
            if isinstance(const, ir.Constant) and isinstance(const.constant, int) and const.constant in (0, 1):
                return other if const.constant == 1 else const
    return None


def int_intrinsic(name: str, *, poison_flag: bool = False) -> Emitter:
    """`llvm.<name>.iN` over the operands (`poison_flag`: the trailing `i1 false` of abs/ctlz)."""

    def emit(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
        args = _operands(fx, op)
        ty = args[0].type
        extra = [ir.Constant(I1, 0)] if poison_flag else []
        fn = fx.declare(f"llvm.{name}.{ty.intrinsic_name}", ty, [ty] * len(args) + [I1] * len(extra))
        return [fx.builder.call(fn, args + extra)]

    return emit


def emit_floordivsi(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
    """Quotient rounded towards -inf: `q - 1` when the remainder's sign differs from b's."""
    b = fx.builder
    lhs, rhs = _operands(fx, op)
    zero = ir.Constant(lhs.type, 0)
    quotient, remainder = b.sdiv(lhs, rhs), b.srem(lhs, rhs)
    signs_differ = b.icmp_signed("!=", b.icmp_signed("<", remainder, zero), b.icmp_signed("<", rhs, zero))
    adjust = b.and_(b.icmp_signed("!=", remainder, zero), signs_differ)
    return [b.sub(quotient, b.zext(adjust, lhs.type))]


def emit_ceildivsi(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
    """Quotient rounded towards +inf: `q + 1` when the remainder has b's sign."""
    b = fx.builder
    lhs, rhs = _operands(fx, op)
    zero = ir.Constant(lhs.type, 0)
    quotient, remainder = b.sdiv(lhs, rhs), b.srem(lhs, rhs)
    signs_agree = b.icmp_signed("==", b.icmp_signed("<", remainder, zero), b.icmp_signed("<", rhs, zero))
    adjust = b.and_(b.icmp_signed("!=", remainder, zero), signs_agree)
    return [b.add(quotient, b.zext(adjust, lhs.type))]


def emit_ceildivui(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
    b = fx.builder
    lhs, rhs = _operands(fx, op)
    remainder = b.urem(lhs, rhs)
    adjust = b.icmp_unsigned("!=", remainder, ir.Constant(lhs.type, 0))
    return [b.add(b.udiv(lhs, rhs), b.zext(adjust, lhs.type))]


_CMPI = ["==", "!=", "<", "<=", ">", ">=", "<", "<=", ">", ">="]  # MLIR's predicate order


def emit_cmpi(fx: FunctionEmitter, op: arith.CmpiOp) -> list[LoweredValue]:
    lhs, rhs = _operands(fx, op)
    predicate = op.predicate.value.data
    compare = fx.builder.icmp_signed if predicate < 6 else fx.builder.icmp_unsigned
    return [compare(_CMPI[predicate], lhs, rhs)]


# ----------------------------------------------------------------------------- floats


def in_float_precision(fx: FunctionEmitter, args: Sequence[ir.Value], compute: Callable[..., ir.Value],
                       *, math_op: bool) -> ir.Value:  # fmt: skip
    """`compute(*args)`, done in `float` for bf16 (and for f16 when `math_op`), rounded back."""
    ty = args[0].type
    if is_bfloat(ty) or (math_op and bit_width(ty) == 16):
        widened = [convert_float(fx.builder, a, F32) for a in args]
        return convert_float(fx.builder, compute(*widened), ty)
    return compute(*args)


def float_instruction(name: str) -> Emitter:
    """An LLVM float instruction (`fadd`, `fdiv`...) with the op's fast-math flags."""

    def emit(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
        flags = fastmath_flags(op)
        method = getattr(fx.builder, name)
        return [in_float_precision(fx, _operands(fx, op), lambda *a: method(*a, flags=flags), math_op=False)]

    return emit


def float_intrinsic(name: str, *, math_op: bool = True) -> Emitter:
    """`llvm.<name>.fN` (exp, fabs, maximum, fma...), called with the op's fast-math flags."""

    def emit(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
        def call(*args: ir.Value) -> ir.Value:
            ty = args[0].type
            fn = fx.declare(f"llvm.{name}.{ty.intrinsic_name}", ty, [ty] * len(args))
            return fx.builder.call(fn, args, fastmath=fastmath_flags(op))

        return [in_float_precision(fx, _operands(fx, op), call, math_op=math_op)]

    return emit


def libm_function(name: str) -> Emitter:
    """A libm call: `<name>f` for float (and 16-bit floats, widened), `<name>` for double."""

    def emit(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
        def call(*args: ir.Value) -> ir.Value:
            ty = args[0].type
            fn = fx.declare(name + ("f" if ty == F32 else ""), ty, [ty] * len(args))
            return fx.builder.call(fn, args, fastmath=fastmath_flags(op))

        return [in_float_precision(fx, _operands(fx, op), call, math_op=True)]

    return emit


def vector_math(name: str) -> Emitter:
    """`llvm_vecmath`'s `__oi_<name>_f32`/`_f64` (16-bit floats widened), called with the op's
    fast-math flags (the call is inlined; the flags do not reach the body)."""

    def emit(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
        def call(x: ir.Value) -> ir.Value:
            fn = llvm_vecmath.function(fx.module, name, x.type)
            return fx.builder.call(fn, [x], fastmath=fastmath_flags(op))

        return [in_float_precision(fx, _operands(fx, op), call, math_op=True)]

    return emit


def emit_negf(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
    (value,) = _operands(fx, op)
    return [fx.builder.fneg(value, flags=fastmath_flags(op))]


def emit_rsqrt(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
    flags = fastmath_flags(op)

    def rsqrt(value: ir.Value) -> ir.Value:
        sqrt = fx.declare(f"llvm.sqrt.{value.type.intrinsic_name}", value.type, [value.type])
        root = fx.builder.call(sqrt, [value], fastmath=flags)
        return fx.builder.fdiv(ir.Constant(value.type, 1.0), root, flags=flags)

    return [in_float_precision(fx, _operands(fx, op), rsqrt, math_op=True)]


def emit_fpowi(fx: FunctionEmitter, op: math.FPowIOp) -> list[LoweredValue]:
    """`x^n` as `pow(x, (double)n)` in `double`, the sign fixed by n's parity.

    `llvm.powi` would need libgcc's `__powisf2`. `(double)n` is exact for |n| <= 2^53; a wider
    odd n may round to an even double, which would lose the sign of a negative x: the result
    is `|pow|`, with x's sign when n is odd (for every n, negative ones included: x^-n is
    1/x^n's value, -0 and infinities too). The magnitude is pow's, rounded once more to a
    narrower type (for n beyond 2^53, only |x| = 1 does not overflow or underflow anyway).
    The op's fast-math flags are not passed on: with `afn`, LLVM would turn `pow(x, sitofp n)`
    back into `llvm.powi`, a call of libgcc's `__powidf2`, which the process may lack.
    """
    base, exponent = _operands(fx, op)
    b = fx.builder
    x = widen_to_double(b, base)
    power = fx.declare("llvm.pow.f64", F64, [F64, F64])
    fabs = fx.declare("llvm.fabs.f64", F64, [F64])
    copysign = fx.declare("llvm.copysign.f64", F64, [F64, F64])
    magnitude = b.call(fabs, [b.call(power, [x, b.sitofp(exponent, F64)])])
    odd = b.trunc(exponent, I1)
    result = b.select(odd, b.call(copysign, [magnitude, x]), magnitude)
    return [narrow_double(b, result, base.type) if base.type != F64 else result]


def _sum_rounded_to_odd(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """`x + y` (doubles) rounded to odd: the nearest sum, moved one ulp toward the exact sum
    (which TwoSum gives) when inexact and even."""
    total = b.fadd(x, y)
    y_part = b.fsub(total, x)
    error = b.fadd(b.fsub(x, b.fsub(total, y_part)), b.fsub(y, y_part))
    bits = b.bitcast(total, I64)
    inexact = b.fcmp_ordered("!=", error, ir.Constant(F64, 0.0))
    even = b.icmp_unsigned("==", b.and_(bits, ir.Constant(I64, 1)), ir.Constant(I64, 0))
    away = b.icmp_signed(">=", b.xor(bits, b.bitcast(error, I64)), ir.Constant(I64, 0))  # same sign
    moved = b.add(bits, b.select(away, ir.Constant(I64, 1), ir.Constant(I64, -1)))
    return b.bitcast(b.select(b.and_(inexact, even), moved, bits), F64)


def emit_fma(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
    """`llvm.fma`; for 16-bit floats, `a*b + c` rounded once: the product of two 16-bit floats
    is exact in `double`, the sum is rounded to odd there, then to the type (via a `float`
    rounded to odd): a float fma rounded to f16 would round twice."""
    args = _operands(fx, op)
    ty = args[0].type
    if bit_width(ty) != 16:
        return float_intrinsic("fma")(fx, op)
    b = fx.builder
    a, x, c = (widen_to_double(b, v) for v in args)
    return [narrow_double(b, _sum_rounded_to_odd(b, b.fmul(a, x), c), ty)]


_CMPF = ["false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord",
         "ueq", "ugt", "uge", "ult", "ule", "une", "uno", "true"]  # fmt: skip


def emit_cmpf(fx: FunctionEmitter, op: arith.CmpfOp) -> list[LoweredValue]:
    lhs, rhs = (widen_bf16(fx.builder, v) for v in _operands(fx, op))
    predicate = _CMPF[op.predicate.value.data]
    return [fx.builder.fcmp_ordered(predicate, lhs, rhs, flags=fastmath_flags(op))]


# ----------------------------------------------------------------------------- conversions


def emit_int_resize(fx: FunctionEmitter, op: Operation, *, signed: bool) -> list[LoweredValue]:
    """index_cast/extsi/extui/trunci: sign- or zero-extend, or truncate, to the result width."""
    (value,) = _operands(fx, op)
    target = _result_type(op)
    if target.width == value.type.width:
        return [value]
    if target.width < value.type.width:
        return [fx.builder.trunc(value, target)]
    return [fx.builder.sext(value, target) if signed else fx.builder.zext(value, target)]


def int_resize(*, signed: bool) -> Emitter:
    return lambda fx, op: emit_int_resize(fx, op, signed=signed)


def int_to_float(*, signed: bool) -> Emitter:
    """sitofp/uitofp: LLVM's instruction (one rounding); to `bf16`, exactly to `double` first
    (see `int_to_bf16`) then rounded once."""

    def emit(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
        (value,) = _operands(fx, op)
        target = _result_type(op)
        if is_bfloat(target):
            return [narrow_double(fx.builder, int_to_double_for_bf16(fx.builder, value, signed=signed), target)]
        return [fx.builder.sitofp(value, target) if signed else fx.builder.uitofp(value, target)]

    return emit


def int_to_double_for_bf16(b: ir.IRBuilder, value: ir.Value, *, signed: bool) -> ir.Value:
    """A `double` that rounds to the same `bfloat` as the integer `value`, and is exact.

    Up to 32 bits the conversion is exact. A 64-bit magnitude of 2^32 or more has its bits below
    bit 12 replaced by one sticky bit 11 (set when any was): 53 significant bits at most, exact
    in a double, and bfloat's rounding point (above bit 24) and its sticky information are
    unchanged."""
    if value.type.width <= 32:
        return b.sitofp(value, F64) if signed else b.uitofp(value, F64)
    ty = value.type
    negative = b.icmp_signed("<", value, ir.Constant(ty, 0)) if signed else ir.Constant(I1, 0)
    magnitude = b.select(negative, b.neg(value), value)  # INT_MIN: 2^63 read as unsigned
    low = b.and_(magnitude, ir.Constant(ty, 0xFFF))
    sticky = b.shl(b.zext(b.icmp_unsigned("!=", low, ir.Constant(ty, 0)), ty), ir.Constant(ty, 11))
    jammed = b.or_(b.and_(magnitude, ir.Constant(ty, ~0xFFF)), sticky)
    wide = b.icmp_unsigned(">=", magnitude, ir.Constant(ty, 1 << 32))
    converted = b.uitofp(b.select(wide, jammed, magnitude), F64)
    return b.select(negative, b.fneg(converted), converted)


def float_to_int(*, signed: bool) -> Emitter:
    def emit(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
        value = widen_bf16(fx.builder, _operands(fx, op)[0])
        target = _result_type(op)
        return [fx.builder.fptosi(value, target) if signed else fx.builder.fptoui(value, target)]

    return emit


def emit_float_resize(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
    """extf/truncf; an f8E5M2 side goes through `half` (from it) or `float` (to it)."""
    b, value = fx.builder, _operands(fx, op)[0]
    if isinstance(op.operands[0].type, Float8E5M2Type):
        value = f8_to_half(b, value)
    if isinstance(op.results[0].type, Float8E5M2Type):
        return [round_to_f8(b, convert_float(b, value, F32))]
    return [convert_float(b, value, _result_type(op))]


def emit_bitcast(fx: FunctionEmitter, op: Operation) -> list[LoweredValue]:
    return [fx.builder.bitcast(_operands(fx, op)[0], _result_type(op))]


# ----------------------------------------------------------------------------- the rest


def emit_constant(fx: FunctionEmitter, op: arith.ConstantOp) -> list[LoweredValue]:
    value = op.value
    if isinstance(value, IntegerAttr | FloatAttr):
        return [constant(value.type, value.value.data)]
    raise PassError(f"backend: unsupported constant {value}")


def emit_select(fx: FunctionEmitter, op: arith.SelectOp) -> list[LoweredValue]:
    """`select`, field by field for memrefs."""
    cond, lhs, rhs = _operands(fx, op)
    if not isinstance(lhs, MemRefDescriptor):
        return [fx.builder.select(cond, lhs, rhs)]
    fields = [fx.builder.select(cond, a, b) for a, b in zip(flatten(lhs), flatten(rhs))]
    return [unflatten(fx.builder, op.result.type, fields)]


ARITH_EMITTERS: dict[type[Operation], Emitter] = {
    arith.ConstantOp: emit_constant,
    arith.AddiOp: int_instruction("add"),
    arith.SubiOp: int_instruction("sub"),
    arith.MuliOp: int_instruction("mul"),
    arith.DivSIOp: int_instruction("sdiv"),
    arith.DivUIOp: int_instruction("udiv"),
    arith.RemSIOp: int_instruction("srem"),
    arith.RemUIOp: int_instruction("urem"),
    arith.FloorDivSIOp: emit_floordivsi,
    arith.CeilDivSIOp: emit_ceildivsi,
    arith.CeilDivUIOp: emit_ceildivui,
    arith.AndIOp: int_instruction("and_"),
    arith.OrIOp: int_instruction("or_"),
    arith.XOrIOp: int_instruction("xor"),
    arith.ShLIOp: int_instruction("shl"),
    arith.ShRSIOp: int_instruction("ashr"),
    arith.ShRUIOp: int_instruction("lshr"),
    arith.MaxSIOp: int_intrinsic("smax"),
    arith.MinSIOp: int_intrinsic("smin"),
    arith.MaxUIOp: int_intrinsic("umax"),
    arith.MinUIOp: int_intrinsic("umin"),
    arith.CmpiOp: emit_cmpi,
    arith.AddfOp: float_instruction("fadd"),
    arith.SubfOp: float_instruction("fsub"),
    arith.MulfOp: float_instruction("fmul"),
    arith.DivfOp: float_instruction("fdiv"),
    arith.NegfOp: emit_negf,
    arith.MaximumfOp: float_intrinsic("maximum", math_op=False),
    arith.MinimumfOp: float_intrinsic("minimum", math_op=False),
    arith.MaxnumfOp: float_intrinsic("maxnum", math_op=False),
    arith.MinnumfOp: float_intrinsic("minnum", math_op=False),
    arith.CmpfOp: emit_cmpf,
    arith.SelectOp: emit_select,
    arith.IndexCastOp: int_resize(signed=True),
    arith.ExtSIOp: int_resize(signed=True),
    arith.ExtUIOp: int_resize(signed=False),
    arith.TruncIOp: int_resize(signed=True),
    arith.SIToFPOp: int_to_float(signed=True),
    arith.UIToFPOp: int_to_float(signed=False),
    arith.FPToSIOp: float_to_int(signed=True),
    arith.FPToUIOp: float_to_int(signed=False),
    arith.ExtFOp: emit_float_resize,
    arith.TruncFOp: emit_float_resize,
    arith.BitcastOp: emit_bitcast,
}

_LLVM_UNARY_MATH = {
    math.Exp2Op: "exp2", math.Log2Op: "log2", math.Log10Op: "log10", math.SqrtOp: "sqrt",
    math.SinOp: "sin", math.CosOp: "cos", math.AbsFOp: "fabs", math.FloorOp: "floor",
    math.CeilOp: "ceil", math.RoundOp: "round", math.RoundEvenOp: "roundeven", math.TruncOp: "trunc",
}  # fmt: skip
_LIBM_MATH = {
    math.TanOp: "tan", math.SinhOp: "sinh", math.CoshOp: "cosh", math.AsinOp: "asin", math.AcosOp: "acos",
    math.AtanOp: "atan", math.AsinhOp: "asinh", math.AcoshOp: "acosh", math.AtanhOp: "atanh",
    math.Atan2Op: "atan2", math.ExpM1Op: "expm1", math.Log1pOp: "log1p", math.CbrtOp: "cbrt",
}  # fmt: skip

#: branch-free inline IR (`llvm_vecmath`), which the loop vectoriser can vectorise
_VECTOR_MATH = {math.ExpOp: "exp", math.LogOp: "log", math.TanhOp: "tanh", math.ErfOp: "erf"}

MATH_EMITTERS: dict[type[Operation], Emitter] = {
    **{cls: float_intrinsic(name) for cls, name in _LLVM_UNARY_MATH.items()},
    **{cls: vector_math(name) for cls, name in _VECTOR_MATH.items()},
    **{cls: libm_function(name) for cls, name in _LIBM_MATH.items()},
    math.PowFOp: float_intrinsic("pow"),
    math.CopySignOp: float_intrinsic("copysign"),
    math.FmaOp: emit_fma,
    math.RsqrtOp: emit_rsqrt,
    math.FPowIOp: emit_fpowi,
    math.AbsIOp: int_intrinsic("abs", poison_flag=True),
    math.CtPopOp: int_intrinsic("ctpop"),
    math.CountLeadingZerosOp: int_intrinsic("ctlz", poison_flag=True),
    math.CountTrailingZerosOp: int_intrinsic("cttz", poison_flag=True),
}
