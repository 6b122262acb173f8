"""Numpy references of the 47 upstream ops, checked against independent oracles.

Integer oracles compute each element with Python ints and wrap at the end;
float oracles compute in Python floats (float64) and round the result to
float32 and then to the dtype, which is exactly "computed in f32, rounded per
element" for + - * / (float64 has more than 2 * 24 + 2 bits). Reductions and
matmul compare with float64 numpy within a dtype tolerance.
"""

from __future__ import annotations

import math
import operator
import subprocess
import sys
import zlib
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from oi_compiler.dtypes import DTYPE_NAMES, FLOAT_DTYPES, INT_RANGES, dtype_of_array, numpy_dtype
from oi_compiler.errors import ExecutionError
from oi_compiler.ops.registry import all_ops, lookup_op

UPSTREAM_OPS = """
    add mul sub div floor_div rem fma neg abs recip relu matmul sign min max clamp floor ceil round trunc
    and or xor not shl shr popcount eq ne lt le gt ge is_finite is_nan is_inf is_neg filter fill
    sum_axis mean_axis prod_axis max_axis min_axis argmax_axis argmin_axis cast
""".split()
INT_DTYPES = ("i4", "i8", "i16", "i32", "i64", "u4", "u8", "u16", "u32", "u64")
SIGNED = frozenset({"i4", "i8", "i16", "i32", "i64"})
pytestmark = [
    pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning"),
    # the scalar oracles below (scan_oracle, naive_matmul) meet inf - inf and overflow
    pytest.mark.filterwarnings("ignore:invalid value encountered in scalar:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning"),
]
TOLERANCE = {"f8": 0.25, "bf16": 2e-2, "f16": 2e-3, "f32": 1e-5, "f64": 1e-12}


# --- helpers ---------------------------------------------------------------------------------------


def dt(array: np.ndarray) -> str:
    name = dtype_of_array(array.dtype)
    assert name is not None
    return name


def run(op: str, inputs: list[np.ndarray], settings: dict[str, Any] | None = None, out: str | None = None):
    spec = lookup_op(op)
    assert spec is not None and spec.reference is not None
    settings = settings or {}
    if out is None:
        out = spec.output_dtype_for([dt(x) for x in inputs], settings)
    return spec.reference(inputs, settings, out)


def wrap_int(value: int, dtype: str) -> int:
    width = 1 if dtype == "bool" else int(dtype[1:])
    value &= (1 << width) - 1
    if dtype in SIGNED and value >= 1 << (width - 1):
        value -= 1 << width
    return value


def exact(array: np.ndarray) -> np.ndarray:
    """An array in a dtype that holds its values exactly (for comparisons)."""
    name = dt(array)
    if name in FLOAT_DTYPES:
        return array.astype(np.float64)
    if name == "bool":
        return array.astype(np.bool_)
    return array.astype(np.int64 if name in SIGNED else np.uint64)


def py(array: np.ndarray) -> list[Any]:
    """The elements as Python numbers (ints, floats or bools)."""
    return exact(np.asarray(array)).ravel().tolist()


