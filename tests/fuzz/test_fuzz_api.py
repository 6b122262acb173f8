"""Fuzz target 5: Python API arguments.

- `test_insert_values`: `exe.insert` on `reference` and `cpu` executors with random names
  (declared dynamic variables, other variables, unknown names, non-strings) and random values:
  numpy arrays of every numpy and ml_dtypes dtype and many shapes, views (strided, reversed,
  broadcast, Fortran-ordered, read-only, unaligned), subclasses, Python scalars (huge integers,
  NaN, complex), strings, bytes, ragged and nested lists, dicts, `None`, objects whose
  `__array__` misbehaves; then a step and every read-out. Only `oi.OiError`s may escape.
- `test_nest_function_arguments`: compiled loop nests (`plan.build()`: elementwise in place,
  a cached and tiled matmul over a column-major input, a parallelized nest, int32 with a CONST
  and a TEMP array) called with random arrays and objects (wrong count, dtype, rank, shape,
  strides, read-only, overlapping, unaligned, not arrays). Only `oi.OiError`s may escape, and a
  call that is accepted must compute what numpy computes for the arrays it was given.
- `test_plan_build_args`: `plan.build(args=...)` with wrong argument lists.
"""

from __future__ import annotations

import decimal
import fractions

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import oi_compiler as oi

from ._support import Bug, HeavyBudget, call, count, fuzz_settings, outcome

pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
              pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")]  # fmt: skip

# --- exe.insert ---------------------------------------------------------------------------------

SRC = """
dynamic { x: f32[2]; n: i32; b: bool[2, 2]; h: bf16[3]; q: i4[2]; u: u64; e: f32[0]; s: f32[D]; w: f8[1, 2]; k: u4; }
volatile { y: f32[2]; hy: bf16[3]; }
persistent { P(t): f32[2] @table; c: i32 @init(0); pn: i32; pb: bool[2, 2]; pq: i4[2]; pu: u64; ps: f32[D];
             pw: f8[1, 2]; pk: u4; pe: f32[0]; }
block entry {
    op add(x, x) >> y;
    cache.write y >> P[c];
    cache.increment c;
    op abs(h) >> hy;
    cache.write n >> pn;
    cache.write b >> pb;
    cache.write q >> pq;
    cache.write u >> pu;
    cache.write s >> ps;
    cache.write w >> pw;
    cache.write k >> pk;
    cache.write e >> pe;
}
"""
_SIMS: dict[str, oi.Simulator] = {}


def simulator(device: str) -> oi.Simulator:
    if device not in _SIMS:
        _SIMS[device] = oi.Simulator(oi.Model({"D": 3}), oi.parse_graph(SRC, "api.oi"), device=device)
    return _SIMS[device]


ML_DTYPES = [ml_dtypes.bfloat16, ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fn, ml_dtypes.int4, ml_dtypes.uint4,
             ml_dtypes.float8_e4m3b11fnuz]  # fmt: skip
numpy_dtypes = st.one_of(hnp.scalar_dtypes(), hnp.byte_string_dtypes(max_len=3), hnp.unicode_string_dtypes(max_len=3),
                         st.sampled_from([np.dtype(d) for d in ML_DTYPES] + [np.dtype(object), np.dtype("V4"),
                                          np.dtype([("a", "<f4"), ("b", "<i4")]), np.dtype(">f4"), np.dtype(">i8")]))  # fmt: skip
shapes = st.one_of(st.sampled_from([(), (0,), (1,), (2,), (3,), (2, 2), (1, 2), (2, 1), (4,), (1, 1), (2, 2, 1), (0, 2)]),
                   hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3))  # fmt: skip


class BadArray:
    """`__array__` raising or returning the wrong thing."""

    def __init__(self, how: str):
        self.how = how

    def __array__(self, dtype=None, copy=None):
        if self.how == "raise":
            raise RuntimeError("no array for you")
        if self.how == "list":
            return [1.0, 2.0]
        if self.how == "none":
            return None
        return np.ones(2, np.float32)

    def __repr__(self) -> str:
        return f"BadArray({self.how!r})"


class Weird:
    def __float__(self):
        raise ValueError("no float")

    def __int__(self):
        raise ZeroDivisionError("no int")

    def __index__(self):
        raise OverflowError("no index")

    def __repr__(self) -> str:
        return "Weird()"


def _unaligned(n: int) -> np.ndarray:
    buffer = np.zeros(4 * n + 1, np.uint8)
    return buffer[1:].view(np.float32)


