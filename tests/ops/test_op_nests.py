"""Loop nests of every op, run on xDSL's interpreter and compared with the numpy reference.

Each case builds `func.func @f(inputs..., output)` with the op's `nest_builder`, verifies
it, round-trips it through text, and runs it twice on xDSL's interpreter: as built
(linalg.generic) and after xDSL's
`convert-linalg-to-loops,lower-affine` (scf.for + memref.load/store + arith), mostly
with static and with dynamic memref shapes. The results must equal
`spec.reference(...)`: exactly for integers, bools and copies, and for float math within
a dtype tolerance (exactly where the computation is only + - * / in f32 or f64, e.g. sums
and matmul, which shows the accumulation order is the reference's).

xDSL's interpreter lacks many ops the nests use, so `NestTestFunctions` below adds them
(test-only): float arithmetic rounded to the result type (the stock one computes in
Python floats), extensions and truncations, int <-> float conversions, the math ops,
`memref.dim`, dynamic `memref.alloc`, views (subview, reinterpret_cast),
`linalg.index`, a `linalg.fill` that does not require a zeroed output, and a
`linalg.generic` that supports `linalg.index` and several outputs (xDSL 0.74's stores every
yielded value into the first output).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from xdsl.builder import Builder
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, memref
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    BFloat16Type,
    Float16Type,
    Float32Type,
    IndexType,
    IntegerType,
    MemRefType,
    ModuleOp,
    Signedness,
)
from xdsl.interpreter import Interpreter, InterpreterFunctions, impl, impl_cast, register_impls
from xdsl.interpreters.affine import AffineFunctions
from xdsl.interpreters.arith import ArithFunctions
from xdsl.interpreters.builtin import BuiltinFunctions, xtype_for_el_type
from xdsl.interpreters.func import FuncFunctions
from xdsl.interpreters.linalg import LinalgFunctions
from xdsl.interpreters.math import MathFunctions
from xdsl.interpreters.memref import MemRefFunctions
from xdsl.interpreters.scf import ScfFunctions
from xdsl.interpreters.shaped_array import ShapedArray
from xdsl.interpreters.utils.ptr import TypedPtr
from xdsl.dialects.linalg.ops import FillOp, GenericOp, IndexOp
from xdsl.ir import Block, Region
from xdsl.parser import Parser
from xdsl.rewriter import InsertPoint
from xdsl.transforms.convert_linalg_to_loops import ConvertLinalgToLoopsPass
from xdsl.transforms.lower_affine import LowerAffinePass
from xdsl.utils.comparisons import to_signed, to_unsigned

from oi_compiler.dtypes import FLOAT_DTYPES, dtype_of_array, dtype_type, numpy_dtype
from oi_compiler.errors import PassError
from oi_compiler.ir_context import make_context
from oi_compiler.ops.nests import COPY_OPS, NO_NEST, NestFunction
from oi_compiler.ops.reference import MODULE_OF
from oi_compiler.ops.registry import all_ops, lookup_op

# --- the interpreter's missing pieces (test-only) ------------------------------------------------


def fround(value: float, t: Any) -> float:
    """`value` rounded to float type `t`, as a Python float."""
    with np.errstate(all="ignore"):
        if isinstance(t, Float32Type):
            return float(np.float32(value))
        if isinstance(t, Float16Type):
            return float(np.float16(np.float32(value)))
        if isinstance(t, BFloat16Type):
            return float(ml_dtypes.bfloat16(np.float32(value)))
    return float(value)


def width(t: Any) -> int:
    return 64 if isinstance(t, IndexType) else t.width.data


def signed_value(value: Any, t: Any) -> int:
    return to_signed(int(value), width(t))


def unsigned_value(value: Any, t: Any) -> int:
    return to_unsigned(int(value), width(t))


def _ieee(fn, *args: float) -> float:
    try:
        return fn(*args)
    except OverflowError:
        return math.inf
    except ValueError:  # domain errors: log(0), log(-1), sqrt(-1)
        if fn is math.log and args[0] == 0:
            return -math.inf
        return math.nan


def _round_half_away(x: float) -> float:
    if not math.isfinite(x):
        return x
    t = float(math.trunc(x))
    r = t + math.copysign(1.0, x) if abs(x - t) >= 0.5 else t
    return math.copysign(r, x) if r == 0 else r  # -0.3 rounds to -0.0


def _fmin(x: float, y: float) -> float:
    return y if math.isnan(x) else x if math.isnan(y) else min(x, y)


def _fmax(x: float, y: float) -> float:
    return y if math.isnan(x) else x if math.isnan(y) else max(x, y)


def _maximum(x: float, y: float) -> float:
    return math.nan if math.isnan(x) or math.isnan(y) else max(x, y)


def _divide(x: float, y: float) -> float:
    if y == 0:
        if x == 0 or math.isnan(x):
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1, y)
    return x / y


@dataclass
class View(ShapedArray):
    """A strided view into another buffer (memref.subview)."""

    base_offset: int = 0
    strides: list[int] = field(default_factory=list)

    def offset(self, index) -> int:
        return self.base_offset + sum(i * s for i, s in zip(index, self.strides, strict=True))


def strides_of(a: ShapedArray) -> tuple[int, list[int]]:
    if isinstance(a, View):
        return a.base_offset, a.strides
    strides, acc = [], 1
    for d in reversed(a.shape):
        strides.append(acc)
        acc *= d
    return 0, strides[::-1]


FLOAT_BINARY = {
    arith.AddfOp: operator.add,
    arith.SubfOp: operator.sub,
    arith.MulfOp: operator.mul,
    arith.DivfOp: _divide,
    arith.MinnumfOp: _fmin,
    arith.MaxnumfOp: _fmax,
    arith.MaximumfOp: _maximum,
    mathd.PowFOp: lambda x, y: _ieee(math.pow, x, y),
}
FLOAT_UNARY = {
    arith.NegfOp: operator.neg,
    mathd.AbsFOp: abs,
    mathd.FloorOp: lambda x: float(math.floor(x)) if math.isfinite(x) else x,
    mathd.CeilOp: lambda x: float(math.ceil(x)) if math.isfinite(x) else x,
    mathd.TruncOp: lambda x: float(math.trunc(x)) if math.isfinite(x) else x,
    mathd.RoundOp: _round_half_away,
    mathd.ExpOp: lambda x: _ieee(math.exp, x),
    mathd.LogOp: lambda x: _ieee(math.log, x),
    mathd.SqrtOp: lambda x: _ieee(math.sqrt, x),
    mathd.TanhOp: math.tanh,
    mathd.ErfOp: math.erf,
    mathd.CosOp: lambda x: _ieee(math.cos, x),
    mathd.SinOp: lambda x: _ieee(math.sin, x),
}
INT_BINARY = {  # (signed operands?, fn)
    arith.DivUIOp: (False, operator.floordiv),
    arith.RemUIOp: (False, operator.mod),
    arith.ShRUIOp: (False, operator.rshift),
    arith.MinSIOp: (True, min),
    arith.MaxSIOp: (True, max),
    arith.MinUIOp: (False, min),
    arith.MaxUIOp: (False, max),
}


def _float_binary(op, args):  # float arithmetic, rounded to the result type
    return (fround(FLOAT_BINARY[type(op)](float(args[0]), float(args[1])), op.results[0].type),)


def _float_unary(op, args):
    return (fround(FLOAT_UNARY[type(op)](float(args[0])), op.results[0].type),)


def _int_binary(op, args):
    signed, fn = INT_BINARY[type(op)]
    t = op.results[0].type
    read = signed_value if signed else unsigned_value
    return (signed_value(fn(read(args[0], t), read(args[1], t)), t),)


@register_impls
class NestTestFunctions(InterpreterFunctions):
    index_stack: list[tuple[int, ...]] = []

    for _op in FLOAT_BINARY:
        locals()[f"run_{_op.__name__}"] = impl(_op)(lambda self, interpreter, op, args: _float_binary(op, args))
    for _op in FLOAT_UNARY:
        locals()[f"run_{_op.__name__}"] = impl(_op)(lambda self, interpreter, op, args: _float_unary(op, args))
    for _op in INT_BINARY:
        locals()[f"run_{_op.__name__}"] = impl(_op)(lambda self, interpreter, op, args: _int_binary(op, args))
    del _op

    @impl(arith.ExtFOp)
    def run_extf(self, interpreter, op, args):
        return (float(args[0]),)

    @impl(arith.TruncFOp)
    def run_truncf(self, interpreter, op, args):
        return (fround(args[0], op.results[0].type),)

    @impl(arith.ExtSIOp)
    def run_extsi(self, interpreter, op, args):
        return (signed_value(args[0], op.operands[0].type),)

    @impl(arith.ExtUIOp)
    def run_extui(self, interpreter, op, args):
        return (signed_value(unsigned_value(args[0], op.operands[0].type), op.results[0].type),)

    @impl(arith.TruncIOp)
    def run_trunci(self, interpreter, op, args):
        return (signed_value(args[0], op.results[0].type),)

    @impl(arith.SIToFPOp)
    def run_sitofp(self, interpreter, op, args):
        return (fround(float(signed_value(args[0], op.operands[0].type)), op.results[0].type),)

    @impl(arith.UIToFPOp)
    def run_uitofp(self, interpreter, op, args):
        return (fround(float(unsigned_value(args[0], op.operands[0].type)), op.results[0].type),)

    @impl(arith.FPToSIOp)
    def run_fptosi(self, interpreter, op, args):
        return (signed_value(int(args[0]), op.results[0].type),)

    @impl(arith.FPToUIOp)
    def run_fptoui(self, interpreter, op, args):
        return (signed_value(int(args[0]), op.results[0].type),)

    @impl(arith.BitcastOp)
    def run_bitcast(self, interpreter, op, args):
        source, target = op.operands[0].type, op.results[0].type
        raw = source.pack([args[0]]) if not isinstance(source, IntegerType) else int(args[0]).to_bytes(
            source.width.data // 8, "little", signed=True
        )
        if isinstance(target, IntegerType):
            return (int.from_bytes(raw, "little", signed=True),)
        return (target.unpack(raw, 1)[0],)

    @impl(mathd.CtPopOp)
    def run_ctpop(self, interpreter, op, args):
        t = op.results[0].type
        return (signed_value(bin(unsigned_value(args[0], t)).count("1"), t),)

    @impl(arith.IndexCastOp)
    def run_index_cast(self, interpreter, op, args):
        return (signed_value(signed_value(args[0], op.operands[0].type), op.results[0].type),)

    @impl_cast(IntegerType, IntegerType)
    def cast_integer(self, source, target, value):
        if target.signedness.data == Signedness.UNSIGNED:
            return unsigned_value(value, target)
        return signed_value(value, target)

    # memrefs
    @impl(memref.DimOp)
    def run_dim(self, interpreter, op, args):
        return (args[0].shape[args[1]],)

    @impl(memref.AllocOp)
    def run_alloc(self, interpreter, op, args):
        dynamic = iter(args)
        shape = [next(dynamic) if d == DYNAMIC_INDEX else d for d in op.memref.type.get_shape()]
        xtype = xtype_for_el_type(op.memref.type.get_element_type(), interpreter.index_bitwidth)
        return (ShapedArray(TypedPtr.zeros(math.prod(shape), xtype=xtype), shape),)

    @impl(memref.SubviewOp)
    def run_subview(self, interpreter, op, args):
        source, rest = args[0], list(args[1:])

        def resolve(static, count):
            values = [rest.pop(0) if s == DYNAMIC_INDEX else s for s in static.get_values()]
            return values

        offsets = resolve(op.static_offsets, len(op.offsets))
        sizes = resolve(op.static_sizes, len(op.sizes))
        steps = resolve(op.static_strides, len(op.strides))
        base, strides = strides_of(source)
        base += sum(o * s for o, s in zip(offsets, strides))
        return (View(source.data_ptr, sizes, base, [s * t for s, t in zip(strides, steps)]),)

    @impl(memref.ReinterpretCastOp)
    def run_reinterpret_cast(self, interpreter, op, args):
        source, rest = args[0], list(args[1:])
        offsets, sizes, strides = (
            [rest.pop(0) if s == DYNAMIC_INDEX else s for s in static.get_values()]
            for static in (op.static_offsets, op.static_sizes, op.static_strides)
        )
        return (View(source.data_ptr, sizes, offsets[0], strides),)

    # linalg: index support, several outputs, fill into any buffer
    @impl(GenericOp)
    def run_generic(self, interpreter, op, args):
        n_in = len(op.inputs)
        maps = [m.data for m in op.indexing_maps]
        shaped = [a for a in args if isinstance(a, ShapedArray)]
        ranges = op.get_shapes_to_loops_map().eval([d for a in shaped for d in a.shape], [])
        outputs = args[n_in:]
        for index in product(*(range(r) for r in ranges)):
            values = [a.load(m.eval(index, ())) if isinstance(a, ShapedArray) else a for a, m in zip(args, maps)]
            self.index_stack.append(index)
            try:
                results = interpreter.run_ssacfg_region(op.body, tuple(values), "linalg.generic")
            finally:
                self.index_stack.pop()
            for out, m, value in zip(outputs, maps[n_in:], results, strict=True):
                out.store(m.eval(index, ()), value)
        return ()

    @impl(IndexOp)
    def run_index(self, interpreter, op, args):
        return (self.index_stack[-1][op.dim.value.data],)

    @impl(FillOp)
    def run_fill(self, interpreter, op, args):
        value, target = args
        for index in product(*(range(d) for d in target.shape)):
            target.store(index, value)
        return ()


def make_interpreter(module: ModuleOp) -> Interpreter:
    interpreter = Interpreter(module, index_bitwidth=64)
    for functions in (
        FuncFunctions(),
        ArithFunctions(),
        MathFunctions(),
        ScfFunctions(),
        MemRefFunctions(),
        LinalgFunctions(),
        BuiltinFunctions(),
        AffineFunctions(),
    ):
        interpreter.register_implementations(functions)
    interpreter.register_implementations(NestTestFunctions(), override=True)
    return interpreter


# --- building and running a nest -----------------------------------------------------------------


def to_shaped(array: np.ndarray, dtype: str) -> ShapedArray:
    t = dtype_type(dtype)
    flat = array.reshape(-1)
    values = [float(v) for v in flat] if dtype in FLOAT_DTYPES else [int(v) for v in flat]
    ptr = TypedPtr.new(values, xtype=t) if values else TypedPtr.zeros(0, xtype=t)
    return ShapedArray(ptr, list(array.shape))


def from_shaped(shaped: ShapedArray, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    data = shaped.data
    if dtype == "bool":
        return np.array([v != 0 for v in data], dtype=np.bool_).reshape(shape)
    if dtype in FLOAT_DTYPES:
        return np.array(data, dtype=np.float64).astype(numpy_dtype(dtype)).reshape(shape)
    work = np.int64 if dtype.startswith("i") else np.uint64
    return np.array(data, dtype=work).astype(numpy_dtype(dtype)).reshape(shape)


def memref_of(dtype: str, shape: tuple[int, ...], dynamic) -> MemRefType:
    """The memref type of an argument; `dynamic` (True, or one flag per dim) makes dims `?`.

    Size-1 dims stay static (a dynamic dim is never a broadcast dim).
    """
    flags = [dynamic] * len(shape) if isinstance(dynamic, bool) else dynamic
    return MemRefType(dtype_type(dtype), [DYNAMIC_INDEX if f and d != 1 else d for d, f in zip(shape, flags)])


def out_dtype_of(op: str, in_dtypes: list[str], settings: dict) -> str:
    if settings.get("acc"):
        return settings["acc"][-1]
    return lookup_op(op).output_dtype_for(in_dtypes, settings)


def build_module(op, shapes, in_dtypes, out_shape, out_dtype, settings, dynamic=False, scalar_args=()):
    """`func.func @f(inputs..., scalars..., output)` whose body is the op's nest."""
    masks = [dynamic] * (len(shapes) + 1) if isinstance(dynamic, bool) else dynamic  # one per input, output
    arg_types = [memref_of(d, s, m) for d, s, m in zip(in_dtypes, shapes, masks)]
    arg_types += [t for _, t in scalar_args] + [memref_of(out_dtype, out_shape, masks[-1])]
    block = Block(arg_types=arg_types)
    b = Builder(InsertPoint.at_end(block))
    args = list(block.args)
    inputs, output = args[: len(shapes)], args[-1]
    scalars = dict(zip((name for name, _ in scalar_args), args[len(shapes) : -1]))
    lookup_op(op).nest_builder(b, inputs, output, {**settings, **scalars}, in_dtypes, out_dtype)
    b.insert(func.ReturnOp())
    module = ModuleOp([func.FuncOp("f", (arg_types, []), Region(block))])
    module.verify()
    return module