def expected(values: list[Any], dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Python results as an array of `dtype`: floats rounded via float32, ints wrapped."""
    if dtype in FLOAT_DTYPES:
        f64 = np.array(values, np.float64)
        return (f64 if dtype == "f64" else f64.astype(np.float32)).astype(numpy_dtype(dtype)).reshape(shape)
    if dtype == "bool":
        return np.array(values, np.bool_).reshape(shape)
    ints = [wrap_int(int(v), dtype) for v in values]
    return np.array(ints, np.int64 if dtype in SIGNED else np.uint64).astype(numpy_dtype(dtype)).reshape(shape)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(exact(got), exact(want))


def assert_close(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    assert got.dtype == numpy_dtype(dtype) and got.shape == want.shape
    tol = TOLERANCE.get(dtype, 0)
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


def int_values(dtype: str, n: int, rng: np.random.Generator) -> np.ndarray:
    low, high = INT_RANGES[dtype]
    specials = [low, high, 0, 1, 2, low + 1, high - 1] + ([-1] if low < 0 else [])
    kind = np.uint64 if dtype == "u64" else np.int64
    values = specials + rng.integers(low, high, size=max(n - len(specials), 0), endpoint=True, dtype=kind).tolist()
    values = [values[i] for i in rng.permutation(len(values))][:n]
    return np.array(values, np.int64 if dtype in SIGNED else np.uint64).astype(numpy_dtype(dtype))


def float_values(dtype: str, n: int, rng: np.random.Generator, specials: bool = True) -> np.ndarray:
    base = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 2.5, math.inf, -math.inf, math.nan] if specials else []
    values = np.array(base + (rng.normal(size=max(n - len(base), 0)) * 4).tolist(), np.float64)
    values = values[rng.permutation(len(values))][:n]
    return (values if dtype == "f64" else values.astype(np.float32)).astype(numpy_dtype(dtype))


def values_of(dtype: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if dtype == "bool":
        return rng.integers(0, 2, size=n).astype(np.bool_)
    return float_values(dtype, n, rng) if dtype in FLOAT_DTYPES else int_values(dtype, n, rng)


def pairs(ops: list[str], kinds: frozenset[str]) -> list[tuple[str, str]]:
    """(op, dtype) for every supported dtype of each op that lies in `kinds`."""
    out = []
    for op in ops:
        spec = lookup_op(op)
        assert spec is not None and spec.dtypes is not None
        out += [(op, d) for d in DTYPE_NAMES if d in spec.dtypes and d in kinds]
    return out


def trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


# --- every op, every supported dtype: contract --------------------------------------------------------


def sample_case(op: str, dtype: str, rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    spec = lookup_op(op)
    assert spec is not None
    shapes = [(3, 4), (4, 2)] if op == "matmul" else [(3, 4)] * spec.arity
    inputs = [values_of(dtype, 12 if s == (3, 4) else 8, rng).reshape(s) for s in shapes]
    settings: dict[str, Any] = {"shl": {"bits": 1}, "shr": {"bits": 1}, "fill": {"value": 1}}.get(op, {})
    if op in ("sum_axis", "mean_axis", "prod_axis", "max_axis", "min_axis"):
        settings = {"axes": [0, 1]}  # required, as upstream
    elif op in ("argmax_axis", "argmin_axis"):
        settings = {"axis": 0}
    if op == "filter":
        inputs[2] = values_of(dtype, 12, rng).reshape(3, 4)
    return inputs, settings


CONTRACT_CASES = [(op, d) for op in UPSTREAM_OPS for d in DTYPE_NAMES if d in (lookup_op(op).dtypes or ())]


@pytest.mark.parametrize(("op", "dtype"), CONTRACT_CASES, ids=[f"{o}-{d}" for o, d in CONTRACT_CASES])
def test_contract_every_supported_dtype(op: str, dtype: str) -> None:
    spec = lookup_op(op)
    assert spec is not None and spec.reference is not None and spec.shape_rule is not None
    rng = np.random.default_rng(zlib.crc32(f"{op}-{dtype}".encode()))
    inputs, settings = sample_case(op, dtype, rng)
    outs = sorted(spec.output_dtypes) if spec.output_dtype[0] == "from_setting" else [None]
    for out in outs:
        case = dict(settings, to=out) if out else settings
        out_dtype = spec.output_dtype_for([dtype] * spec.arity, case)
        before = [x.copy() for x in inputs]
        result = spec.reference(inputs, case, out_dtype)
        assert isinstance(result, np.ndarray) and result.dtype == numpy_dtype(out_dtype)
        assert result.shape == spec.shape_rule([x.shape for x in inputs], case)
        assert not any(np.may_share_memory(result, x) for x in inputs)
        for x, y in zip(inputs, before):
            np.testing.assert_array_equal(exact(x), exact(y))


ACC_CASES = [(op, i, a) for op in UPSTREAM_OPS for i, a in sorted(lookup_op(op).accumulate_pairs)]


@pytest.mark.parametrize(("op", "dtype", "acc"), ACC_CASES, ids=[f"{o}-{i}-{a}" for o, i, a in ACC_CASES])
def test_accumulate_mode_widens(op: str, dtype: str, acc: str) -> None:
    """acc=[wider] computes in the wider dtype without overflow (exact Python ints)."""
    rng = np.random.default_rng(len(op) * 1000 + INT_DTYPES.index(dtype))
    a = int_values(dtype, 12, rng).reshape(3, 4)
    b = int_values(dtype, 12, rng).reshape(3, 4) if op != "matmul" else int_values(dtype, 8, rng).reshape(4, 2)
    settings = {"acc": [acc]}
    ai, bi = exact(a).astype(object), exact(b).astype(object)
    if op in ("add", "sub", "mul"):
        want, result = {"add": ai + bi, "sub": ai - bi, "mul": ai * bi}[op], run(op, [a, b], settings, acc)
    elif op == "abs":
        want, result = abs(ai), run(op, [a], settings, acc)
    elif op == "matmul":
        want, result = ai.dot(bi), run(op, [a, b], settings, acc)
    else:
        settings["axes"] = [1]
        sums = {"sum_axis": ai.sum(axis=1), "prod_axis": ai.prod(axis=1), "mean_axis": ai.sum(axis=1)}[op]
        want = np.array([trunc_div(s, 4) for s in sums], object) if op == "mean_axis" else sums
        result = run(op, [a], settings, acc)
    assert_same(result, expected(list(np.ravel(want)), acc, want.shape))


def test_accumulate_examples() -> None:
    i8 = lambda v: np.array(v, np.int8)  # noqa: E731  (0-d)
    assert_same(run("add", [i8(127), i8(1)], {"acc": ["i16"]}, "i16"), np.array(128, np.int16))
    assert_same(run("add", [i8(127), i8(1)]), np.array(-128, np.int8))
    assert_same(run("mul", [i8(-128), i8(-128)], {"acc": ["i16", "i32"]}, "i32"), np.array(16384, np.int32))
    assert_same(run("abs", [i8(-128)], {"acc": ["i16"]}, "i16"), np.array(128, np.int16))
    assert_same(run("abs", [i8(-128)]), np.array(-128, np.int8))
    u4 = np.array([15, 15, 15], ml_dtypes.uint4)
    assert_same(run("sum_axis", [u4], {"axes": [0], "acc": ["u8"]}, "u8"), np.array(45, np.uint8))
    assert_same(run("sum_axis", [u4], {"axes": [0]}), np.array(13, ml_dtypes.uint4))  # 45 mod 16
    row, col = np.full((1, 4), 100, np.int8), np.full((4, 1), 100, np.int8)
    assert_same(run("matmul", [row, col], {"acc": ["i32"]}, "i32"), np.array([[40000]], np.int32))
    assert_same(run("matmul", [row, col]), np.array([[wrap_int(40000, "i8")]], np.int8))


# --- elementwise oracles ----------------------------------------------------------------------------

MASK = 7  # a div_by_zero_mask value


def euclid_div(a: int, b: int) -> int:
    q = a // b
    return q + 1 if a - q * b < 0 else q


INT_BINARY: dict[str, Callable[[int, int], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": lambda a, b: MASK if b == 0 else trunc_div(a, b),
    "floor_div": lambda a, b: MASK if b == 0 else euclid_div(a, b),
    "rem": lambda a, b: 0 if b == 0 else a - b * trunc_div(a, b),
    "min": min,
    "max": max,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@pytest.mark.parametrize(
    ("op", "dtype"), pairs(list(INT_BINARY), frozenset(INT_DTYPES)), ids=str
)
def test_integer_binary_ops(op: str, dtype: str) -> None:
    rng = np.random.default_rng(INT_DTYPES.index(dtype))
    a, b = int_values(dtype, 24, rng).reshape(4, 6), int_values(dtype, 24, rng).reshape(4, 6)
    settings = {"div_by_zero_mask": MASK} if op in ("div", "floor_div") else {}
    result = run(op, [a, b], settings)
    out = "bool" if op in ("eq", "ne", "lt", "le", "gt", "ge") else dtype
    assert_same(result, expected([INT_BINARY[op](x, y) for x, y in zip(py(a), py(b))], out, a.shape))


INT_UNARY: dict[str, tuple[Callable[[int], Any], dict[str, Any]]] = {
    "neg": (operator.neg, {}),
    "abs": (abs, {}),
    "sign": (lambda a: (a > 0) - (a < 0), {}),
    "not": (operator.invert, {}),
    "shl": (lambda a: a << 3, {"bits": 3}),
    "shr": (lambda a: a >> 3, {"bits": 3}),
    "is_neg": (lambda a: a < 0, {}),
    # the product wraps at 64 bits before the clamp, as in upstream's i64 `wrapping_mul`
    "relu": (lambda a: min(a if a >= 0 else wrap_int(a * 3, "i64"), 50), {"alpha": 3, "clamp_max": 50}),
    "clamp": (lambda a: min(max(a, -3), 9), {"min": -3, "max": 9}),
}
# clamp on i4 limits the bounds to the 4-bit range first (upstream's packed kernel); 9 -> 7
# changes nothing for 4-bit values


@pytest.mark.parametrize(("op", "dtype"), pairs(list(INT_UNARY), frozenset(INT_DTYPES)), ids=str)
def test_integer_unary_ops(op: str, dtype: str) -> None:
    fn, settings = INT_UNARY[op]
    x = int_values(dtype, 24, np.random.default_rng(3)).reshape(2, 3, 4)
    if op == "clamp" and dtype not in SIGNED:
        fn, settings = (lambda a: min(max(a, 3), 9)), {"min": 3, "max": 9}
    out = {"sign": "i8", "is_neg": "bool"}.get(op, dtype)
    assert_same(run(op, [x], settings), expected([fn(v) for v in py(x)], out, x.shape))


@pytest.mark.parametrize("name", [d for _, d in pairs(["popcount"], frozenset(INT_DTYPES))])
def test_popcount(name: str) -> None:
    x = int_values(name, 20, np.random.default_rng(4))
    width = int(name[1:])
    want = [bin(v & ((1 << width) - 1)).count("1") for v in py(x)]
    assert_same(run("popcount", [x]), expected(want, "u8", x.shape))


def fmin(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else min(a, b)


def fmax(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


FLOAT_BINARY: dict[str, Callable[[float, float], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": lambda a, b: math.nan if b == 0 else a / b,
    "min": fmin,
    "max": fmax,
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@pytest.mark.parametrize(
    ("op", "dtype"), pairs(list(FLOAT_BINARY), frozenset(FLOAT_DTYPES)), ids=str
)
def test_float_binary_ops(op: str, dtype: str) -> None:
    rng = np.random.default_rng(11)
    a, b = float_values(dtype, 40, rng).reshape(5, 8), float_values(dtype, 40, rng).reshape(5, 8)
    out = "bool" if op in ("eq", "ne", "lt", "le", "gt", "ge") else dtype
    assert_same(run(op, [a, b]), expected([FLOAT_BINARY[op](x, y) for x, y in zip(py(a), py(b))], out, a.shape))


WIDE = Context(prec=400)  # enough digits for any float64 integer part


def round_decimal(x: float, mode: str) -> float:
    if not math.isfinite(x):
        return x
    r = float(Decimal(x).quantize(Decimal(1), rounding=mode, context=WIDE))
    return math.copysign(r, x) if r == 0 else r


FLOAT_UNARY: dict[str, tuple[Callable[[float], Any], dict[str, Any]]] = {
    "neg": (operator.neg, {}),
    "abs": (abs, {}),
    "recip": (lambda x: math.nan if x == 0 else 1 / x, {}),
    "sign": (lambda x: (x > 0) - (x < 0), {}),
    "floor": (lambda x: round_decimal(x, ROUND_FLOOR), {}),
    "ceil": (lambda x: round_decimal(x, ROUND_CEILING), {}),
    "trunc": (lambda x: round_decimal(x, ROUND_DOWN), {}),
    "round": (lambda x: round_decimal(x, ROUND_HALF_UP), {}),
    "relu": (lambda x: min(x if x >= 0 else x * 0.25, 6.0) if not math.isnan(x) else x, {"alpha": 0.25, "clamp_max": 6.0}),
    # Rust `x.max(min).min(max)`: a NaN operand is dropped, so NaN becomes min
    "clamp": (lambda x: fmin(fmax(x, -1.5), 2.0), {"min": -1.5, "max": 2.0}),
    "is_nan": (math.isnan, {}),
    "is_inf": (math.isinf, {}),
    "is_neg": (lambda x: math.copysign(1.0, x) < 0, {}),  # the sign bit: -0.0 and -NaN count
}


@pytest.mark.parametrize(
    ("op", "dtype"), pairs(list(FLOAT_UNARY), frozenset(FLOAT_DTYPES)), ids=str
)
def test_float_unary_ops(op: str, dtype: str) -> None:
    fn, settings = FLOAT_UNARY[op]
    x = float_values(dtype, 30, np.random.default_rng(5)).reshape(5, 6)
    out = {"sign": "i8", "is_nan": "bool", "is_inf": "bool", "is_neg": "bool"}.get(op, dtype)
    assert_same(run(op, [x], settings), expected([fn(v) for v in py(x)], out, x.shape))


def test_round_ties_away_from_zero() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997, -0.4, 8388609.0], np.float32)
    assert_same(run("round", [x]), np.array([1, 2, 3, -1, -3, 0, -0.0, 8388609.0], np.float32))
    assert np.signbit(run("round", [np.array([-0.4], np.float32)]))[0]


@pytest.mark.parametrize("dtype", sorted(FLOAT_DTYPES))
def test_fma_close_to_exact(dtype: str) -> None:
    rng = np.random.default_rng(6)
    a, b, c = (float_values(dtype, 12, rng, specials=False).reshape(3, 4) for _ in range(3))
    want = exact(a) * exact(b) + exact(c)
    result = run("fma", [a, b, c])
    assert_close(result, expected(list(want.ravel()), dtype, want.shape).astype(np.float64), dtype)


def test_low_precision_rounds_per_element() -> None:
    # bf16 has 8 significant bits: 1 + 2**-8 is a tie and rounds to even (1.0); f32 keeps it.
    one, tiny = np.array([1.0], ml_dtypes.bfloat16), np.array([2.0**-8], ml_dtypes.bfloat16)
    assert_same(run("add", [one, tiny]), np.array([1.0], ml_dtypes.bfloat16))
    three = np.array([3 * 2.0**-9], ml_dtypes.bfloat16)
    assert_same(run("add", [one, three]), np.array([1 + 2.0**-7], ml_dtypes.bfloat16))  # 1.0058 -> 1.0078
    h = np.array([2048.0], np.float16)
    assert_same(run("add", [h, np.array([1.0], np.float16)]), np.array([2048.0], np.float16))
    assert_same(run("add", [h, np.array([3.0], np.float16)]), np.array([2052.0], np.float16))
    f8 = np.array([57344.0], ml_dtypes.float8_e5m2)  # e5m2 max; doubling overflows to inf
    assert_same(run("add", [f8, f8]), np.array([np.inf], ml_dtypes.float8_e5m2))
    x = np.array([0.1], np.float16)  # f16(0.1) * 3 computed in f32 then rounded once
    assert_same(run("mul", [x, np.array([3.0], np.float16)]), np.array([np.float32(x[0]) * 3], np.float16))


# --- booleans, wrap-around, division ------------------------------------------------------------------


def test_bool_arithmetic() -> None:
    a, b = np.array([False, False, True, True]), np.array([False, True, False, True])
    assert_same(run("add", [a, b]), a | b)
    assert_same(run("mul", [a, b]), a & b)
    assert_same(run("and", [a, b]), a & b)
    assert_same(run("or", [a, b]), a | b)
    assert_same(run("xor", [a, b]), a ^ b)
    assert_same(run("not", [a]), ~a)
    assert_same(run("eq", [a, b]), a == b)
    m1, m2 = np.array([[True, False], [False, False]]), np.array([[True, True], [True, False]])
    assert_same(run("matmul", [m1, m2]), np.array([[True, True], [False, False]]))
    assert_same(run("fill", [a], {"value": 2}), np.ones(4, np.bool_))
    assert_same(run("fill", [a], {"value": False}), np.zeros(4, np.bool_))


def test_integer_wrap_around() -> None:
    i4 = lambda *v: np.array(v, ml_dtypes.int4)  # noqa: E731
    u4 = lambda *v: np.array(v, ml_dtypes.uint4)  # noqa: E731
    assert_same(run("add", [i4(7, -8), i4(1, -1)]), i4(-8, 7))
    assert_same(run("mul", [i4(4, -3), i4(4, 3)]), i4(0, -9 + 16))
    assert_same(run("neg", [i4(-8, 3)]), i4(-8, -3))
    assert_same(run("sub", [u4(0, 3), u4(1, 5)]), u4(15, 14))
    assert_same(run("shl", [u4(9, 1)], {"bits": 2}), u4(4, 4))
    assert_same(run("add", [np.array([2**63 - 1], np.int64), np.array([1], np.int64)]), np.array([-(2**63)], np.int64))
    assert_same(run("sub", [np.array([0], np.uint64), np.array([1], np.uint64)]), np.array([2**64 - 1], np.uint64))
    assert_same(run("div", [np.array([-128], np.int8), np.array([-1], np.int8)]), np.array([-128], np.int8))
    assert_same(run("rem", [np.array([-(2**63)], np.int64), np.array([-1], np.int64)]), np.array([0], np.int64))
    mn = np.array([-(2**63)], np.int64)
    assert_same(run("div", [mn, np.array([-1], np.int64)]), mn)
    assert_same(run("floor_div", [mn, np.array([-1], np.int64)]), mn)


def test_division_by_zero_masks() -> None:
    f = np.array([1.0, -1.0, 0.0, 2.0], np.float32)
    z = np.array([0.0, -0.0, 0.0, 4.0], np.float32)
    assert_same(run("div", [f, z]), np.array([np.nan, np.nan, np.nan, 0.5], np.float32))
    assert_same(run("div", [f, z], {"div_by_zero_mask": 9}), np.array([9, 9, 9, 0.5], np.float32))
    assert_same(run("div", [f, z], {"div_by_zero_mask": True}), np.array([1, 1, 1, 0.5], np.float32))
    assert_same(run("recip", [z]), np.array([np.nan, np.nan, np.nan, 0.25], np.float32))
    assert_same(run("recip", [z.astype(np.float16)], {"div_by_zero_mask": -1.5}), np.array([-1.5, -1.5, -1.5, 0.25], np.float16))
    i = np.array([7, -7, 5], np.int32)
    zi = np.array([0, 0, 2], np.int32)
    assert_same(run("div", [i, zi]), np.array([0, 0, 2], np.int32))
    assert_same(run("div", [i, zi], {"div_by_zero_mask": -1}), np.array([-1, -1, 2], np.int32))
    assert_same(run("floor_div", [i, zi], {"div_by_zero_mask": 3}), np.array([3, 3, 2], np.int32))
    assert_same(run("rem", [i, zi]), np.array([0, 0, 1], np.int32))
    assert_same(run("div", [np.array([1], np.int8), np.array([0], np.int8)], {"div_by_zero_mask": 300}), np.array([44], np.int8))


def test_signed_division_conventions() -> None:
    a = np.array([7, -7, 7, -7, 6], np.int16)
    b = np.array([2, 2, -2, -2, -3], np.int16)
    assert_same(run("div", [a, b]), np.array([3, -3, -3, 3, -2], np.int16))  # toward zero
    assert_same(run("floor_div", [a, b]), np.array([3, -4, -3, 4, -2], np.int16))  # Rust div_euclid
    assert_same(run("rem", [a, b]), np.array([1, -1, 1, -1, 0], np.int16))  # Rust %: sign of dividend


# --- broadcasting ------------------------------------------------------------------------------------


@hyp_settings(max_examples=60, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
    op=st.sampled_from(["add", "sub", "mul", "div", "floor_div", "rem"]),
    dtype=st.sampled_from(["i8", "u16", "i4", "i64"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_broadcast_matches_numpy(shapes: Any, op: str, dtype: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    (sa, sb), result_shape = shapes.input_shapes, shapes.result_shape
    a = int_values(dtype, int(np.prod(sa)), rng).reshape(sa)
    b = int_values(dtype, int(np.prod(sb)), rng).reshape(sb)
    settings = {"div_by_zero_mask": MASK} if op in ("div", "floor_div") else {}
    result = run(op, [a, b], settings)
    spec = lookup_op(op)
    assert spec is not None and spec.shape_rule is not None
    assert spec.shape_rule([sa, sb], settings) == result_shape
    ea, eb = np.broadcast_arrays(exact(a).astype(object), exact(b).astype(object))
    want = [INT_BINARY[op](x, y) for x, y in zip(ea.ravel().tolist(), eb.ravel().tolist())]
    assert_same(result, expected(want, dtype, result_shape))


def test_broadcast_float_and_scalar() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 1, 3)
    b = np.array([[10.0], [20.0]], np.float32)
    assert_same(run("add", [a, b]), a + b)
    s = np.array(2.0, np.float16)  # 0-d
    assert_same(run("mul", [s, s]), np.array(4.0, np.float16))
    assert run("mul", [s, s]).shape == ()
    assert_same(run("sub", [s, np.ones((2, 2), np.float16)]), np.ones((2, 2), np.float16))


# --- reductions -------------------------------------------------------------------------------------


def scan_oracle(op: str, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Upstream's float reduction loop, transcribed: visit the input in row-major order and
    fold each element into its output slot (sum/mean from 0.0, prod from 1.0, max/min from
    the first element with `>`/`<`), in float32 (float64 for f64) numpy scalars."""
    math_type = np.float64 if dt(x) == "f64" else np.float32
    values = x.astype(math_type)
    keep = [i for i in range(x.ndim) if i not in axes]
    slots: dict[tuple[int, ...], Any] = {}
    for idx in np.ndindex(*x.shape):
        key, v = tuple(idx[i] for i in keep), values[idx]
        if op in ("sum_axis", "mean_axis"):
            slots[key] = math_type(slots.get(key, math_type(0.0)) + v)
        elif op == "prod_axis":
            slots[key] = math_type(slots.get(key, math_type(1.0)) * v)
        elif key not in slots or (v > slots[key] if op == "max_axis" else v < slots[key]):
            slots[key] = v
    count = math_type(int(np.prod([x.shape[a] for a in axes])))
    out_shape = tuple(x.shape[i] for i in keep)
    flat = [float(slots[k] / count if op == "mean_axis" else slots[k]) for k in np.ndindex(*out_shape)]
    want = expected(flat, dt(x), out_shape)
    return want.reshape(tuple(1 if i in axes else d for i, d in enumerate(x.shape))) if keepdims else want


@hyp_settings(max_examples=80, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
    data=st.data(),
    op=st.sampled_from(["sum_axis", "mean_axis", "prod_axis", "max_axis", "min_axis"]),
    dtype=st.sampled_from(["f32", "f16", "bf16", "f64", "f8", "i8", "u8", "i4", "i64", "u32"]),
    keepdims=st.booleans(),
)
def test_reductions_match_oracles(shape: tuple[int, ...], data: Any, op: str, dtype: str, keepdims: bool) -> None:
    rank = len(shape)
    axes = data.draw(st.none() | st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=3))
    settings: dict[str, Any] = {"keepdims": keepdims} if keepdims or data.draw(st.booleans()) else {}
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = int(np.prod(shape))
    if dtype in FLOAT_DTYPES and op == "prod_axis":  # keep products in range
        x = np.array(rng.uniform(0.5, 1.5, size=n), np.float32).astype(numpy_dtype(dtype)).reshape(shape)
    elif dtype in FLOAT_DTYPES:
        x = float_values(dtype, n, rng, specials=data.draw(st.booleans())).reshape(shape)
    else:
        x = int_values(dtype, n, rng).reshape(shape)
    if axes is None:  # upstream's axes_from_attrs: the setting is required
        with pytest.raises(ExecutionError, match=f"op {op} missing axes attribute"):
            run(op, [x], settings)
        return
    settings["axes"] = axes
    norm = tuple(sorted({a % rank for a in axes}))
    result = run(op, [x], settings)
    spec = lookup_op(op)
    assert spec is not None and spec.shape_rule is not None
    assert result.shape == spec.shape_rule([shape], settings)
    if dtype in FLOAT_DTYPES:  # exact: same order, same roundings as upstream's loop
        assert_same(result, scan_oracle(op, x, norm, keepdims))
        return
    ox = exact(x).astype(object)
    if op == "mean_axis":
        sums = np.sum(ox, axis=norm, keepdims=keepdims)
        count = int(np.prod([shape[a] for a in norm]))
        width = "i64" if dtype in SIGNED else "u64"
        want = np.vectorize(lambda s: trunc_div(wrap_int(s, width), count), otypes=[object])(sums)
    else:
        fn = {"sum_axis": np.sum, "prod_axis": np.prod, "max_axis": np.max, "min_axis": np.min}[op]
        want = np.asarray(fn(ox, axis=norm, keepdims=keepdims), dtype=object)
    assert_same(result, expected(list(np.ravel(want)), dtype, np.shape(want)))