@st.composite
def numpy_values(draw) -> np.ndarray:
    dtype = draw(numpy_dtypes)
    shape = draw(shapes)
    if dtype.kind in "OV" or dtype.fields or dtype.type in ML_DTYPES:
        array = np.zeros(shape, dtype)
        if dtype.type in ML_DTYPES:
            array = np.asarray(draw(st.lists(st.one_of(st.floats(-8, 8), st.just(float("nan"))), min_size=int(np.prod(shape)),
                                             max_size=int(np.prod(shape)))), np.float32).astype(dtype).reshape(shape)  # fmt: skip
        elif dtype.kind == "O":
            items = draw(st.lists(st.one_of(st.integers(), st.floats(), st.none(), st.text(max_size=2)),
                                  min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))  # fmt: skip
            array.flat[:] = items if items else array.flat[:]
    else:
        array = draw(hnp.arrays(dtype, shape))
    view = draw(st.sampled_from(["plain", "plain", "fortran", "reversed", "strided", "readonly", "broadcast", "matrix",
                                 "masked", "subclass"]))  # fmt: skip
    if view == "fortran":
        array = np.asfortranarray(array)
    elif view == "reversed" and array.ndim:
        array = array[::-1]
    elif view == "strided" and array.ndim:
        array = np.repeat(array, 2, axis=0)[::2]
    elif view == "readonly":
        array.flags.writeable = False
    elif view == "broadcast":
        array = np.broadcast_to(array, (2, *array.shape))
    elif view == "matrix" and array.ndim == 2 and dtype.kind in "biuf":
        array = np.asmatrix(array)
    elif view == "masked":
        array = np.ma.masked_array(array, mask=np.zeros(array.shape, bool))
    elif view == "subclass":
        array = array.view(type("MyArray", (np.ndarray,), {}))
    return array


python_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70),
    st.floats(), st.complex_numbers(), st.text(max_size=4), st.binary(max_size=4),
    st.lists(st.floats(), max_size=4), st.lists(st.lists(st.integers(-3, 3), max_size=3), max_size=3),
    st.lists(st.one_of(st.integers(), st.text(max_size=1)), max_size=3),
    st.sampled_from([[1.0, [2.0]], [[1.0, 2.0], [3.0]], {"a": 1}, {1, 2}, (1.0, 2.0), range(2), bytearray(b"ab"),
                     memoryview(b"abcd"), decimal.Decimal("1.5"), fractions.Fraction(1, 3), object(), Weird(),
                     BadArray("raise"), BadArray("list"), BadArray("none"), BadArray("ok"), np.float32(1.5),
                     np.int64(-1), np.uint64(2**64 - 1), np.bool_(True), np.datetime64(1, "s"), np.timedelta64(3, "D"),
                     np.complex64(1 + 0j), np.str_("x"), ml_dtypes.bfloat16(2), ml_dtypes.int4(-3), ..., NotImplemented,
                     np.broadcast_to(np.float32(1), (2,)), _unaligned(2), [np.float32(1), np.float64(2)],
                     np.array([1, 2], dtype=object), np.array([[1 + 2j, 3]]), float("nan"), float("inf"), 2**64, -(2**63) - 1]),
)  # fmt: skip
DYNAMIC = ["x", "n", "b", "h", "q", "u", "e", "s", "w", "k"]
names = st.one_of(st.sampled_from(DYNAMIC * 4 + ["y", "P", "c", "hy", "nope", "", "x ", "X"]),
                  st.sampled_from([1, None, b"x", ("x",), 1.5]))  # fmt: skip


@fuzz_settings(300)
@given(st.lists(st.tuples(names, st.one_of(numpy_values(), python_values)), min_size=1, max_size=3),
       st.sampled_from(["dict", "kwargs", "both", "pairs", "none"]), st.booleans())  # fmt: skip