def lower(module: ModuleOp) -> None:
    """L2 -> L1: `convert-linalg-to-loops,lower-affine`; only func/scf/memref/arith/math (and casts) remain."""
    ConvertLinalgToLoopsPass().apply(Context(), module)
    LowerAffinePass().apply(Context(), module)
    module.verify()
    dialects = {o.name.split(".")[0] for o in module.walk()}
    assert dialects <= {"builtin", "func", "scf", "memref", "arith", "math"}, dialects


def round_trip(module: ModuleOp) -> None:
    text = str(module)
    parsed = Parser(make_context(), text).parse_module()
    parsed.verify()
    assert str(parsed) == text


def interpret(module: ModuleOp, inputs, in_dtypes, out_shape, out_dtype, scalar_values=()):
    interpreter = make_interpreter(module)
    garbage = np.full(out_shape, 3, numpy_dtype(out_dtype))  # the nest must write every element
    output = to_shaped(garbage, out_dtype)
    args = [to_shaped(a, d) for a, d in zip(inputs, in_dtypes)] + list(scalar_values) + [output]
    interpreter.call_op("f", tuple(args))
    return from_shaped(output, out_dtype, out_shape)


def run_nest(op, inputs, settings=None, *, dynamic=False, lowered=True, scalar_args=(), scalar_values=()):
    settings = dict(settings or {})
    in_dtypes = [dtype_of_array(a.dtype) for a in inputs]
    out_dtype = out_dtype_of(op, in_dtypes, settings)
    out_shape = tuple(lookup_op(op).shape_rule([a.shape for a in inputs], settings))
    module = build_module(op, [a.shape for a in inputs], in_dtypes, out_shape, out_dtype, settings, dynamic,
                          scalar_args)  # fmt: skip
    if lowered:
        lower(module)
    return interpret(module, inputs, in_dtypes, out_shape, out_dtype, scalar_values)