def test_reduction_defaults_and_examples() -> None:
    x = np.array([[1, 2, 3], [4, 5, 6]], np.int16)
    assert_same(run("sum_axis", [x], {"axes": [0, 1]}), np.array(21, np.int16))
    assert_same(run("sum_axis", [x], {"axes": [-1, 1]}), np.array([6, 15], np.int16))
    assert_same(run("sum_axis", [x], {"axes": [0], "keepdims": True}), np.array([[5, 7, 9]], np.int16))
    assert_same(run("mean_axis", [np.array([-3, -4], np.int8)], {"axes": [0]}), np.array(-3, np.int8))  # -3.5 truncates
    assert_same(run("prod_axis", [np.array([16, 16], np.int8)], {"axes": [0]}), np.array(0, np.int8))
    f = np.array([[1.0, np.nan], [np.nan, np.nan]], np.float32)
    assert_same(run("max_axis", [f], {"axes": [1]}), np.array([1.0, np.nan], np.float32))
    assert_same(run("mean_axis", [np.zeros((2, 0), np.float32)], {"axes": [1]}), np.array([np.nan, np.nan], np.float32))
    assert_same(run("sum_axis", [np.zeros((2, 0), np.int32)], {"axes": [1]}), np.array([0, 0], np.int32))
    assert_same(run("prod_axis", [np.zeros((2, 0), np.float32)], {"axes": [1]}), np.array([1.0, 1.0], np.float32))
    h = np.full(4096, 1.0, np.float16)  # f16 alone cannot count past 2048: the sum runs in f32
    assert_same(run("sum_axis", [h], {"axes": [0]}), np.array(4096.0, np.float16))
    for op in ("sum_axis", "mean_axis", "prod_axis", "max_axis", "min_axis"):
        with pytest.raises(ExecutionError, match=f"op {op} missing axes attribute"):
            run(op, [x])