def test_insert_values(items, form: str, on_cpu: bool) -> None:
    device = "cpu" if on_cpu else "reference"
    with outcome("insert", (device, items, form)):
        exe = simulator(device).make_executor()
        values = dict(items) if all(isinstance(k, str) or k is None or isinstance(k, int | bytes | tuple | float) for k, _ in items) else {}
        if form == "kwargs":
            kwargs = {k: v for k, v in values.items() if isinstance(k, str) and k.isidentifier()}
            _, error = call("insert(**values)", exe.insert, **kwargs)
        elif form == "both":
            _, error = call("insert(values, **values)", exe.insert, values,
                            **{k: v for k, v in values.items() if isinstance(k, str) and k.isidentifier()})  # fmt: skip
        elif form == "pairs":  # not a mapping
            _, error = call("insert(list of pairs)", exe.insert, list(values.items()))
        elif form == "none":
            _, error = call("insert(None)", exe.insert, None)
        else:
            _, error = call("insert(values)", exe.insert, values)
        count("insert", f"{device}: insert {'ok' if error is None else type(error).__name__}")
        _, error = call(f"step ({device})", exe.step)
        count("insert", f"{device}: step {'ok' if error is None else type(error).__name__}")
        for name in [*DYNAMIC, "y", "P", "pn", "ps"]:
            call("fetch", exe.fetch, name)
            call("state", exe.state, name)


# --- compiled loop nests ------------------------------------------------------------------------

_PLANS: dict[str, object] = {}


def _elementwise():
    A = oi.Array(role=oi.Role.INPUT, shape=(4,), name="A")
    B = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(4,), name="B")
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        B[i] = B[i] + A[i]

    return nest.create_plan().build(), [((4,), np.float32, False), ((4,), np.float32, True)]


def _matmul():
    A = oi.Array(role=oi.Role.INPUT, element_type=oi.ScalarType.float64, shape=(4, 3), name="A")
    B = oi.Array(role=oi.Role.INPUT, element_type=oi.ScalarType.float64, shape=(3, 5), layout=oi.Layout.LAST_MAJOR,
                 name="B")  # fmt: skip
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, element_type=oi.ScalarType.float64, shape=(4, 5), name="C")
    nest = oi.Nest(shape=(4, 5, 3))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    ii, jj = schedule.tile({i: 2, j: 2})
    schedule.reorder(i, j, k, ii, jj)
    plan = schedule.create_plan()
    plan.cache(A, index=ii)
    return plan.build(), [((4, 3), np.float64, False), ((3, 5), np.float64, False, "F"), ((4, 5), np.float64, True)]


def _parallel():
    X = oi.Array(role=oi.Role.INPUT_OUTPUT, element_type=oi.ScalarType.int32, shape=(8, 2), name="X")
    nest = oi.Nest(shape=(8, 2))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        X[i, j] = X[i, j] * 2

    plan = nest.create_plan()
    plan.parallelize(i, max_threads=2)
    return plan.build(), [((8, 2), np.int32, True)]


def _consts():
    K = oi.Array(role=oi.Role.CONST, element_type=oi.ScalarType.int64, shape=(3,), data=np.arange(3), name="K")
    T = oi.Array(role=oi.Role.TEMP, element_type=oi.ScalarType.int64, shape=(3,), name="T")
    Y = oi.Array(role=oi.Role.INPUT_OUTPUT, element_type=oi.ScalarType.int64, shape=(3,), name="Y")
    nest = oi.Nest(shape=(3,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        T[i] = K[i] + Y[i]
        Y[i] = T[i] * 2

    return nest.create_plan().build(), [((3,), np.int64, True)]


PLANS = {"elementwise": _elementwise, "matmul": _matmul, "parallel": _parallel, "consts": _consts}


def plan(name: str):
    if name not in _PLANS:
        _PLANS[name] = PLANS[name]()
    return _PLANS[name]


def expected(name: str, args: list[np.ndarray]) -> list[np.ndarray]:
    """What numpy computes for the INPUT_OUTPUT arrays of `name`'s nest on `args` (copies)."""
    a = [np.array(x, copy=True) for x in args]
    if name == "elementwise":
        return [(a[1] + a[0]).astype(np.float32)]
    if name == "matmul":
        return [a[2] + a[0] @ a[1]]
    if name == "parallel":
        return [(a[0] * 2).astype(np.int32)]
    return [(np.arange(3) + a[0]) * 2]


@st.composite
def nest_argument(draw, shape: tuple[int, ...], dtype, written: bool, order: str = "C"):
    """A correct array for the parameter (of its layout: `order`), or something wrong with it."""
    base = np.array(np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape).astype(dtype) + 1, order=order)
    how = draw(st.sampled_from(["ok"] * 6 + ["dtype", "shape", "rank", "fortran", "reversed", "strided", "readonly",
                                              "broadcast", "unaligned", "list", "none", "scalar", "zero-d", "subclass",
                                              "masked", "empty", "object", "bigger", "noncontig-ok"]))  # fmt: skip
    if how == "ok":
        return how, base
    if how == "dtype":
        return how, base.astype(draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.int64, np.uint32,
                                                       np.bool_, ml_dtypes.bfloat16, np.complex64])))  # fmt: skip
    if how == "shape":
        return how, np.ones(tuple(n + 1 for n in shape), dtype)
    if how == "rank":
        return how, base.reshape(-1) if len(shape) > 1 else base.reshape(1, -1)
    if how == "fortran":
        return how, np.asfortranarray(base) if order == "C" else np.ascontiguousarray(base)
    if how == "reversed":
        return how, base[::-1]
    if how == "strided":
        return how, np.repeat(base, 2, axis=0)[::2]
    if how == "readonly":
        base.flags.writeable = False
        return how, base
    if how == "broadcast":
        return how, np.broadcast_to(base.reshape(-1)[:1].reshape((1,) * len(shape)), shape)
    if how == "unaligned":
        raw = np.zeros(base.nbytes + 1, np.uint8)
        array = raw[1:].view(dtype).reshape(shape)
        array[...] = base
        return how, array
    if how == "list":
        return how, base.tolist()
    if how == "none":
        return how, None
    if how == "scalar":
        return how, dtype(1)
    if how == "zero-d":
        return how, np.array(1, dtype)
    if how == "subclass":
        return how, base.view(type("Sub", (np.ndarray,), {}))
    if how == "masked":
        return how, np.ma.masked_array(base)
    if how == "empty":
        return how, np.zeros((0,) * len(shape), dtype)
    if how == "object":
        return how, base.astype(object)
    if how == "bigger":  # a view of the right shape into a bigger buffer (C-contiguous rows, strided dims)
        big = np.zeros(tuple(n * 2 for n in shape), dtype, order=order)
        view = big[tuple(slice(0, n) for n in shape)]
        view[...] = base
        return how, view
    return how, np.array(base, order="F" if order == "C" else "C")