TOLERANCE = {"bf16": 1e-2, "f16": 2e-3, "f32": 2e-6, "f64": 1e-12}


def assert_matches(got: np.ndarray, want: np.ndarray, exact: bool) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    dtype = dtype_of_array(want.dtype)
    if dtype not in FLOAT_DTYPES or exact:
        if dtype in FLOAT_DTYPES:
            g, w = got.astype(np.float64), want.astype(np.float64)
            same = (g == w) & (np.signbit(g) == np.signbit(w)) | (np.isnan(g) & np.isnan(w))
            assert same.all(), f"\n{got}\n!=\n{want}"
        else:
            assert np.array_equal(got, want), f"\n{got}\n!=\n{want}"
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True)


def check(op, inputs, settings=None, *, exact=None, dynamic=(False, True), linalg_form=True, scalar=None):
    """The nest of `op` on `inputs` equals the reference (lowered, and as linalg, static and dynamic)."""
    settings = dict(settings or {})
    in_dtypes = [dtype_of_array(a.dtype) for a in inputs]
    out_dtype = out_dtype_of(op, in_dtypes, settings)
    want = lookup_op(op).reference(inputs, settings, out_dtype)
    if exact is None:
        exact = out_dtype not in FLOAT_DTYPES or op in COPY_OPS
    scalar_args, scalar_values = ((), ()) if scalar is None else ((scalar[:2],), (scalar[2],))
    out_shape = tuple(lookup_op(op).shape_rule([a.shape for a in inputs], settings))
    module = build_module(op, [a.shape for a in inputs], in_dtypes, out_shape, out_dtype, settings, dynamic[-1],
                          scalar_args)  # fmt: skip
    round_trip(module)
    for dyn in dynamic:
        for lowered in (True, False) if linalg_form else (True,):
            got = run_nest(op, inputs, settings, dynamic=dyn, lowered=lowered, scalar_args=scalar_args,
                           scalar_values=scalar_values)  # fmt: skip
            assert_matches(got, want, exact)