def test_float_sums_are_sequential() -> None:
    # upstream adds one element at a time: 1e8 + 1 == 1e8 in f32, so sixteen ones vanish;
    # a pairwise sum would add them up first (1e8 + 16)
    x = np.array([1e8] + [1.0] * 16, np.float32)
    assert_same(run("sum_axis", [x], {"axes": [0]}), np.array(1e8, np.float32))
    assert_same(run("mean_axis", [x], {"axes": [0]}), np.array(np.float32(1e8) / np.float32(17), np.float32))
    y = np.array([1.0] * 16 + [1e8], np.float32)  # the ones first: they add up before 1e8 joins
    assert_same(run("sum_axis", [y], {"axes": [0]}), np.array(1e8 + 16, np.float32))
    # several axes: row-major order of the reduced elements ([0, 0], [0, 1], [1, 0], [1, 1]);
    # 1e8 - 1e8 + 1 + 1 = 2, where column order (1e8 + 1 - 1e8 + 1) would give 1
    z = np.array([[[1e8], [-1e8]], [[1.0], [1.0]]], np.float32)
    assert_same(run("sum_axis", [z], {"axes": [0, 1]}), np.array([2.0], np.float32))
    # wide outputs take the other code path (one vectorised add per reduced element)
    w = np.tile(x[:, None], (1, 20))
    assert_same(run("sum_axis", [w], {"axes": [0]}), np.full(20, 1e8, np.float32))
    assert_same(run("sum_axis", [w[::-1]], {"axes": [0]}), np.full(20, 1e8 + 16, np.float32))
    # an all -0.0 sum is +0.0 (0.0 + -0.0), a product starts from 1.0
    for zeros in (np.full(2, -0.0, np.float32), np.full((2, 3), -0.0, np.float32)):
        s = run("sum_axis", [zeros], {"axes": [0]})
        assert (s == 0).all() and not np.signbit(s).any()
        assert np.signbit(run("prod_axis", [zeros[:1]], {"axes": [0]})).all()


