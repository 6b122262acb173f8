"""Vectorisable `exp`, `log`, `tanh` and `erf` for the CPU target: branch-free LLVM IR.

LLVM turns `llvm.exp.f32` (or a libm call) in a loop into one scalar `expf` call per element:
without a vector math library it can vectorise the loop around the call, not the call. Here
each function is an internal `alwaysinline` function of the module, `__oi_<name>_<f32|f64>`,
built from plain IR (fmul/fadd/fdiv, `llvm.fmuladd`, integer ops on the bit pattern, `select`:
no branch, no call), so the inliner puts it into the loop and the loop vectoriser turns the
loop into AVX2/AVX-512 code. Each is within 0.9 ulp of the exact result over the whole range
(1.3 ulp on a CPU without FMA; tests/backend/test_vector_math.py measures it) and handles the special
values as libm does:

- `exp(x)`: `x = n ln2 + r`, `|r| <= ln2/2`, `r = r_hi + r_lo` (Cody-Waite: `n ln2_hi` and
  `r_hi` are exact), `e^r = (1 + r_hi) + (r_lo + r^2 q(r))` with `1 + r_hi` split exactly
  (Fast2Sum) so that e^r is rounded once; then `2^n` applied as two factors `2^(n/2)`, so that
  the last multiplication rounds once into the subnormals (gradual underflow) or overflows to
  inf. x is clamped first ([-105, 89] for f32, [-746, 710] for f64: beyond, the result is
  already 0 or inf). `n` is read from the bits of `x log2e + 1.5 2^23` (no `fptosi`, whose NaN
  would be poison): NaN gives NaN.
- `log(x)`: subnormals are scaled by `2^23` (`2^52`) first; `x = 2^e m`, `m` in
  `[sqrt(1/2), sqrt(2))`, `f = m - 1` (exact); `log1p(f) = f + c` with `c = f^2 (f P(f) - 1/2)`
  for f32 and `c = s (f^2/2 + R(s^2)) - f^2/2`, `s = f / (2 + f)`, for f64; the result is
  `(e ln2_hi + f) + (e ln2_lo + c)` with the first sum split exactly. Then `log(+-0) = -inf`,
  `log(x < 0) = NaN`, `log(inf) = inf`, `log(NaN) = NaN`.
- `tanh(x)`: odd, computed for `|x|` and given x's sign last (`tanh(-0) = -0`): `a + a^3 q(a^2)`
  for `a < 0.625`, else `1 - 2 / (e^2a + 1)` with the denominator's rounding error, the
  quotient's remainder (an FMA) and `1 - q`'s rounding error carried in a correction; `a` is
  clamped to 10 (22 for f64), where tanh rounds to 1.
- `erf(x)`: odd too: `a + a q(a^2)` for `a < 0.84375`, else `1 - e^(-a^2) g(t)` (one FMA), g a
  polynomial in `t = K / (K + a)` (t and a^2 carried with their rounding errors); `a` is
  clamped to 3.99 (6), where erf rounds to 1.

The polynomial coefficients are minimax fits (Remez exchange, in the error that matters: relative
for exp, log, tanh and small erf, absolute for erf's `1 - ...`) made for this module and rounded
to the type. `llvm.fmuladd` is a fused FMA on a CPU that has one (x86-64-v3 and later) and
`a*b + c` elsewhere: the FMA-exact error terms are then 0 and tanh/erf lose a few tenths of an
ulp.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llvmlite import ir

from oi_compiler.backend.llvm_types import F32, F64
from oi_compiler.errors import PassError


@dataclass(frozen=True)
class _Format:
    """The bit layout of `float` or `double`."""

    type: ir.Type
    int: ir.IntType
    mantissa: int  # explicit fraction bits
    suffix: str


_FORMATS = {str(F32): _Format(F32, ir.IntType(32), 23, "f32"), str(F64): _Format(F64, ir.IntType(64), 52, "f64")}


def _h(text: str) -> float:
    return float.fromhex(text)


# --------------------------------------------------------------------------- constants
# exp: e^r = 1 + r + r^2 (c0 + c1 r + ...), |r| <= ln2/2 (+0.05%); relative error of the
# rounded polynomial 0.003 ulp (f32), 0.003 ulp (f64)
_EXP_Q = {
    "f32": ["0x1.0p-1", "0x1.555556p-3", "0x1.5554e6p-5", "0x1.110fdcp-7", "0x1.6d53b8p-10", "0x1.a30438p-13"],
    "f64": ["0x1.0p-1", "0x1.555555555555bp-3", "0x1.5555555555556p-5", "0x1.111111110ef06p-7",
            "0x1.6c16c16c161c0p-10", "0x1.a01a01b2102f8p-13", "0x1.a01a01a0fd1b6p-16", "0x1.71ddf46f0c2f2p-19",
            "0x1.27e500e35767fp-22", "0x1.af63a524f8808p-26", "0x1.1f0a5646e79f7p-29"],
}  # fmt: skip
# ln2 = LN2_HI + LN2_LO, LN2_HI with 16 (f32) / 40 (f64) significant bits: n * LN2_HI is exact
# for every n the functions use (|n| < 2^8, 2^11)
_LN2_HI = {"f32": "0x1.62e4p-1", "f64": "0x1.62e42fefa2000p-1"}
_LN2_LO = {"f32": "0x1.7f7d1cp-20", "f64": "0x1.9ef35793c7673p-41"}
_LOG2E = {"f32": "0x1.715476p+0", "f64": "0x1.71547652b82fep+0"}
_EXP_RANGE = {"f32": (-105.0, 89.0), "f64": (-746.0, 710.0)}
# log f32: log1p(f) = f - f^2/2 + f^3 P(f), f in [sqrt(1/2) - 1, sqrt(2) - 1]; 0.04 ulp
_LOG_P32 = ["0x1.555554p-2", "-0x1.ffffe4p-3", "0x1.999e8p-3", "-0x1.5562e6p-3", "0x1.23b828p-3",
            "-0x1.fbcbf8p-4", "0x1.df3f8ep-4", "-0x1.dce9a6p-4", "0x1.237524p-4"]  # fmt: skip
# log f64: log1p(f) = 2s + s R(s^2), R(z) = z (c0 + c1 z + ...), |s| <= 0.1716; 0.03 ulp
_LOG_R64 = ["0x1.5555555555564p-1", "0x1.999999998f865p-2", "0x1.24924933ec6f9p-2", "0x1.c71c5d80eeba2p-3",
            "0x1.7463e2dbad85bp-3", "0x1.39de9f6ba252dp-3", "0x1.2ca105eff7f0fp-3"]  # fmt: skip
_SQRT_HALF_BITS = {"f32": 0x3F3504F3, "f64": 0x3FE6A09E667F3BCD}
# tanh: x + x^3 (c0 + c1 x^2 + ...), |x| < 0.625; 0.005 ulp (f32), 0.02 ulp (f64)
_TANH_SMALL = 0.625
_TANH_Q = {
    "f32": ["-0x1.555554p-2", "0x1.11106cp-3", "-0x1.b9edd0p-5", "0x1.6379ecp-6", "-0x1.0b8af8p-7", "0x1.1740b0p-9"],
    "f64": ["-0x1.5555555555555p-2", "0x1.1111111111036p-3", "-0x1.ba1ba1ba07ef0p-5", "0x1.664f487c65abdp-6",
            "-0x1.226e343e34ea8p-7", "0x1.d6d3928b8eb21p-9", "-0x1.7d9f049fa7f97p-10", "0x1.35236f903f331p-11",
            "-0x1.f21da3a0e1943p-13", "0x1.83c436d82da91p-14", "-0x1.04c07324cdc68p-15", "0x1.afe547b93d9e1p-18"],
}  # fmt: skip
_TANH_CLAMP = {"f32": 10.0, "f64": 22.0}  # tanh rounds to 1 from 9.01 (f32), 19.1 (f64) on
# erf: x + x q(x^2) for |x| < 0.84375 (0.014 ulp, 0.1 ulp); else 1 - e^(-x^2) g(x), g a
# polynomial in t - T0, t = K / (K + |x|), absolute error 0.0004 ulp (f32), 0.03 ulp (f64) of
# erf; |x| is clamped to 3.99 (6), where erf rounds to 1 (from 3.92, 5.87 on)
_ERF_SMALL = 0.84375
_ERF_Q = {
    "f32": ["0x1.06eba8p-3", "-0x1.812742p-2", "0x1.ce2ddap-4", "-0x1.b80a0cp-6", "0x1.549266p-8", "-0x1.a7ea38p-11",
            "0x1.531512p-14"],
    "f64": ["0x1.06eba8214db69p-3", "-0x1.812746b0379e6p-2", "0x1.ce2f21a042ae1p-4", "-0x1.b82ce31281f20p-6",
            "0x1.565bcd0cf5537p-8", "-0x1.c02db3a1de89bp-11", "0x1.f9a317dcdb266p-14", "-0x1.f4d0c464413abp-17",
            "0x1.b9ca0c238f27fp-20", "-0x1.5e1bff19bdf99p-23", "0x1.e81f30e9ceb6fp-27", "-0x1.e839bcd799858p-31"],
}  # fmt: skip
_ERF_K = {"f32": 2.0, "f64": 4.0}  # K and |x| <= clamp share an exponent, or K's is larger
_ERF_T0 = {"f32": 0.5, "f64": 0.625}  # t - T0 is exact (t in [0.33, 0.71], [0.4, 0.83])
_ERF_CLAMP = {"f32": 3.99, "f64": 6.0}
_ERF_G = {
    "f32": ["0x1.058672p-2", "0x1.b57034p-1", "0x1.eeea5ap-1", "0x1.437ff6p-1", "0x1.e9709cp-5", "-0x1.cb35bap-3",
            "-0x1.a7a63ap-5", "0x1.dca05ep-4"],
    "f64": ["0x1.bf7c43b86e7a2p-3", "0x1.a14180b2421b9p-1", "0x1.943c65174e93fp+0", "0x1.4c39947488efep+1",
            "0x1.cda9480cddeb8p+1", "0x1.0bf860b273cffp+2", "0x1.fadb13bfec36cp+1", "0x1.725791a1cd2b7p+1",
            "0x1.6c050bb351263p+0", "0x1.aacb99b1260fcp-3", "-0x1.46937f8b80d23p-2", "-0x1.f6c6e6fde47d5p-3",
            "0x1.dd4ad47ccf95ap-9", "0x1.8a2221093a659p-4", "0x1.a6ef63a0ec220p-6", "-0x1.e7afbcf5d12bap-6"],
}  # fmt: skip


# --------------------------------------------------------------------------- the IR builder


class _Math:
    """IR for one function body in one format: constants, `fmuladd`, bit casts."""

    def __init__(self, module: ir.Module, builder: ir.IRBuilder, fmt: _Format):
        self.module, self.b, self.fmt = module, builder, fmt

    def const(self, value: float | str) -> ir.Constant:
        return ir.Constant(self.fmt.type, _h(value) if isinstance(value, str) else value)

    def iconst(self, value: int) -> ir.Constant:
        return ir.Constant(self.fmt.int, value)

    def intrinsic(self, name: str, args: Sequence[ir.Value]) -> ir.Value:
        ty = self.fmt.type
        fn = _declare(self.module, f"llvm.{name}.{ty.intrinsic_name}", ty, [ty] * len(args))
        return self.b.call(fn, list(args))

    def fma(self, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
        """`a*b + c`, fused where the target has an FMA."""
        return self.intrinsic("fmuladd", [a, b, c])

    def horner(self, x: ir.Value, coefficients: Sequence[str]) -> ir.Value:
        """`c0 + c1 x + c2 x^2 + ...`"""
        acc: ir.Value = self.const(coefficients[-1])
        for c in reversed(coefficients[:-1]):
            acc = self.fma(acc, x, self.const(c))
        return acc

    def bits(self, x: ir.Value) -> ir.Value:
        return self.b.bitcast(x, self.fmt.int)

    def from_bits(self, bits: ir.Value) -> ir.Value:
        return self.b.bitcast(bits, self.fmt.type)

    def clamp(self, x: ir.Value, low: float, high: float) -> ir.Value:
        """x limited to [low, high]; NaN stays NaN (ordered compares)."""
        b = self.b
        x = b.select(b.fcmp_ordered(">", x, self.const(high)), self.const(high), x)
        return b.select(b.fcmp_ordered("<", x, self.const(low)), self.const(low), x)

    def pow2(self, n: ir.Value) -> ir.Value:
        """`2^n` for an integer n in the normal exponent range."""
        bias = (1 << (self.fmt.int.width - self.fmt.mantissa - 2)) - 1
        shifted = self.b.shl(self.b.add(n, self.iconst(bias)), self.iconst(self.fmt.mantissa))
        return self.from_bits(shifted)


def _declare(module: ir.Module, name: str, result: ir.Type, params: Sequence[ir.Type]) -> ir.Function:
    ty = ir.FunctionType(result, list(params))
    existing = module.globals.get(name)
    if existing is None:
        return ir.Function(module, ty, name)
    if isinstance(existing, ir.Function) and existing.function_type == ty:
        return existing
    raise PassError(f"backend: function @{name} clashes with a runtime symbol")


# --------------------------------------------------------------------------- the functions


def _exp(m: _Math, x: ir.Value) -> ir.Value:
    b, s = m.b, m.fmt.suffix
    low, high = _EXP_RANGE[s]
    x = m.clamp(x, low, high)
    shifter = m.const(1.5 * 2.0**m.fmt.mantissa)
    z = m.fma(x, m.const(_LOG2E[s]), shifter)  # round(x log2e) in the low bits
    n_float = b.fsub(z, shifter)
    r_high = m.fma(n_float, m.const("-" + _LN2_HI[s]), x)  # exact
    r_low = b.fmul(n_float, m.const("-" + _LN2_LO[s]))
    r = b.fadd(r_high, r_low)
    tail = m.fma(b.fmul(r, r), m.horner(r, _EXP_Q[s]), r_low)  # e^r - 1 - r_high
    one = m.const(1.0)
    head = b.fadd(one, r_high)
    head_error = b.fadd(b.fsub(one, head), r_high)  # 1 + r_high = head + head_error (Fast2Sum)
    y = b.fadd(head, b.fadd(head_error, tail))  # e^r in [0.7, 1.5], rounded once
    n = b.sub(m.bits(z), m.bits(shifter))
    half = b.ashr(n, m.iconst(1))
    return b.fmul(b.fmul(y, m.pow2(half)), m.pow2(b.sub(n, half)))


def _log(m: _Math, x: ir.Value) -> ir.Value:
    b, fmt, s = m.b, m.fmt, m.fmt.suffix
    scale = fmt.mantissa
    subnormal = b.fcmp_ordered("<", x, m.const(2.0 ** (2 - (1 << (fmt.int.width - fmt.mantissa - 2)))))
    scaled = b.select(subnormal, b.fmul(x, m.const(2.0**scale)), x)
    reduced = b.sub(m.bits(scaled), m.iconst(_SQRT_HALF_BITS[s]))
    exponent = b.add(b.ashr(reduced, m.iconst(fmt.mantissa)), b.select(subnormal, m.iconst(-scale), m.iconst(0)))
    mantissa = m.from_bits(b.add(b.and_(reduced, m.iconst((1 << fmt.mantissa) - 1)), m.iconst(_SQRT_HALF_BITS[s])))
    f = b.fsub(mantissa, m.const(1.0))  # exact, in [sqrt(1/2) - 1, sqrt(2) - 1)
    square = b.fmul(f, f)
    square_error = m.fma(f, f, b.fneg(square))  # f^2 - square, exact with an FMA (else 0)
    half_square = b.fmul(square, m.const(0.5))
    if s == "f32":  # c = f^3 P(f) - f^2/2
        c = m.fma(square, b.fmul(f, m.horner(f, _LOG_P32)), b.fneg(half_square))
    else:  # c = s (f^2/2 + R(s^2)) - f^2/2
        ratio = b.fdiv(f, b.fadd(m.const(2.0), f))
        z = b.fmul(ratio, ratio)
        c = m.fma(ratio, m.fma(z, m.horner(z, _LOG_R64), half_square), b.fneg(half_square))
    e = b.sitofp(exponent, fmt.type)
    big = b.fmul(e, m.const(_LN2_HI[s]))  # exact; 0 or |big| > |f|
    high = b.fadd(big, f)
    low = b.fadd(b.fsub(big, high), f)  # e ln2_hi + f = high + low (Fast2Sum)
    small = m.fma(e, m.const(_LN2_LO[s]), m.fma(square_error, m.const(-0.5), c))
    result = b.fadd(high, b.fadd(low, small))
    inf = m.const(float("inf"))
    result = b.select(b.fcmp_ordered("==", x, inf), inf, result)
    result = b.select(b.fcmp_ordered("==", x, m.const(0.0)), m.const(float("-inf")), result)
    result = b.select(b.fcmp_ordered("<", x, m.const(0.0)), m.const(float("nan")), result)
    return b.select(b.fcmp_unordered("uno", x, x), x, result)


def _tanh(m: _Math, x: ir.Value) -> ir.Value:
    b, s = m.b, m.fmt.suffix
    a = m.intrinsic("fabs", [x])  # tanh is odd: computed for |x|, the sign copied last (tanh(-0) = -0)
    z = b.fmul(a, a)
    small = m.fma(b.fmul(a, z), m.horner(z, _TANH_Q[s]), a)
    clamped = m.clamp(a, 0.0, _TANH_CLAMP[s])
    e = _exp(m, b.fadd(clamped, clamped))  # >= 1
    one, two = m.const(1.0), m.const(2.0)
    d = b.fadd(e, one)
    d_low = b.fadd(b.fsub(e, d), one)  # e + 1 = d + d_low exactly (Fast2Sum)
    q = b.fdiv(two, d)
    remainder = m.fma(b.fneg(q), d, two)  # 2 - q d, exact with an FMA
    correction = b.fmul(b.fsub(remainder, b.fmul(q, d_low)), b.fmul(q, m.const(0.5)))
    difference = b.fsub(one, q)
    difference_error = b.fsub(b.fsub(one, difference), q)  # 1 - q = difference + error (Fast2Sum)
    large = b.fadd(difference, b.fsub(difference_error, correction))  # 1 - 2 / (e + 1)
    return m.intrinsic("copysign", [b.select(b.fcmp_ordered("<", a, m.const(_TANH_SMALL)), small, large), x])


def _erf(m: _Math, x: ir.Value) -> ir.Value:
    b, s = m.b, m.fmt.suffix
    a = m.intrinsic("fabs", [x])  # erf is odd: computed for |x|, the sign copied last
    small = m.fma(a, m.horner(b.fmul(a, a), _ERF_Q[s]), a)
    clamped = m.clamp(a, 0.0, _ERF_CLAMP[s])
    k = m.const(_ERF_K[s])
    d = b.fadd(k, clamped)
    d_low = b.fadd(b.fsub(k, d), clamped)  # K + |x| = d + d_low (Fast2Sum)
    t = b.fdiv(k, d)
    remainder = m.fma(b.fneg(t), d, k)  # K - t d, exact with an FMA
    t_low = b.fmul(b.fsub(remainder, b.fmul(t, d_low)), b.fdiv(t, k))  # K / (K + |x|) - t
    g = m.horner(b.fadd(b.fsub(t, m.const(_ERF_T0[s])), t_low), _ERF_G[s])  # e^(x^2) erfc(|x|)
    square = b.fmul(clamped, clamped)
    square_error = m.fma(clamped, clamped, b.fneg(square))  # exact with an FMA (else 0)
    gauss = _exp(m, b.fneg(square))
    gauss = m.fma(gauss, b.fneg(square_error), gauss)  # e^(-x^2)
    large = m.fma(b.fneg(gauss), g, m.const(1.0))
    return m.intrinsic("copysign", [b.select(b.fcmp_ordered("<", a, m.const(_ERF_SMALL)), small, large), x])


_BODIES: dict[str, Callable[[_Math, ir.Value], ir.Value]] = {"exp": _exp, "log": _log, "tanh": _tanh, "erf": _erf}
FUNCTIONS = frozenset(_BODIES)


def function(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    """The module's `__oi_<name>_<f32|f64>` (`name` in FUNCTIONS), defined on first use."""
    fmt = _FORMATS[str(ty)]
    symbol = f"__oi_{name}_{fmt.suffix}"
    existing = module.globals.get(symbol)
    if isinstance(existing, ir.Function) and not existing.is_declaration:
        return existing
    if existing is not None:
        raise PassError(f"backend: function @{symbol} clashes with a runtime symbol")
    fn = ir.Function(module, ir.FunctionType(ty, [ty]), symbol)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    builder.ret(_BODIES[name](_Math(module, builder, fmt), fn.args[0]))
    return fn