RNG = np.random.default_rng(1234)


def rand(dtype: str, shape, low=None, high=None) -> np.ndarray:
    """Random values of `dtype`: floats in [-4, 4) with a few specials, integers over their whole range."""
    from oi_compiler.dtypes import INT_RANGES

    if dtype in FLOAT_DTYPES:
        values = RNG.uniform(-4 if low is None else low, 4 if high is None else high, shape)
        return values.astype(np.float32).astype(numpy_dtype(dtype))
    lo, hi = INT_RANGES[dtype]
    lo, hi = (lo if low is None else low), (hi if high is None else high)
    if dtype == "bool":
        return RNG.integers(0, 2, shape).astype(np.bool_)
    kind = np.uint64 if lo >= 0 else np.int64
    values = [int(RNG.integers(lo, hi, endpoint=True, dtype=kind)) for _ in range(int(np.prod(shape)))]
    return np.array(values, dtype=object).reshape(shape).astype(numpy_dtype(dtype))


def with_specials(array: np.ndarray) -> np.ndarray:
    """A float array with a NaN, +-inf and -0.0 in its first slots."""
    flat = array.reshape(-1).copy()
    for i, v in enumerate([np.nan, np.inf, -np.inf, -0.0][: flat.size]):
        flat[i] = v
    return flat.reshape(array.shape)


def arr(values, dtype: str) -> np.ndarray:
    return np.array(values).astype(numpy_dtype(dtype))


F32X = with_specials(rand("f32", (2, 3)))  # NaN, inf, -inf, -0.0 and two random values
HALVES = arr([2.5, -0.5, 0.5, -2.5, 1.5, 0.49999997, -0.0, 3.7], "f32")
DIVISORS_I8 = arr([[0, -1, 3, -5], [7, -2, 0, 1]], "i8")
DYNAMIC_HEADS = [(True, False, True)] * 4  # attention: S, T and Dh dynamic, head counts static

# --- the registry ----------------------------------------------------------------------------------


def test_every_builtin_op_has_a_nest_builder():
    builtin_ops = set(MODULE_OF)  # the 47 upstream ops and the 16 decoder ops
    assert len(builtin_ops) == 63 and builtin_ops <= set(all_ops()) and not NO_NEST
    for name in builtin_ops:
        assert isinstance(lookup_op(name).nest_builder, NestFunction), name