def test_max_min_axis_scan() -> None:
    # `best = first; if x > best { best = x }`: a leading NaN stays, later NaNs are skipped
    x = np.array([[np.nan, 1.0, 3.0], [2.0, np.nan, 5.0], [-1.0, -3.0, np.nan]], np.float32)
    assert_same(run("max_axis", [x], {"axes": [1]}), np.array([np.nan, 5.0, -1.0], np.float32))
    assert_same(run("min_axis", [x], {"axes": [1]}), np.array([np.nan, 2.0, -3.0], np.float32))
    assert_same(run("max_axis", [x], {"axes": [0]}), np.array([np.nan, 1.0, 5.0], np.float32))
    # of equal values (0.0 == -0.0) the first one stays
    assert np.signbit(run("max_axis", [np.array([-0.0, 0.0], np.float32)], {"axes": [0]}))
    assert not np.signbit(run("min_axis", [np.array([0.0, -0.0], np.float32)], {"axes": [0]}))


def argmax_oracle(row: list[Any], want_max: bool, first: bool) -> int:
    """Upstream's loop: `value > best` (`>=` without select_first; `<`/`<=` for argmin)."""
    best = 0
    for i, v in enumerate(row[1:], 1):
        b = row[best]
        if (v > b if want_max else v < b) or (not first and v == b):
            best = i
    return best


@pytest.mark.parametrize("op", ["argmax_axis", "argmin_axis"])
@pytest.mark.parametrize("dtype", ["f32", "bf16", "f8", "i8", "u4", "u64", "i4"])
@pytest.mark.parametrize("select_first", [None, True, False])
def test_arg_reductions(op: str, dtype: str, select_first: bool | None) -> None:
    rng = np.random.default_rng(8)
    if dtype in FLOAT_DTYPES:
        x = np.array(rng.integers(-2, 3, size=24), np.float32).astype(numpy_dtype(dtype)).reshape(2, 3, 4)
        x[0, 0, 1] = np.nan
        x[1, :, 2] = np.nan
        x[0, 1, 0] = np.nan
    else:
        low, high = INT_RANGES[dtype]
        x = np.array(rng.integers(max(low, -2), min(high, 3), size=24), np.int64).astype(numpy_dtype(dtype)).reshape(2, 3, 4)
    for axis in (0, 1, 2, -1):
        for keepdims in (False, True):
            settings: dict[str, Any] = {"axis": axis, "keepdims": keepdims}
            if select_first is not None:
                settings["select_first"] = select_first
            first = select_first is not False
            moved = np.moveaxis(exact(x), axis, -1)
            want = [argmax_oracle(row, op == "argmax_axis", first) for row in moved.reshape(-1, moved.shape[-1]).tolist()]
            want_arr = np.array(want, np.int64).reshape(moved.shape[:-1])
            if keepdims:
                want_arr = np.expand_dims(want_arr, axis)
            assert_same(run(op, [x], settings), want_arr)


def test_arg_reductions_need_axis() -> None:
    x = np.array([[1, 9], [5, 2]], np.int32)
    for op in ("argmax_axis", "argmin_axis"):
        with pytest.raises(ExecutionError, match=f"op {op} missing axis attribute"):
            run(op, [x])
    assert_same(run("argmax_axis", [x], {"axis": 0}), np.array([1, 0], np.int64))
    assert_same(run("argmin_axis", [x], {"axis": 1, "keepdims": True}), np.array([[0], [1]], np.int64))
    f = np.array([np.nan, 3.0, 1.0, 3.0], np.float32)  # a leading NaN is never beaten
    assert_same(run("argmax_axis", [f], {"axis": 0}), np.array(0, np.int64))
    g = np.array([1.0, np.nan, 3.0, 3.0], np.float32)
    assert_same(run("argmax_axis", [g], {"axis": 0}), np.array(2, np.int64))
    assert_same(run("argmax_axis", [g], {"axis": 0, "select_first": False}), np.array(3, np.int64))


# --- matmul ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [d for _, d in pairs(["matmul"], frozenset(DTYPE_NAMES))])
def test_matmul(name: str) -> None:
    rng = np.random.default_rng(9)
    shapes = [((2, 3), (3, 4)), ((2, 1, 3, 5), (4, 5, 2)), ((5, 1), (1, 3))]
    for sa, sb in shapes:
        n_a, n_b = int(np.prod(sa)), int(np.prod(sb))
        if name in FLOAT_DTYPES:
            a = float_values(name, n_a, rng, specials=False).reshape(sa)
            b = float_values(name, n_b, rng, specials=False).reshape(sb)
            want = np.matmul(exact(a), exact(b))
            scale = np.abs(exact(a)).max() * np.abs(exact(b)).max() * sa[-1]
            result = run("matmul", [a, b])
            assert result.dtype == numpy_dtype(name) and result.shape == want.shape
            np.testing.assert_allclose(result.astype(np.float64), want, rtol=TOLERANCE[name], atol=TOLERANCE[name] * scale)
        else:
            a, b = values_of(name, n_a, rng).reshape(sa), values_of(name, n_b, rng).reshape(sb)
            want = np.matmul(exact(a).astype(object), exact(b).astype(object))
            if name == "bool":
                want = want != 0
            assert_same(run("matmul", [a, b]), expected(list(np.ravel(want)), name, want.shape))


def test_matmul_f16_computes_in_f32() -> None:
    # 2048 + 1 + 1 in f16 steps would stay 2048; in f32 it is 2050.
    a = np.array([[2048.0, 1.0, 1.0]], np.float16)
    b = np.ones((3, 1), np.float16)
    assert_same(run("matmul", [a, b]), np.array([[2050.0]], np.float16))