NEST_HEAVY = HeavyBudget(4)


@fuzz_settings(300)
@given(st.sampled_from(sorted(PLANS)), st.data())
def test_nest_function_arguments(name: str, data) -> None:
    if name not in _PLANS and not NEST_HEAVY.take():
        name = next(iter(_PLANS), "elementwise")
    with outcome("nest-call", name):
        fn, params = plan(name)
        drawn = [data.draw(nest_argument(*param)) for param in params]
        kinds = [how for how, _ in drawn]
        args = [value for _, value in drawn]
        form = data.draw(st.sampled_from(["as is"] * 6 + ["fewer", "more", "alias"]))
        if form == "fewer" and args:
            args = args[:-1]
        elif form == "more":
            args = [*args, args[0] if args else None]
        elif form == "alias" and len(args) > 1:
            args = [args[0]] * len(args)
        kinds.append(form)
        before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
        _, error = call(f"{name}{kinds}", fn, *args)
        count("nest-call", f"{name}: {'ok' if error is None else type(error).__name__}")
        if error is None and form == "as is":
            wanted = expected(name, before)
            got = [a for a, param in zip(args, params) if param[2]]
            for w, g in zip(wanted, got):
                if not np.allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=1e-6, atol=1e-9):
                    raise Bug(f"{name} accepted {kinds} and computed a wrong result",
                              AssertionError(f"got {np.asarray(g).tolist()}, numpy says {np.asarray(w).tolist()}"))


@fuzz_settings(30)
@given(st.lists(st.sampled_from(["A", "B", "C", "other", "const", "temp", "none", "int"]), max_size=4))
def test_plan_build_args(picks) -> None:
    with outcome("plan-build", picks):
        A = oi.Array(role=oi.Role.INPUT, shape=(4,), name="A")
        B = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(4,), name="B")
        C = oi.Array(role=oi.Role.CONST, shape=(4,), data=np.ones(4, np.float32), name="C")
        T = oi.Array(role=oi.Role.TEMP, shape=(4,), name="T")
        other = oi.Array(role=oi.Role.INPUT, shape=(4,), name="other")
        nest = oi.Nest(shape=(4,))
        i = nest.get_indices()

        @nest.iteration_logic
        def _():
            T[i] = A[i] * C[i]
            B[i] = B[i] + T[i]

        table = {"A": A, "B": B, "C": C, "const": C, "temp": T, "other": other, "none": None, "int": 3}
        args = [table[p] for p in picks]
        if sorted(picks) == ["A", "B"] and not NEST_HEAVY.take():
            return  # a valid build: a compile
        _, error = call("plan.build(args=...)", nest.create_plan().build, args=args)
        count("plan-build", "built" if error is None else type(error).__name__)