def test_importing_the_registry_loads_no_builder():
    import subprocess
    import sys

    code = (
        "import sys; from oi_compiler.ops.registry import all_ops; all_ops(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'xdsl') "
        "or m.startswith('oi_compiler.ops.nests.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- elementwise ops -------------------------------------------------------------------------------

ELEMENTWISE = [
    # arithmetic: broadcasting, wrap-around, accumulate mode, bool rules
    ("add", [rand("i8", (2, 3)), rand("i8", (3,))], {}),
    ("add", [rand("i8", (2, 3)), rand("i8", (2, 1))], {"acc": ["i16"]}),
    ("add", [rand("bool", (2, 3)), rand("bool", (2, 3))], {}),
    ("add", [rand("f16", (2, 1)), rand("f16", (1, 3))], {}),
    ("add", [F32X, rand("f32", ())], {}),
    ("add", [rand("u4", (4,)), rand("u4", (4,))], {}),
    ("sub", [rand("u8", (2, 3)), rand("u8", (2, 1))], {}),
    ("sub", [rand("i4", (5,)), rand("i4", (5,))], {"acc": ["i8"]}),
    ("mul", [rand("i64", (4,)), rand("i64", (4,))], {}),
    ("mul", [rand("bool", (4,)), rand("bool", (4,))], {}),
    ("mul", [rand("u8", (2, 2)), rand("u8", (2, 2))], {"acc": ["u32"]}),
    ("mul", [rand("bf16", (3,)), rand("bf16", (3,))], {}),
    ("div", [rand("i8", (2, 4)), DIVISORS_I8], {}),
    ("div", [arr([-128, -128, 5, 0], "i8"), arr([-1, 0, 0, -1], "i8")], {"div_by_zero_mask": -3}),
    ("div", [arr([-(2**63), 7], "i64"), arr([-1, 2], "i64")], {}),
    ("div", [rand("u16", (4,)), arr([0, 1, 300, 65535], "u16")], {"div_by_zero_mask": 9}),
    ("div", [F32X, with_specials(rand("f32", (2, 3)))[::-1].copy()], {}),
    ("div", [rand("f16", (4,)), arr([0, -0.0, 2, -3], "f16")], {"div_by_zero_mask": 0.5}),
    ("floor_div", [rand("i8", (2, 4)), DIVISORS_I8], {"div_by_zero_mask": 7}),
    ("floor_div", [arr([7, -7, 7, -7, -128], "i8"), arr([-2, -2, 2, 2, -1], "i8")], {}),
    ("floor_div", [rand("u32", (4,)), arr([0, 3, 1, 4000000000], "u32")], {}),
    ("floor_div", [rand("i4", (4,)), arr([0, -1, 3, -8], "i4")], {}),
    ("rem", [rand("i16", (2, 4)), arr([[0, -1, 3, -5], [7, -2, 0, 1]], "i16")], {}),
    ("rem", [arr([-(2**63), -7], "i64"), arr([-1, 2], "i64")], {}),
    ("rem", [rand("u8", (4,)), arr([0, 1, 7, 200], "u8")], {}),
    ("fma", [rand("f32", (2, 3)), rand("f32", (2, 3)), rand("f32", (2, 3))], {}),
    ("fma", [rand("f16", (3,)), rand("f16", (3,)), rand("f16", (3,))], {}),
    ("neg", [arr([-128, 127, 0, -5], "i8")], {}),
    ("neg", [F32X], {}),
    ("abs", [arr([-128, 127, -1, 0], "i8")], {"acc": ["i16"]}),
    ("abs", [arr([-128, 127, -1, 0], "i8")], {}),
    ("abs", [rand("i4", (4,))], {}),
    ("abs", [F32X], {}),
    ("recip", [arr([0, -0.0, 4, -3], "f32")], {}),
    ("recip", [arr([0, 2, 3], "f64")], {"div_by_zero_mask": 2}),
    # numerical, statistics, rounding
    ("relu", [F32X], {"alpha": 0.5, "clamp_max": 2.0}),
    ("relu", [rand("f16", (4,))], {}),
    ("relu", [rand("i8", (6,))], {"alpha": -3, "clamp_max": 100}),
    ("relu", [rand("i64", (4,))], {"alpha": 3}),
    ("sign", [F32X], {}),
    ("sign", [rand("i8", (5,))], {}),
    ("min", [F32X, with_specials(rand("f32", (2, 3)))[::-1].copy()], {}),
    ("min", [rand("u16", (4,)), rand("u16", (4,))], {}),
    ("max", [F32X, rand("f32", (2, 3))], {}),
    ("max", [rand("i64", (4,)), rand("i64", (4,))], {}),
    ("clamp", [F32X], {"min": -1.5, "max": 2}),
    ("clamp", [F32X], {}),
    ("clamp", [rand("f64", (4,))], {"min": 3, "max": -1}),
    ("clamp", [rand("i8", (6,))], {"min": -5, "max": 200}),
    ("clamp", [rand("u8", (6,))], {"min": 5, "max": 100}),
    ("clamp", [rand("i4", (6,))], {"min": -5}),
    ("clamp", [rand("u64", (4,))], {}),
    *(("floor ceil trunc round".split()[i], [HALVES], {}) for i in range(4)),
    ("round", [F32X], {}),
    ("floor", [rand("f16", (4,))], {}),
    ("trunc", [rand("bf16", (4,))], {}),
    # bitwise
    ("and", [rand("i8", (2, 3)), rand("i8", (2, 3))], {}),
    ("or", [rand("bool", (2, 3)), rand("bool", (2, 3))], {}),
    ("xor", [rand("u4", (2, 3)), rand("u4", (2, 3))], {}),
    ("xor", [rand("u64", (4,)), rand("u64", (4,))], {}),
    ("not", [rand("bool", (4,))], {}),
    ("not", [rand("u16", (4,))], {}),
    ("not", [rand("i4", (4,))], {}),
    *(("popcount", [rand(d, (4,))], {}) for d in ("i8", "u8", "i64", "u64", "i4", "u4")),
    # comparison
    *((op, [F32X, with_specials(rand("f32", (2, 3)))[::-1].copy()], {}) for op in ("eq", "ne", "lt", "le", "gt", "ge")),
    ("lt", [rand("u64", (4,)), rand("u64", (4,))], {}),
    ("ge", [rand("i4", (6,)), rand("i4", (6,))], {}),
    ("le", [rand("f16", (4,)), rand("f16", (4,))], {}),
    ("eq", [rand("bool", (4,)), rand("bool", (4,))], {}),
    ("ne", [rand("i64", (4,)), rand("i64", (4,))], {}),
    # filters
    *((op, [F32X], {}) for op in ("is_nan", "is_inf", "is_neg", "is_finite")),
    ("is_neg", [arr([np.nan, -np.nan, 1.0, -0.0], "f16")], {}),
    ("is_finite", [rand("f32", (2, 3))], {}),
    ("is_finite", [rand("bf16", (3,))], {}),
    ("is_neg", [rand("i8", (5,))], {}),
    ("is_neg", [rand("u8", (5,))], {}),
    ("filter", [rand("f16", (2, 3)), rand("f16", (2, 3)), F32X], {}),
    ("filter", [rand("u8", (2, 3)), rand("u8", (2, 3)), rand("i8", (2, 3), -1, 1)], {}),
    ("filter", [rand("bool", (4,)), rand("bool", (4,)), rand("u4", (4,), 0, 1)], {}),
    # mutation
    *(("fill", [rand(d, (2, 2))], {"value": v}) for d, v in [("f32", 1.1), ("f16", 1e5), ("bf16", 3.3), ("f64", 0.1),
      ("i8", 300), ("u8", 300), ("bool", 2), ("i64", -1), ("u64", 2**64 - 1), ("i4", -9), ("f32", True)]),  # fmt: skip
]


@pytest.mark.parametrize(("op", "inputs", "settings"), ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_elementwise(op, inputs, settings):
    check(op, inputs, settings)


@pytest.mark.parametrize("bits", [0, 3, 7, 8, 9, 63, 64, 65, -2])
@pytest.mark.parametrize("op", ["shl", "shr"])
def test_shifts(op, bits):
    for dtype in ("i8", "u8", "i64", "u64", "i4", "u4"):
        check(op, [rand(dtype, (3,))], {"bits": bits}, dynamic=(False,), linalg_form=False)


def test_float_math_is_exact_in_f32():
    """+ - * / and fma round like numpy's float32 (the interpreter here rounds each op to f32)."""
    for op in ("add", "sub", "mul", "div"):
        check(op, [rand("f32", (2, 3)), rand("f32", (2, 3))], exact=True, dynamic=(False,))
    check("fma", [rand("f32", (4,)), rand("f32", (4,)), rand("f32", (4,))], exact=True, dynamic=(False,))


# --- matmul and reductions -------------------------------------------------------------------------

MATMUL = [
    ([rand("f32", (2, 3, 4)), rand("f32", (4, 2))], {}),
    ([rand("f32", (2, 1, 2, 3)), rand("f32", (3, 3, 2))], {}),
    ([rand("f16", (1, 3, 4)), rand("f16", (2, 4, 2))], {}),
    ([rand("bf16", (2, 3)), rand("bf16", (3, 2))], {}),
    ([rand("f64", (2, 3)), rand("f64", (3, 2))], {}),
    ([rand("i8", (3, 4)), rand("i8", (4, 2))], {}),
    ([rand("i8", (3, 4)), rand("i8", (4, 2))], {"acc": ["i32"]}),
    ([rand("u8", (2, 3, 4)), rand("u8", (1, 4, 2))], {}),
    ([rand("bool", (3, 4)), rand("bool", (4, 2))], {}),
    ([rand("i4", (2, 3)), rand("i4", (3, 2))], {"acc": ["i16"]}),
]


@pytest.mark.parametrize(("inputs", "settings"), MATMUL)
def test_matmul(inputs, settings):
    # f32/f64 are exact: each output sums over k in ascending order, as the reference
    check("matmul", inputs, settings, exact=dtype_of_array(inputs[0].dtype) in ("f32", "f64") or None)


def test_inplace_matmul_accumulates_in_a_temporary():
    a, w = rand("f32", (2, 3)), rand("f32", (3, 3))
    t = MemRefType(Float32Type(), [2, 3])
    block = Block(arg_types=[t, MemRefType(Float32Type(), [3, 3])])
    b = Builder(InsertPoint.at_end(block))
    lookup_op("matmul").nest_builder(b, list(block.args), block.args[0], {}, ["f32", "f32"], "f32")
    b.insert(func.ReturnOp())
    module = ModuleOp([func.FuncOp("f", ([t, block.args[1].type], []), Region(block))])
    module.verify()
    lower(module)
    shaped = to_shaped(a, "f32")
    make_interpreter(module).call_op("f", (shaped, to_shaped(w, "f32")))
    want = lookup_op("matmul").reference([a, w], {}, "f32")
    assert_matches(from_shaped(shaped, "f32", (2, 3)), want, exact=True)


def test_inplace_elementwise_and_softmax():
    for op, inputs, settings in [("add", [rand("f32", (2, 3)), rand("f32", (3,))], {}),
                                 ("softmax", [rand("f32", (2, 3))], {}),
                                 ("rope", [rand("f32", (2, 4))], {"position": 3})]:  # fmt: skip
        x = inputs[0]
        t = MemRefType(Float32Type(), list(x.shape))
        types = [t] + [MemRefType(Float32Type(), list(a.shape)) for a in inputs[1:]]
        block = Block(arg_types=types)
        b = Builder(InsertPoint.at_end(block))
        lookup_op(op).nest_builder(b, list(block.args), block.args[0], settings, ["f32"] * len(inputs), "f32")
        b.insert(func.ReturnOp())
        module = ModuleOp([func.FuncOp("f", (types, []), Region(block))])
        lower(module)
        shaped = [to_shaped(a, "f32") for a in inputs]
        make_interpreter(module).call_op("f", tuple(shaped))
        want = lookup_op(op).reference(inputs, settings, "f32")
        assert_matches(from_shaped(shaped[0], "f32", x.shape), want, exact=False)


X234 = rand("f32", (2, 3, 4))
AXES = [([1], False), ([0, 2], True), ([-1], False), ([0, 1, 2], False), ([2, 0, 2], False)]


@pytest.mark.parametrize(("axes", "keepdims"), AXES)
@pytest.mark.parametrize("op", ["sum_axis", "prod_axis", "mean_axis", "max_axis", "min_axis"])
def test_reductions(op, axes, keepdims):
    settings = {"axes": axes, "keepdims": keepdims}
    # exact in f32: one element at a time, row-major over the reduced dims
    check(op, [X234], settings, exact=True)
    check(op, [rand("i8", (2, 3, 4))], settings, dynamic=(True,), linalg_form=False)


@pytest.mark.parametrize("op", ["sum_axis", "prod_axis", "mean_axis", "max_axis", "min_axis"])
def test_reduction_dtypes(op):
    check(op, [rand("f16", (2, 3))], {"axes": [1]})
    check(op, [F32X], {"axes": [1]})
    check(op, [rand("u16", (2, 3))], {"axes": [0], "keepdims": True})
    if op in ("sum_axis", "prod_axis", "mean_axis"):
        check(op, [rand("i8", (2, 3))], {"axes": [1], "acc": ["i32"]})
        check(op, [rand("u8", (2, 3))], {"axes": [0], "acc": ["u16"]})


EDGES = [
    ("is_finite", [arr(np.inf, "f32")], {}),
    ("is_finite", [np.zeros((0, 3), np.float32)], {}),
    ("add", [arr(1.5, "f32"), arr(2.25, "f32")], {}),
    ("add", [np.zeros((0, 3), np.int8), np.zeros((3,), np.int8)], {}),
    ("sum_axis", [np.zeros((2, 0), np.float32)], {"axes": [1]}),
    ("prod_axis", [np.zeros((2, 0), np.int8)], {"axes": [1]}),
    ("mean_axis", [np.zeros((2, 0), np.float32)], {"axes": [1]}),
    ("sum_axis", [rand("f32", (3,))], {"axes": [0], "keepdims": True}),
    ("matmul", [np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32)], {}),
    ("concat", [np.zeros((0, 3), np.int8), rand("i8", (2, 3))], {}),
    ("transpose", [arr(3, "i8")], {}),
    ("softmax", [np.zeros((2, 0), np.float32)], {}),
]


@pytest.mark.parametrize(("op", "inputs", "settings"), EDGES, ids=[c[0] for c in EDGES])
def test_rank_zero_and_empty(op, inputs, settings):
    check(op, inputs, settings)


def test_integer_mean_truncates_toward_zero():
    check("mean_axis", [arr([[-3, -4], [3, 4], [-7, 0]], "i8")], {"axes": [1]})
    check("mean_axis", [arr([[1, -1, -1, -1]], "i64")], {"axes": [1]})


ARGS = [(0, False, True), (1, True, False), (-1, False, False), (0, True, True)]


@pytest.mark.parametrize(("axis", "keepdims", "select_first"), ARGS)
@pytest.mark.parametrize("op", ["argmax_axis", "argmin_axis"])
def test_arg_reductions(op, axis, keepdims, select_first):
    settings = {"axis": axis, "keepdims": keepdims, "select_first": select_first}
    check(op, [arr([[1, 3, 3], [2, 2, 0], [5, 1, 5]], "f32")], settings)
    check(op, [with_specials(rand("f32", (3, 3)))], settings)
    check(op, [rand("u4", (3, 3))], settings, linalg_form=False)


# --- cast ----------------------------------------------------------------------------------------

CAST_VALUES = arr([0.4, 0.5, 2.5, -2.5, -0.5, 300.7, -129.2, 1e20, -1e20, np.nan, np.inf, -np.inf,
                   70000.0, 1.8e19, -3.0e19, 2.0**63, -(2.0**63), 2.0**64, 1e300, -0.0], "f64")  # fmt: skip


@pytest.mark.parametrize("saturate", [True, False])
@pytest.mark.parametrize("to", ["i8", "u8", "i16", "u32", "i64", "u64", "i4", "u4"])
def test_cast_float_to_int(to, saturate):
    for mode in ("trunc", "floor", "ceil", "nearest"):
        settings = {"to": to, "rounding_mode": mode, "saturate": saturate}
        check("cast", [CAST_VALUES], settings, dynamic=(False,), linalg_form=False)
    check("cast", [rand("f16", (4,), -300, 300)], {"to": to, "saturate": saturate, "rounding_mode": "nearest"})


@pytest.mark.parametrize("to", ["f16", "bf16", "f32", "f64", "bool"])
def test_cast_to_float_and_bool(to):
    for x in (CAST_VALUES, rand("i64", (6,)), rand("u64", (6,)), rand("f16", (4,)), rand("i4", (4,))):
        check("cast", [x], {"to": to}, dynamic=(False,), linalg_form=False)
    check("cast", [rand("bf16", (2, 2))], {"to": to})


@pytest.mark.parametrize("saturate", [True, False])
@pytest.mark.parametrize("source", ["i8", "u64", "i64", "u4", "i4", "u16"])
def test_cast_int_to_int(source, saturate):
    for to in ("i8", "u8", "i64", "u64", "u16", "i4"):
        check("cast", [rand(source, (6,))], {"to": to, "saturate": saturate}, dynamic=(False,), linalg_form=False)
    check("cast", [rand(source, (2, 3))], {"to": "i16", "saturate": saturate})


# --- decoder ops ---------------------------------------------------------------------------------

DECODER = [
    *((op, [with_specials(rand("f32", (2, 4)))], {}) for op in "exp log sqrt rsqrt tanh sigmoid silu".split()),
    *((op, [rand("f16", (3,))], {}) for op in ("exp", "sigmoid", "silu")),
    ("log", [rand("f64", (3,), 0, 4)], {}),
    ("gelu", [rand("f32", (2, 3))], {}),
    ("gelu", [rand("f32", (2, 3))], {"approximate": "tanh"}),
    ("gelu", [rand("bf16", (4,))], {}),
    ("gelu", [rand("f64", (4,))], {}),
    ("softmax", [rand("f32", (2, 6))], {}),
    ("softmax", [rand("f32", (2, 3, 4))], {"axis": 1}),
    ("softmax", [arr([[-np.inf, -np.inf], [1, np.inf]], "f32")], {}),
    ("softmax", [rand("f16", (2, 3))], {"axis": 0}),
    ("rms_norm", [rand("f32", (2, 6))], {}),
    ("rms_norm", [rand("f16", (2, 3, 4))], {"eps": 0.1}),
    ("layer_norm", [rand("f32", (2, 6))], {}),
    ("layer_norm", [rand("f64", (3, 4))], {"eps": 0.01}),
    ("transpose", [rand("i8", (2, 3, 4))], {}),
    ("transpose", [rand("f32", (2, 3, 4))], {"perm": [1, -1, 0]}),
    ("transpose", [rand("bool", (2, 3))], {"perm": [0, 1]}),
    ("reshape", [rand("u16", (2, 3, 4))], {"shape": [4, -1]}),
    ("reshape", [rand("f32", (1,))], {"shape": []}),
    ("reshape", [rand("f32", ())], {"shape": [1, 1]}),
    ("reshape", [rand("i4", (6,))], {"shape": [3, 2]}),
    ("concat", [rand("i8", (2, 3)), rand("i8", (2, 2))], {"axis": 1}),
    ("concat", [rand("bool", (1, 3)), rand("bool", (2, 3))], {}),
    ("concat", [rand("f32", (2, 1, 3)), rand("f32", (2, 2, 3))], {"axis": -2}),
    ("rope", [rand("f32", (2, 3, 4))], {"position": 5}),
    ("rope", [rand("f16", (2, 6))], {"position": 3, "theta": 500.0}),
    ("rope", [rand("f64", (8,))], {"position": 7}),
    ("rope", [rand("f32", (1, 2))], {"position": 0}),
]


@pytest.mark.parametrize(("op", "inputs", "settings"), DECODER, ids=[c[0] for c in DECODER])
def test_decoder_ops(op, inputs, settings):
    check(op, inputs, settings)


def test_f8_copies():
    x = rand("f32", (2, 3)).astype(ml_dtypes.float8_e5m2)
    for op, inputs, settings in [("transpose", [x], {}), ("reshape", [x], {"shape": [3, 2]}),
                                 ("concat", [x, x], {"axis": 1})]:  # fmt: skip
        in_dtypes = ["f8"] * len(inputs)
        out_shape = tuple(lookup_op(op).shape_rule([a.shape for a in inputs], settings))
        for dynamic in (False, True):  # the interpreter has no f8 buffers: build, verify, lower
            module = build_module(op, [a.shape for a in inputs], in_dtypes, out_shape, "f8", settings, dynamic)
            round_trip(module)
            lower(module)


@pytest.mark.parametrize("position_type", [IndexType(), builtin.i32, builtin.i64])
def test_rope_position_at_run_time(position_type):
    x = rand("f32", (2, 4))
    want = lookup_op("rope").reference([x], {"position": 9}, "f32")
    for dynamic in (False, True):
        for lowered in (True, False):
            got = run_nest("rope", [x], {}, dynamic=dynamic, lowered=lowered,
                           scalar_args=(("position", position_type),), scalar_values=(9,))  # fmt: skip
            assert_matches(got, want, exact=False)


Q, K, V = rand("f32", (3, 4, 2)), rand("f32", (5, 2, 2)), rand("f32", (5, 2, 2))
ATTENTION = [
    ([Q, K, V], {}, DYNAMIC_HEADS),
    ([Q, K, V], {"causal": True}, DYNAMIC_HEADS),  # grouped-query: 4 query heads read 2 kv heads
    ([Q, K, V], {"causal": True, "scale": 0.3}, DYNAMIC_HEADS),
    ([rand("f32", (4, 2)), K, V], {"causal": True}, [(False, True), *DYNAMIC_HEADS[1:3], (False, True)]),
    ([rand("f16", (2, 2, 2)), rand("f16", (3, 1, 2)), rand("f16", (3, 1, 2))], {"causal": True}, True),
    ([rand("f32", (2, 2, 2)), rand("f64", (3, 2, 2)), rand("f32", (3, 2, 2))], {}, DYNAMIC_HEADS),
    ([rand("f32", (5, 2, 2)), K, V], {"causal": True}, DYNAMIC_HEADS),
]


@pytest.mark.parametrize(("inputs", "settings", "dynamic"), ATTENTION)
def test_attention(inputs, settings, dynamic):
    check("attention", inputs, settings, dynamic=(False, dynamic))


# --- structure and errors --------------------------------------------------------------------------


def test_every_generic_carries_a_schedule_and_temporaries_are_freed():
    for op, shapes, dtypes, settings in [
        ("attention", [(3, 4, 2), (5, 2, 2), (5, 2, 2)], ["f16"] * 3, {"causal": True}),
        ("softmax", [(2, 3)], ["f32"], {}),
        ("argmax_axis", [(2, 3)], ["i8"], {"axis": 1}),
        ("mean_axis", [(2, 3)], ["u8"], {"axes": [1]}),
    ]:
        out_dtype = out_dtype_of(op, dtypes, settings)
        out_shape = tuple(lookup_op(op).shape_rule(shapes, settings))
        dynamic = [(True, False, True)] * 4 if op == "attention" else True
        module = build_module(op, shapes, dtypes, out_shape, out_dtype, settings, dynamic)
        ops = list(module.walk())
        generics = [o for o in ops if isinstance(o, GenericOp)]
        assert generics and all(o.attributes["oi.schedule"] == builtin.DictionaryAttr({}) for o in generics)
        allocs = [o.results[0] for o in ops if isinstance(o, memref.AllocOp)]
        freed = [o.operands[0] for o in ops if isinstance(o, memref.DeallocOp)]
        assert allocs and set(allocs) == set(freed)


def build_error(op, shapes, dtypes, settings, out_shape=None, out_dtype=None, dynamic=False) -> str:
    out_dtype = out_dtype or dtypes[0]
    out_shape = out_shape if out_shape is not None else shapes[0]
    with pytest.raises(PassError) as info:
        build_module(op, shapes, dtypes, out_shape, out_dtype, settings, dynamic)
    return info.value.message


def test_errors():
    assert build_error("exp", [(2,)], ["i32"], {}, dynamic=True) == "op exp does not support I32 inputs"
    assert build_error("sum_axis", [(2, 3)], ["f32"], {"axes": []}) == "op sum_axis axes must not be empty"
    assert build_error("shr", [(2,)], ["i8"], {"bits": 1.5}, dynamic=True) == (
        "op shr setting bits must be an integer, got 1.5"
    )
    assert build_error("cast", [(2,)], ["f32"], {"to": "i8", "rounding_mode": "up"}, out_dtype="i8") == (
        "op cast unsupported rounding_mode 'up' (expected trunc, floor, ceil or nearest)"
    )
    assert build_error("fill", [(2,)], ["i32"], {"value": 1.5}) == (
        "op fill setting value must be an integer or bool for i32, got 1.5"
    )
    assert build_error("div", [(2,), (2,)], ["u8", "u8"], {"div_by_zero_mask": -1}) == (
        "op div div_by_zero_mask must be non-negative for unsigned dtype"
    )
    assert build_error("mean_axis", [(2, 0)], ["i8"], {"axes": [1]}, out_shape=(2,)) == (
        "op mean_axis reduces over an empty axis of [2, 0]"
    )
    assert build_error("add", [(2, 3), (3,)], ["f32", "f32"], {}, out_shape=(3, 3)) == (
        "op add: output shape [3, 3] does not match the result shape [2, 3]"
    )
    message = build_error("attention", [(2, 4, 2), (3, 2, 2), (3, 2, 2)], ["f32"] * 3, {}, dynamic=True)
    assert message == "op attention: no loop nest for grouped kv heads of dynamic counts (q [?, ?, ?], k [?, ?, ?])"
    t = MemRefType(Float32Type(), [2])
    block = Block(arg_types=[t, t, t])
    with pytest.raises(PassError, match=r"op add: input 1 is memref<2xf32>, expected a memref of f16"):
        lookup_op("add").nest_builder(Builder(InsertPoint.at_end(block)), block.args[:2], block.args[2], {},
                                      ["f32", "f16"], "f32")  # fmt: skip