def naive_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Upstream's loop, transcribed: acc = 0.0; acc = acc + a[m, k] * b[k, n] (numpy scalars)."""
    math_type = np.float64 if dt(a) == "f64" else np.float32
    a, b = a.astype(math_type), b.astype(math_type)
    out = np.zeros(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1]), math_type)
    ab, bb = np.broadcast_to(a, out.shape[:-2] + a.shape[-2:]), np.broadcast_to(b, out.shape[:-2] + b.shape[-2:])
    for idx in np.ndindex(*out.shape):
        *batch, m, n = idx
        acc = math_type(0.0)
        for k in range(a.shape[-1]):
            acc = math_type(acc + math_type(ab[(*batch, m, k)] * bb[(*batch, k, n)]))
        out[idx] = acc
    return out


@pytest.mark.parametrize("name", ["f32", "f64", "f16", "bf16", "f8"])
def test_matmul_is_sequential_over_k(name: str) -> None:
    rng = np.random.default_rng(14)
    for sa, sb in [((3, 7), (7, 2)), ((2, 1, 2, 5), (3, 5, 4)), ((1, 0), (0, 3))]:
        top = 8 if name in ("f32", "f64") else 3  # wide magnitudes make the order matter
        scale = 10.0 ** rng.integers(-4, top, size=sa)
        a = (rng.normal(size=sa) * scale).astype(np.float32).astype(numpy_dtype(name))
        b = rng.normal(size=sb).astype(np.float32).astype(numpy_dtype(name))
        want = naive_matmul(a, b)
        assert_same(run("matmul", [a, b]), want.astype(numpy_dtype(name)))
    # 1e8 + 1 + 1 + ... stays 1e8 in f32; BLAS could add the ones first
    a = np.array([[1e8] + [1.0] * 16], np.float32)
    assert_same(run("matmul", [a, np.ones((17, 1), np.float32)]), np.array([[1e8]], np.float32))


# --- relu / clamp / fill / filter / is_finite ----------------------------------------------------------


def test_relu_defaults() -> None:
    x = np.array([-3.0, -0.0, 2.0, np.inf, np.nan], np.float32)
    assert_same(run("relu", [x]), np.array([-0.0, -0.0, 2.0, np.inf, np.nan], np.float32))
    assert_same(run("relu", [x], {"clamp_max": 1}), np.array([-0.0, -0.0, 1.0, 1.0, np.nan], np.float32))
    i = np.array([-100, 5, 127], np.int8)
    assert_same(run("relu", [i]), np.array([0, 5, 127], np.int8))
    assert_same(run("relu", [i], {"alpha": 2, "clamp_max": 100}), np.array([wrap_int(-200, "i8"), 5, 100], np.int8))
    assert_same(run("relu", [np.array([-1, 7], ml_dtypes.int4)], {"alpha": -1}), np.array([1, 7], ml_dtypes.int4))


def test_clamp_defaults_and_order() -> None:
    # upstream: `x.max(min).min(max)` with Rust's NaN-dropping max/min; defaults f64::MIN/MAX
    x = np.array([-5.0, 0.5, 5.0, np.nan, np.inf], np.float32)
    assert_same(run("clamp", [x]), np.array([-5.0, 0.5, 5.0, -np.inf, np.inf], np.float32))  # f64::MIN as f32
    assert_same(run("clamp", [x], {"min": 0}), np.array([0.0, 0.5, 5.0, 0.0, np.inf], np.float32))
    assert_same(run("clamp", [x], {"max": 1}), np.array([-5.0, 0.5, 1.0, -np.inf, 1.0], np.float32))
    assert_same(run("clamp", [x], {"min": 2.0, "max": 1.0}), np.full(5, 1.0, np.float32))  # max wins
    big = np.finfo(np.float64).max
    d = np.array([np.inf, -np.inf, np.nan, 1.0], np.float64)
    assert_same(run("clamp", [d]), np.array([big, -big, -big, 1.0], np.float64))
    h = np.array([np.nan, 70000.0], np.float32).astype(np.float16)
    assert_same(run("clamp", [h]), np.array([-np.inf, np.inf], np.float16))
    assert_same(run("clamp", [h], {"min": -1.0, "max": 1e6}), np.array([-1.0, np.inf], np.float16))
    # integers: the bounds are i64 (u64) values, not limited to the dtype; the result wraps
    u = np.array([0, 7, 255], np.uint8)
    assert_same(run("clamp", [u], {"min": 0, "max": 300}), u)
    assert_same(run("clamp", [u], {"max": 9}), np.array([0, 7, 9], np.uint8))
    assert_same(run("clamp", [u], {"min": 300}), np.full(3, 44, np.uint8))  # 300 as u8
    i = np.array([5, -100, 100], np.int8)
    assert_same(run("clamp", [i], {"min": 200}), np.full(3, -56, np.int8))  # 200 as i8
    assert_same(run("clamp", [i], {"max": -129}), np.full(3, 127, np.int8))  # -129 as i8
    assert_same(run("clamp", [i], {"min": True, "max": 50}), np.array([5, 1, 50], np.int8))
    # i4/u4: upstream's packed kernel limits the bounds to the 4-bit range first
    i4 = np.array([5, -8, 7], ml_dtypes.int4)
    assert_same(run("clamp", [i4], {"min": 200}), np.full(3, 7, ml_dtypes.int4))
    assert_same(run("clamp", [i4], {"min": -100, "max": -50}), np.full(3, -2, ml_dtypes.int4))  # -50 as 4 bits
    assert_same(run("clamp", [np.array([3, 15], ml_dtypes.uint4)], {"min": 20}), np.full(2, 15, ml_dtypes.uint4))
    for name in ("min", "max"):
        with pytest.raises(ExecutionError, match=f"op clamp {name} must be non-negative for unsigned dtype"):
            run("clamp", [u], {name: -1})


def test_fill() -> None:
    assert_same(run("fill", [np.zeros((2, 2), np.float16)], {"value": 0.1}), np.full((2, 2), np.float32(0.1), np.float16))
    assert_same(run("fill", [np.zeros(2, ml_dtypes.bfloat16)], {"value": 3}), np.full(2, 3.0, ml_dtypes.bfloat16))
    assert_same(run("fill", [np.zeros(3, np.uint8)], {"value": 300}), np.full(3, 44, np.uint8))
    assert_same(run("fill", [np.zeros(1, np.int8)], {"value": -1}), np.full(1, -1, np.int8))
    assert_same(run("fill", [np.zeros(1, np.bool_)], {"value": -1}), np.full(1, True))
    for name in ("u4", "u8", "u64"):
        with pytest.raises(ExecutionError, match="op fill value must be non-negative for unsigned dtype"):
            run("fill", [np.zeros(1, numpy_dtype(name))], {"value": -1})
    assert_same(run("fill", [np.zeros(2, ml_dtypes.int4)], {"value": 9}), np.full(2, -7, ml_dtypes.int4))
    assert_same(run("fill", [np.zeros(2, np.int64)], {"value": np.int64(5)}), np.full(2, 5, np.int64))
    assert_same(run("fill", [np.zeros((), np.float32)], {"value": True}), np.array(1.0, np.float32))


@pytest.mark.parametrize("name", [d for _, d in pairs(["filter"], frozenset(DTYPE_NAMES))])
def test_filter(name: str) -> None:
    rng = np.random.default_rng(10)
    a, b, cond = (values_of(name, 12, rng).reshape(3, 4) for _ in range(3))
    want = [x if c != 0 else y for x, y, c in zip(py(a), py(b), py(cond))]  # NaN != 0 holds
    assert_same(run("filter", [a, b, cond]), expected(want, name, a.shape))


def test_is_finite_is_a_scalar_reduction() -> None:
    assert_same(run("is_finite", [np.array([[1.0, 2.0], [3.0, -4.0]], np.float32)]), np.array(True))
    for bad in (np.inf, -np.inf, np.nan):
        assert_same(run("is_finite", [np.array([1.0, bad], np.float16)]), np.array(False))
    assert_same(run("is_finite", [np.zeros(0, np.float32)]), np.array(True))
    assert_same(run("is_finite", [np.array([1.0], ml_dtypes.float8_e5m2)]), np.array(True))


def test_shifts_past_the_width() -> None:
    # upstream: `(v as i64).wrapping_shl(bits)` then `as i8`: the count is taken modulo 64
    x = np.array([-128, 64, 1], np.int8)
    assert_same(run("shl", [x], {"bits": 8}), np.zeros(3, np.int8))
    assert_same(run("shl", [x], {"bits": 9}), np.zeros(3, np.int8))  # 512 as i8, not 1 << 1
    assert_same(run("shr", [x], {"bits": 8}), np.array([-1, 0, 0], np.int8))
    assert_same(run("shr", [x], {"bits": 200}), np.array([-1, 0, 0], np.int8))  # 200 % 64 = 8
    assert_same(run("shl", [x], {"bits": 100}), np.zeros(3, np.int8))  # 100 % 64 = 36
    assert_same(run("shl", [x], {"bits": 64}), x)  # 64 % 64 = 0
    assert_same(run("shr", [x], {"bits": 65}), np.array([-64, 32, 0], np.int8))  # 65 % 64 = 1
    assert_same(run("shl", [x], {"bits": -3}), x)  # Int(v).max(0)
    u = np.array([2**64 - 1], np.uint64)
    assert_same(run("shr", [u], {"bits": 63}), np.array([1], np.uint64))
    assert_same(run("shr", [u], {"bits": 64}), u)
    assert_same(run("shl", [u], {"bits": 2**32 + 1}), np.array([2**64 - 2], np.uint64))  # `as u32`, then % 64
    assert_same(run("shl", [u], {"bits": np.int64(63)}), np.array([2**63], np.uint64))
    assert_same(run("shl", [np.array([1], np.int16)], {"bits": True}), np.array([2], np.int16))
    assert_same(run("shl", [np.array([1], np.int32)], {"bits": 32}), np.array([0], np.int32))
    assert_same(run("shl", [np.array([1], np.int64)], {"bits": 65}), np.array([2], np.int64))
    # i4/u4: upstream's packed kernels shift the i8/u8 value, so the count is taken modulo 8
    i4 = np.array([1, -8, 7], ml_dtypes.int4)
    assert_same(run("shl", [i4], {"bits": 9}), np.array([2, 0, -2], ml_dtypes.int4))
    assert_same(run("shr", [i4], {"bits": 10}), np.array([0, -2, 1], ml_dtypes.int4))
    assert_same(run("shl", [i4], {"bits": 8}), i4)
    u4 = np.array([1, 15], ml_dtypes.uint4)
    assert_same(run("shl", [u4], {"bits": 11}), np.array([8, 8], ml_dtypes.uint4))
    assert_same(run("shr", [u4], {"bits": 4}), np.array([0, 0], ml_dtypes.uint4))


# --- cast --------------------------------------------------------------------------------------------

CAST_OUTS = ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f8", "f16", "bf16", "f32", "f64")
ROUNDING = {"trunc": ROUND_DOWN, "floor": ROUND_FLOOR, "ceil": ROUND_CEILING, "nearest": ROUND_HALF_UP}


def cast_oracle(v: Any, src: str, out: str, mode: str, saturate: bool) -> Any:
    if out in FLOAT_DTYPES:
        return float(v)  # expected() rounds via float32 like the kernel
    if src not in FLOAT_DTYPES:
        low, high = INT_RANGES[out]
        return min(max(v, low), high) if saturate else v
    if math.isnan(v):
        return 0
    low, high = INT_RANGES[out]
    if math.isinf(v):
        return (high if v > 0 else low) if saturate else 0
    r = int(Decimal(v).quantize(Decimal(1), rounding=ROUNDING[mode], context=WIDE))
    return min(max(r, low), high) if saturate else r


@pytest.mark.parametrize("name", [d for _, d in pairs(["cast"], frozenset(DTYPE_NAMES))])
@pytest.mark.parametrize("mode", [None, "trunc", "floor", "ceil", "nearest"])
@pytest.mark.parametrize("saturate", [None, True, False])
def test_cast(name: str, mode: str | None, saturate: bool | None) -> None:
    rng = np.random.default_rng(12)
    if name in FLOAT_DTYPES:
        x = float_values(name, 40, rng)
        scale = np.array([1, 100, 1e4, 3e9, 1e19, 1e30, 1, 1] * 5, np.float64)[:40]
        x = (exact(x) * scale).astype(np.float32 if name != "f64" else np.float64).astype(numpy_dtype(name))
    else:
        x = int_values(name, 40, rng)
    for out in CAST_OUTS:
        settings: dict[str, Any] = {"to": out}
        if mode is not None:
            settings["rounding_mode"] = mode
        if saturate is not None:
            settings["saturate"] = saturate
        want = [cast_oracle(v, name, out, mode or "trunc", saturate is not False) for v in py(x)]
        assert_same(run("cast", [x], settings), expected(want, out, x.shape))


def test_cast_examples() -> None:
    f = np.array([1.5, -1.5, 2.5, -2.5, 300.0, -300.0, np.nan, np.inf, -np.inf], np.float32)
    assert_same(run("cast", [f], {"to": "i8"}), np.array([1, -1, 2, -2, 127, -128, 0, 127, -128], np.int8))
    assert_same(
        run("cast", [f], {"to": "i8", "rounding_mode": "nearest"}),
        np.array([2, -2, 3, -3, 127, -128, 0, 127, -128], np.int8),
    )
    assert_same(
        run("cast", [f], {"to": "u8", "rounding_mode": "floor", "saturate": False}),
        np.array([1, 254, 2, 253, 44, 212, 0, 0, 0], np.uint8),
    )
    big = np.array([2.0**63, -(2.0**63) - 4096, 1e30], np.float64)
    assert_same(run("cast", [big], {"to": "i64"}), np.array([2**63 - 1, -(2**63), 2**63 - 1], np.int64))
    assert_same(run("cast", [big], {"to": "u64", "saturate": False}), np.array([2**63, wrap_int(-(2**63) - 4096, "u64"), int(1e30) % 2**64], np.uint64))
    assert_same(run("cast", [np.array([300, -5], np.int32)], {"to": "u8"}), np.array([255, 0], np.uint8))
    assert_same(run("cast", [np.array([300, -5], np.int32)], {"to": "u8", "saturate": False}), np.array([44, 251], np.uint8))
    assert_same(run("cast", [np.array([2**64 - 1], np.uint64)], {"to": "i64"}), np.array([2**63 - 1], np.int64))
    assert_same(run("cast", [np.array([-8, 7], ml_dtypes.int4)], {"to": "u16"}), np.array([0, 7], np.uint16))
    assert_same(run("cast", [np.array([65504.0 * 2], np.float32)], {"to": "f16"}), np.array([np.inf], np.float16))
    assert_same(run("cast", [np.array([2**24 + 1], np.int64)], {"to": "f32"}), np.array([2**24], np.float32))
    assert_same(run("cast", [np.array([0.0, -2.0, np.nan], np.float32)], {"to": "bool"}, "bool"), np.array([False, True, True]))


# --- settings given in other forms ---------------------------------------------------------------------


def test_settings_accept_numpy_scalars() -> None:
    x = np.array([-2.0, 8.0], np.float32)
    settings = {"alpha": np.float32(0.5), "clamp_max": np.int64(4)}
    assert_same(run("relu", [x], settings), np.array([-1.0, 4.0], np.float32))
    assert_same(run("sum_axis", [np.ones((2, 2), np.int8)], {"axes": np.array([0]), "keepdims": np.True_}), np.full((1, 2), 2, np.int8))
    assert_same(run("argmax_axis", [np.eye(2, dtype=np.int8)], {"axis": np.int32(1)}), np.array([0, 1], np.int64))


# --- errors ------------------------------------------------------------------------------------------

F = np.zeros((2, 3), np.float32)
I = np.zeros((2, 3), np.int32)
U = np.zeros((2, 3), np.uint8)

ERRORS = [
    ("add", [F, np.zeros(4, np.float32)], {}, "op add cannot broadcast shapes [2, 3] and [4]"),
    ("add", [F], {}, "op add expects 2 inputs, got 1"),
    ("min", [F, np.zeros(3, np.float32)], {}, "op min input shapes differ: [2, 3] vs [3]"),
    ("fma", [F, F, np.zeros((3, 2), np.float32)], {}, "op fma input shapes differ: [2, 3] vs [3, 2]"),
    ("eq", [I, np.zeros((2, 1), np.int32)], {}, "op eq input shapes differ: [2, 3] vs [2, 1]"),
    ("matmul", [F, np.zeros((4, 5), np.float32)], {}, "op matmul inner dims mismatch: [2, 3] x [4, 5]"),
    ("matmul", [np.zeros(3, np.float32), np.zeros((3, 4), np.float32)], {}, "op matmul needs inputs of rank >= 2, got [3] x [3, 4]"),
    ("matmul", [np.zeros((2, 2, 3), np.float32), np.zeros((3, 3, 4), np.float32)], {}, "op matmul cannot broadcast batch dims [2] and [3]"),
    ("sum_axis", [F], {"axes": [2]}, "op sum_axis axis 2 out of range for rank 2"),
    ("mean_axis", [F], {"axes": [-3]}, "op mean_axis axis -3 out of range for rank 2"),
    ("sum_axis", [F], {"axes": []}, "op sum_axis axes must not be empty"),
    ("sum_axis", [F], {"axes": [1.5]}, "op sum_axis setting axes must be a list of integers, got [1.5]"),
    ("sum_axis", [F], {"axes": [0], "keepdims": 1.5}, "op sum_axis setting keepdims must be a bool, got 1.5"),
    ("sum_axis", [F], {}, "op sum_axis missing axes attribute"),
    ("max_axis", [F], {"keepdims": True}, "op max_axis missing axes attribute"),
    ("argmax_axis", [F], {}, "op argmax_axis missing axis attribute"),
    ("argmax_axis", [F], {"axis": 2}, "op argmax_axis axis 2 out of range for rank 2"),
    ("argmin_axis", [F], {"axis": 1.0}, "op argmin_axis setting axis must be an integer, got 1.0"),
    ("argmax_axis", [np.zeros(0, np.float32)], {"axis": 0}, "op argmax_axis reduces over an empty axis of [0]"),
    ("max_axis", [np.zeros((0, 3), np.float32)], {"axes": [0]}, "op max_axis reduces over an empty axis of [0, 3]"),
    ("mean_axis", [np.zeros((2, 0), np.int32)], {"axes": [1]}, "op mean_axis reduces over an empty axis of [2, 0]"),
    ("shl", [I], {}, "op shl requires setting bits"),
    ("shr", [I], {"bits": 1.5}, "op shr setting bits must be an integer, got 1.5"),
    ("fill", [I], {}, "op fill requires setting value"),
    ("fill", [I], {"value": 1.5}, "op fill setting value must be an integer or bool for i32, got 1.5"),
    ("fill", [F], {"value": "x"}, "op fill setting value must be a number, got 'x'"),
    ("div", [I, I], {"div_by_zero_mask": 0.5}, "op div setting div_by_zero_mask must be an integer for integer inputs, got 0.5"),
    ("div", [U, U], {"div_by_zero_mask": -1}, "op div div_by_zero_mask must be non-negative for unsigned dtype"),
    ("floor_div", [U, U], {"div_by_zero_mask": -2}, "op floor_div div_by_zero_mask must be non-negative for unsigned dtype"),
    ("fill", [U], {"value": -1}, "op fill value must be non-negative for unsigned dtype"),
    ("clamp", [U], {"min": -5}, "op clamp min must be non-negative for unsigned dtype"),
    ("clamp", [U], {"max": -1}, "op clamp max must be non-negative for unsigned dtype"),
    ("relu", [I], {"alpha": 0.5}, "op relu setting alpha must be an integer for integer inputs, got 0.5"),
    ("clamp", [I], {"min": 0.5}, "op clamp setting min must be an integer for integer inputs, got 0.5"),
    ("cast", [F], {"to": "i8", "rounding_mode": "up"}, "op cast unsupported rounding_mode 'up' (expected trunc, floor, ceil or nearest)"),
    ("cast", [F], {"to": "i8", "saturate": "yes"}, "op cast setting saturate must be a bool, got 'yes'"),
]


@pytest.mark.parametrize(("op", "inputs", "settings", "message"), ERRORS, ids=[e[-1] for e in ERRORS])
def test_error_messages(op: str, inputs: list[np.ndarray], settings: dict[str, Any], message: str) -> None:
    spec = lookup_op(op)
    assert spec is not None and spec.reference is not None and spec.shape_rule is not None
    out = spec.output_dtype_for([dt(x) for x in inputs], settings) or "i8"
    with pytest.raises(ExecutionError) as info:
        spec.reference(inputs, settings, out)
    assert info.value.message == message
    value_checks = ("value", "bits", "mask", "alpha", "min must", "max must", "rounding", "saturate", "[2, 0]")
    shape_only = not any(w in message for w in value_checks)
    if shape_only:  # the shape rule reports the same shape errors
        with pytest.raises(ExecutionError) as info:
            spec.shape_rule([x.shape for x in inputs], settings)
        assert info.value.message == message


# --- registry wiring -----------------------------------------------------------------------------------


def test_every_builtin_op_has_reference_and_shape_rule() -> None:
    ops = all_ops()
    assert set(UPSTREAM_OPS) <= set(ops)
    for name in UPSTREAM_OPS:
        assert callable(ops[name].reference) and callable(ops[name].shape_rule)
        assert "reference of op " + name in repr(ops[name].reference)


def test_shape_rule_agrees_on_samples() -> None:
    rng = np.random.default_rng(13)
    for op in UPSTREAM_OPS:
        spec = lookup_op(op)
        assert spec is not None and spec.dtypes is not None
        dtype = "f32" if "f32" in spec.dtypes else "i32"
        inputs, settings = sample_case(op, dtype, rng)
        if op == "cast":
            settings = {"to": "i16"}
        for extra in ({}, {"axes": [0], "keepdims": True}, {"axis": -1, "keepdims": True}):
            case = dict(settings, **{k: v for k, v in extra.items() if k in spec.settings})
            out = spec.output_dtype_for([dtype] * spec.arity, case)
            assert spec.reference(inputs, case, out).shape == spec.shape_rule([x.shape for x in inputs], case)


def test_registry_import_does_not_load_numpy() -> None:
    script = "import sys; from oi_compiler.ops.registry import all_ops; all_ops(); assert 'numpy' not in sys.modules"
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=repo_root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_shape_rules_do_not_load_numpy() -> None:
    script = (
        "import sys; from oi_compiler.ops.registry import lookup_op\n"
        "assert lookup_op('matmul').shape_rule([(2, 3), (3, 4)], {}) == (2, 4)\n"
        "assert lookup_op('attention').shape_rule([(4, 8), (3, 2, 8), (3, 2, 8)], {}) == (4, 8)\n"
        "assert 'numpy' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
