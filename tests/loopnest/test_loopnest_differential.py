"""Differential tests: Accera-style loop nests (`oi.Array` -> `oi.Nest` -> schedule -> plan ->
`plan.build()`) compiled for the cpu and run on numpy arrays, against numpy.

Whatever a plan asks for (splits that do not divide, any valid order, caches of any array at any
index/level/budget, triggers, layouts, thrifty elision, double buffering, hierarchical caches,
unroll/vectorize marks, parallelize), the function must compute what the logic says
(../shared/reference/accera.md §0-1: a cache changes where data lives, never the result).

* Hand-written cases (`CASES`): C0 + A @ B with each feature alone and in combinations,
  transposed operands (a column-major `A`, logic `A[k, i]`, a padded coefficient layout), a 4-D
  batched matmul and a 3-D reduction, a 2-D stencil reading a larger `X`, 1-D convolutions
  (plain and stride 2), a negative index coefficient, a 1-D read-write nest, a TEMP array and
  two statements, int32/int64/float64 nests, CONST arrays, concurrent calls.
* A hypothesis property (`test_random_plans_match_numpy`): a random nest kind (`KINDS`) and
  shape (1..20 per dimension), 0-3 random splits (sizes 1..extent+2, inner and outer indices
  split again), a random order keeping each chain's order, 1-4 random caches (of an array or of
  an earlier cache; index / level / max_elements; trigger, layout, thrifty, double_buffer),
  unroll/vectorize marks on short loops and sometimes parallelize, all through the public API.
  Each `plan.cache` call is checked against Accera's validation rules (accera.md §1.5, the subset
  these arguments reach): a request Accera rejects must raise `ScheduleError` with Accera's
  message at the call (the example goes on without that cache), one it accepts must be accepted.
  A source is cached once (this compiler refuses a second cache of one source, where Accera
  accepts it: `test_one_array_cached_twice`).

Every argument lives in a buffer with sentinel guards around it (writes past an array are caught
instead of corrupting the heap), each plan runs twice on fresh data, and outputs are compared
with numpy in float64: float32 to 1e-4 relative (the logic allows contraction into FMA and caches
reassociate accumulations), float64 to 1e-10, integers exactly; INPUT arrays must come back
unchanged.

The property runs the same 60 examples every time (derandomized); `OI_DIFF_EXAMPLES=2000` draws
that many fresh ones (and `OI_DIFF_SPLITS=5` allows more splits). Bugs it finds are pinned at the
end: an xfail(strict=True) test and an entry in `KNOWN_BUGS` that keeps the configuration out of
the property while the bug is open, then a plain regression test once it is fixed.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st

import oi_compiler as oi

pytestmark = pytest.mark.usefixtures("private_compile_cache")

IN, IO, CONST = oi.Role.INPUT, oi.Role.INPUT_OUTPUT, oi.Role.CONST
FM, LM = oi.Layout.FIRST_MAJOR, oi.Layout.LAST_MAJOR
F32, F64, I32, I64 = np.float32, np.float64, np.int32, np.int64


# --- problems: arrays, a nest with its logic, and the numpy answer ------------------------------


@dataclass
class Problem:
    nest: oi.Nest
    arrays: dict[str, oi.Array]  # by name
    reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]  # values -> written arrays
    dims: list[int]
    index: dict[str, oi.LoopIndex]  # the nest's indices by name

    @property
    def params(self) -> list[oi.Array]:
        return [a for a in self.arrays.values() if a.role in (IN, IO)]


def _data(shape, dtype, rng) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-4, 5, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _array(role, dtype, shape, name, layout=FM, rng=None) -> oi.Array:
    if role is CONST:
        return oi.Array(role=CONST, element_type=dtype, shape=shape, data=_data(shape, dtype, rng), name=name)
    return oi.Array(role=role, element_type=dtype, shape=shape, layout=layout, name=name)


def _f64(x: np.ndarray) -> np.ndarray:
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float64)


def _problem(nest, arrays, reference, dims) -> Problem:
    idx = nest.get_indices()
    idx = idx if isinstance(idx, tuple) else (idx,)
    return Problem(nest, {a.name: a for a in arrays}, reference, list(dims), {i.name: i for i in idx})


def gemm(M, N, K, dtype=F32, layouts=(FM, FM, FM), b_const=False, ta=False, tb=False, sub=False) -> Problem:
    """C[i, j] += A[i, k] * B[k, j] (A[k, i] with `ta`, B[j, k] with `tb`; `C = C - ...` with `sub`)."""
    rng = np.random.default_rng(M * 400 + N * 20 + K)
    A = _array(IN, dtype, (K, M) if ta else (M, K), "A", layouts[0])
    B = _array(CONST if b_const else IN, dtype, (N, K) if tb else (K, N), "B", layouts[1], rng)
    C = _array(IO, dtype, (M, N), "C", layouts[2])
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        a = A[k, i] if ta else A[i, k]
        b = B[j, k] if tb else B[k, j]
        if sub:
            C[i, j] = C[i, j] - a * b
        else:
            C[i, j] += a * b

    def reference(v):
        a = v["A"].T if ta else v["A"]
        b = v["B"].T if tb else v["B"]
        prod = _f64(a) @ _f64(b)
        return {"C": _f64(v["C"]) - prod if sub else _f64(v["C"]) + prod}

    return _problem(nest, [A, B, C], reference, (M, N, K))


def bmm(Bt, M, N, K, dtype=F32, layouts=(FM, FM, FM)) -> Problem:
    """C[b, i, j] += A[b, i, k] * B[b, k, j]: a 4-D nest over 3-D arrays."""
    A = _array(IN, dtype, (Bt, M, K), "A", layouts[0])
    B = _array(IN, dtype, (Bt, K, N), "B", layouts[1])
    C = _array(IO, dtype, (Bt, M, N), "C", layouts[2])
    nest = oi.Nest(shape=(Bt, M, N, K))
    b, i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[b, i, j] += A[b, i, k] * B[b, k, j]

    return _problem(nest, [A, B, C], lambda v: {"C": _f64(v["C"]) + np.matmul(_f64(v["A"]), _f64(v["B"]))},
                    (Bt, M, N, K))  # fmt: skip


def reduce3d(I, J, K, dtype=F32, layouts=(FM, FM, FM), w_const=False) -> Problem:
    """Y[i, j] += X[i, k, j] * W[k, j]: a 3-D nest reducing over its middle loop."""
    rng = np.random.default_rng(I * 400 + J * 20 + K)
    X = _array(IN, dtype, (I, K, J), "X", layouts[0])
    W = _array(CONST if w_const else IN, dtype, (K, J), "W", layouts[1], rng)
    Y = _array(IO, dtype, (I, J), "Y", layouts[2])
    nest = oi.Nest(shape=(I, J, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i, j] += X[i, k, j] * W[k, j]

    def reference(v):
        return {"Y": _f64(v["Y"]) + np.einsum("ikj,kj->ij", _f64(v["X"]), _f64(v["W"]))}

    return _problem(nest, [X, W, Y], reference, (I, J, K))


def stencil(M, N, dtype=F32, layouts=(FM, FM), extra=(1, 2), x_const=False) -> Problem:
    """Y[i, j] = X[i, j+1] + X[i+2, j+1] - 4*X[i+1, j+1], X larger than the domain."""
    rng = np.random.default_rng(M * 20 + N)
    X = _array(CONST if x_const else IN, dtype, (M + 2 + extra[0], N + 1 + extra[1]), "X", layouts[0], rng)
    Y = _array(IO, dtype, (M, N), "Y", layouts[1])
    nest = oi.Nest(shape=(M, N))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i, j] = X[i, j + 1] + X[i + 2, j + 1] - 4 * X[i + 1, j + 1]

    def reference(v):
        x = _f64(v["X"])
        return {"Y": x[0:M, 1 : N + 1] + x[2 : M + 2, 1 : N + 1] - 4 * x[1 : M + 1, 1 : N + 1]}

    return _problem(nest, [X, Y], reference, (M, N))


def conv1d(N, R, dtype=F32, stride=1, extra=1, w_const=False) -> Problem:
    """Y[i] += X[stride*i + r] * W[r]."""
    rng = np.random.default_rng(N * 20 + R)
    X = _array(IN, dtype, (stride * (N - 1) + R + extra,), "X")
    W = _array(CONST if w_const else IN, dtype, (R,), "W", FM, rng)
    Y = _array(IO, dtype, (N,), "Y")
    nest = oi.Nest(shape=(N, R))
    i, r = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] += X[stride * i + r] * W[r]

    def reference(v):
        x, w = _f64(v["X"]), _f64(v["W"])
        windows = np.stack([x[stride * n : stride * n + R] for n in range(N)])
        return {"Y": _f64(v["Y"]) + windows @ w}

    return _problem(nest, [X, W, Y], reference, (N, R))


def flip(M, N, K, dtype=F32, layouts=(FM, FM), extra=1) -> Problem:
    """Y[i, j] += X[M - 1 - i, 2*k + j] * W[k]: a negative coefficient, two loops in one dimension."""
    X = _array(IN, dtype, (M + extra, 2 * (K - 1) + N + extra), "X", layouts[0])
    W = _array(IN, dtype, (K,), "W")
    Y = _array(IO, dtype, (M, N), "Y", layouts[1])
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i, j] += X[M - 1 - i, 2 * k + j] * W[k]

    def reference(v):
        x, w = _f64(v["X"]), _f64(v["W"])
        rows = x[M - 1 :: -1][:M] if M > 0 else x[:0]
        acc = sum(rows[:, 2 * n : 2 * n + N] * w[n] for n in range(K))
        return {"Y": _f64(v["Y"]) + acc}

    return _problem(nest, [X, W, Y], reference, (M, N, K))


def two_statements(M, N, K, dtype=F32, layouts=(FM, FM)) -> Problem:
    """T[i, j] = X[i, k] * W[k, j]; Y[i, j] += T[i, j]; Z[i, j] = 2 * Y[i, j]: a TEMP array, and
    Y read by two statements (so a cache of Y copies in and out rather than accumulating)."""
    X = _array(IN, dtype, (M, K), "X", layouts[0])
    W = _array(IN, dtype, (K, N), "W")
    T = oi.Array(role=oi.Role.TEMP, element_type=dtype, shape=(M, N), name="T")
    Y = _array(IO, dtype, (M, N), "Y", layouts[1])
    Z = _array(IO, dtype, (M, N), "Z")
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        T[i, j] = X[i, k] * W[k, j]
        Y[i, j] += T[i, j]
        Z[i, j] = 2 * Y[i, j]

    def reference(v):
        y = _f64(v["Y"]) + _f64(v["X"]) @ _f64(v["W"])
        return {"Y": y, "Z": 2 * y}

    return _problem(nest, [X, W, T, Y, Z], reference, (M, N, K))


def axpy(N, dtype=F32, extra=1) -> Problem:
    """Y[i] = 2*Y[i] + X[i + 1]: a 1-D nest whose output is read and written (not an accumulate)."""
    X = _array(IN, dtype, (N + 1 + extra,), "X")
    Y = _array(IO, dtype, (N,), "Y")
    nest = oi.Nest(shape=(N,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] = 2 * Y[i] + X[i + 1]

    return _problem(nest, [X, Y], lambda v: {"Y": 2 * _f64(v["Y"]) + _f64(v["X"])[1 : N + 1]}, (N,))


# --- building, running, comparing ------------------------------------------------------------------


def _tolerance(dtype) -> tuple[float, float]:
    return {np.dtype(F32): (1e-4, 1e-4), np.dtype(F64): (1e-10, 1e-10)}.get(np.dtype(dtype), (0, 0))


GUARD = 8  # at least this many sentinel elements on each side of every array argument


def _sentinel(dtype):
    """Far from the data (|x| <= 4 or so), and changed by any accumulation into it."""
    return dtype.type(-12345.5) if np.issubdtype(dtype, np.floating) else dtype.type(-999983)


def _guarded(x: np.ndarray, fortran: bool):
    """`x` in the middle of a larger buffer of sentinels: (the view the function gets, the whole
    buffer, the view's slice). Writes past the array land in the guards (and are caught) rather
    than in the heap, and reads past it bring a far-off value into the results."""
    axis = x.ndim - 1 if fortran else 0
    row = math.prod(x.shape) // x.shape[axis]
    pad = -(-GUARD // row)
    shape = list(x.shape)
    shape[axis] += 2 * pad
    whole = np.full(shape, _sentinel(x.dtype), x.dtype, order="F" if fortran else "C")
    where = [slice(None)] * x.ndim
    where[axis] = slice(pad, pad + x.shape[axis])
    view = whole[tuple(where)]
    view[...] = x
    assert view.flags.f_contiguous if fortran else view.flags.c_contiguous
    return view, whole, tuple(where)


def _inputs(problem: Problem, seed: int):
    """Random arguments (in guarded buffers), their originals, and what numpy says they become."""
    rng = np.random.default_rng(seed)
    values, guards = {}, {}
    for a in problem.params:
        values[a.name], *guards[a.name] = _guarded(_data(a.shape, a.dtype, rng), a.layout is LM)
    originals = {n: v.copy() for n, v in values.items()}
    consts = {a.name: np.asarray(a.data) for a in problem.arrays.values() if a.role is CONST}
    return values, guards, originals, problem.reference({**originals, **consts})


def _check(problem: Problem, values, guards, originals, expected) -> None:
    for a in problem.params:
        whole, where = guards[a.name]
        outside = whole.copy()
        outside[where] = _sentinel(a.dtype)
        np.testing.assert_array_equal(outside, np.full_like(whole, _sentinel(a.dtype)),
                                      err_msg=f"written outside {a.name}")  # fmt: skip
        got = values[a.name]
        if a.name not in expected:
            np.testing.assert_array_equal(got, originals[a.name], err_msg=f"INPUT {a.name} was modified")
            continue
        want = expected[a.name]
        rtol, atol = _tolerance(a.dtype)
        if rtol == 0:
            np.testing.assert_array_equal(got, want.astype(a.dtype), err_msg=a.name)
        else:
            scale = max(1.0, float(np.abs(want).max(initial=0.0)))
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=a.name)


def run_and_compare(problem: Problem, plan, seed: int = 0, calls: int = 2):
    """Build `plan`, run it `calls` times on fresh random data (a call must not depend on what an
    earlier one left in the caches) and compare every argument with numpy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # double_buffer without an enclosing loop says so
        fn = plan.build(args=problem.params)
    for call in range(calls):
        values, guards, originals, expected = _inputs(problem, seed + call)
        fn(*(values[a.name] for a in problem.params))
        _check(problem, values, guards, originals, expected)
    return fn


def tiled(problem: Problem, tiles: dict[str, int], order: str | None = None):
    """(schedule, plan, indices by name): `tile` by `tiles` (names of the nest's indices), the
    inner indices named `<name><name>` (ii, jj...), then `order` (space-separated names)."""
    s = problem.nest.create_schedule()
    idx = dict(problem.index)
    inner = s.tile({idx[n]: size for n, size in tiles.items()})
    for n, new in zip(tiles, inner):
        idx[n + n] = new
    if order is not None:
        s.reorder(*(idx[n] for n in order.split()))
    return s, s.create_plan(), idx


# --- hand-written cases -------------------------------------------------------------------------------

CASES: dict[str, Callable[[], tuple[Problem, object]]] = {}


def case(name: str):
    def register(fn):
        assert name not in CASES
        CASES[name] = fn
        return fn

    return register


GEMM = (9, 11, 7)  # M, N, K: the tiles below divide none of them
GEMM_TILES = {"i": 4, "j": 4, "k": 3}
GEMM_ORDER = "i j k ii jj kk"


def gemm_plan(*, problem=None, tiles=GEMM_TILES, order=GEMM_ORDER):
    p = problem or gemm(*GEMM)
    s, plan, idx = tiled(p, tiles, order)
    return p, plan, idx


@case("untiled")
def _():
    p = gemm(*GEMM)
    return p, p.nest.create_plan()


@case("tiled_no_caches")
def _():
    p, plan, _ = gemm_plan()
    return p, plan


@case("tile_divides")
def _():
    p, plan, idx = gemm_plan(problem=gemm(8, 16, 9))
    plan.cache(p.arrays["A"], index=idx["ii"])
    plan.cache(p.arrays["C"], index=idx["jj"])
    return p, plan


@case("split_inner_index_again")
def _():
    p = gemm(*GEMM)
    s = p.nest.create_schedule()
    i, j, k = (p.index[n] for n in "ijk")
    ii = s.split(i, 6)
    iii = s.split(ii, 4)
    kk = s.split(k, 5)
    s.reorder(i, k, j, ii, kk, iii)
    plan = s.create_plan()
    plan.cache(p.arrays["B"], index=kk)
    plan.cache(p.arrays["A"], index=ii)
    plan.cache(p.arrays["C"], index=iii)
    return p, plan


@case("split_outer_index_again")
def _():
    p = gemm(*GEMM)
    s = p.nest.create_schedule()
    i, j, k = (p.index[n] for n in "ijk")
    ii = s.split(i, 2)
    i2 = s.split(i, 3)  # i now walks 6-row tiles, i2 2-row tiles in them, ii rows
    s.reorder(i, j, i2, k, ii)
    plan = s.create_plan()
    plan.cache(p.arrays["A"], index=i2)
    plan.cache(p.arrays["C"], index=k)
    return p, plan


@case("split_size_larger_than_extent")
def _():
    p, plan, idx = gemm_plan(problem=gemm(5, 6, 7), tiles={"i": 7, "j": 8, "k": 9})
    plan.cache(p.arrays["B"], index=idx["k"])
    plan.cache(p.arrays["C"], index=idx["ii"])
    return p, plan


for _array_name in "ABC":
    for _index_name in GEMM_ORDER.split():

        @case(f"cache_{_array_name}_at_{_index_name}")
        def _(a=_array_name, at=_index_name):
            p, plan, idx = gemm_plan()
            plan.cache(p.arrays[a], index=idx[at])
            return p, plan

    for _index_name in ("k", "ii"):

        @case(f"cache_{_array_name}_at_{_index_name}_last_major")
        def _(a=_array_name, at=_index_name):
            p, plan, idx = gemm_plan()
            plan.cache(p.arrays[a], index=idx[at], layout=LM)
            return p, plan


@case("cache_levels")
def _():
    p, plan, _ = gemm_plan()
    plan.cache(p.arrays["A"], level=1)  # kk
    plan.cache(p.arrays["B"], level=4)  # k
    plan.cache(p.arrays["C"], level=6)  # i
    return p, plan


@case("all_three_cached")
def _():
    p, plan, idx = gemm_plan()
    plan.cache(p.arrays["A"], index=idx["ii"])
    plan.cache(p.arrays["B"], index=idx["k"])
    plan.cache(p.arrays["C"], index=idx["ii"])
    return p, plan


for _a, _at, _layout in [("A", "jj", None), ("B", "kk", LM), ("C", "jj", LM), ("C", "kk", None), ("A", "k", LM),
                         ("B", "j", None)]:  # fmt: skip
    if True:

        @case(f"thrifty_{_a}_at_{_at}_{'default' if _layout is None else 'last_major'}")
        def _(a=_a, at=_at, layout=_layout):
            p, plan, idx = gemm_plan()
            plan.cache(p.arrays[a], index=idx[at], layout=layout, thrifty=True)
            return p, plan


@case("thrifty_order_makes_B_row_contiguous")
def _():
    p, plan, idx = gemm_plan(order="i k j ii kk jj", tiles={"i": 4, "j": 17, "k": 3})
    plan.cache(p.arrays["B"], index=idx["kk"], thrifty=True)  # 3 whole rows of B: contiguous
    plan.cache(p.arrays["A"], index=idx["kk"], thrifty=True)
    return p, plan


for _a, _at, _trigger in [("A", "ii", "k"), ("A", "ii", "i"), ("A", "kk", "j"), ("A", "jj", "k"),
                          ("B", "kk", "k"), ("B", "jj", "j"), ("B", "ii", "i"), ("B", "kk", "i")]:  # fmt: skip

    @case(f"multicache_{_a}_at_{_at}_trigger_{_trigger}")
    def _(a=_a, at=_at, trigger=_trigger):
        p, plan, idx = gemm_plan()
        plan.cache(p.arrays[a], index=idx[at], trigger_index=idx[trigger])
        return p, plan


@case("multicache_trigger_level")
def _():
    p, plan, _ = gemm_plan()
    plan.cache(p.arrays["A"], level=3, trigger_level=5)
    plan.cache(p.arrays["B"], level=2, trigger_level=4)
    return p, plan


@case("multicache_last_major_thrifty")
def _():
    p, plan, idx = gemm_plan()
    plan.cache(p.arrays["A"], index=idx["ii"], trigger_index=idx["k"], layout=LM, thrifty=True)
    plan.cache(p.arrays["B"], index=idx["jj"], trigger_index=idx["j"], thrifty=True)
    return p, plan


for _a, _at, _trigger in [("A", "ii", None), ("A", "kk", None), ("B", "kk", None), ("B", "k", None),
                          ("A", "ii", "k"), ("B", "jj", "k"), ("A", "i", None), ("B", "ii", "ii")]:  # fmt: skip

    @case(f"double_buffer_{_a}_at_{_at}_trigger_{_trigger}")
    def _(a=_a, at=_at, trigger=_trigger):
        p, plan, idx = gemm_plan()
        plan.cache(p.arrays[a], index=idx[at], trigger_index=idx[trigger] if trigger else None, double_buffer=True)
        return p, plan


@case("double_buffer_both_inputs_with_output_cache")
def _():
    p, plan, idx = gemm_plan()
    plan.cache(p.arrays["A"], index=idx["ii"], double_buffer=True)
    plan.cache(p.arrays["B"], index=idx["kk"], double_buffer=True, layout=LM)
    plan.cache(p.arrays["C"], index=idx["ii"])
    return p, plan


@case("double_buffer_thrifty")
def _():
    p, plan, idx = gemm_plan()
    plan.cache(p.arrays["A"], index=idx["jj"], double_buffer=True, thrifty=True)  # elided
    plan.cache(p.arrays["B"], index=idx["kk"], double_buffer=True, thrifty=True)  # kept
    return p, plan


@case("double_buffer_tile_size_one")
def _():
    p, plan, idx = gemm_plan(tiles={"i": 1, "j": 8, "k": 1})
    plan.cache(p.arrays["A"], index=idx["ii"], double_buffer=True)
    plan.cache(p.arrays["B"], index=idx["kk"], double_buffer=True)
    return p, plan


@case("double_buffer_single_trip_parent")
def _():
    p, plan, idx = gemm_plan(tiles={"i": 20, "j": 8, "k": 3}, order="i j k ii jj kk")
    plan.cache(p.arrays["A"], index=idx["ii"], trigger_index=idx["i"], double_buffer=True)
    return p, plan


@case("hierarchical_A_k_then_ii")
def _():
    p, plan, idx = gemm_plan()
    AA = plan.cache(p.arrays["A"], index=idx["k"])
    plan.cache(AA, index=idx["ii"])
    return p, plan


@case("hierarchical_three_levels_B")
def _():
    p, plan, idx = gemm_plan()
    B1 = plan.cache(p.arrays["B"], index=idx["j"])
    B2 = plan.cache(B1, index=idx["k"], layout=LM)
    plan.cache(B2, index=idx["kk"])
    return p, plan


@case("hierarchical_C")
def _():
    p, plan, idx = gemm_plan()
    CC = plan.cache(p.arrays["C"], index=idx["j"])
    plan.cache(CC, index=idx["jj"])
    return p, plan


@case("hierarchical_C_inner_hoisted")
def _():
    p, plan, idx = gemm_plan()
    CC = plan.cache(p.arrays["C"], index=idx["k"])
    plan.cache(CC, index=idx["ii"])
    return p, plan


@case("hierarchical_with_inner_trigger")
def _():
    p, plan, idx = gemm_plan()
    AA = plan.cache(p.arrays["A"], index=idx["k"])
    plan.cache(AA, index=idx["jj"], trigger_index=idx["ii"])
    return p, plan


@case("hierarchical_outer_multicache_double_buffer")
def _():
    p, plan, idx = gemm_plan()
    AA = plan.cache(p.arrays["A"], index=idx["ii"], trigger_index=idx["k"], double_buffer=True)
    plan.cache(AA, index=idx["jj"])
    return p, plan


@case("hierarchical_thrifty_inner")
def _():
    p, plan, idx = gemm_plan()
    BB = plan.cache(p.arrays["B"], index=idx["k"])
    plan.cache(BB, index=idx["jj"], thrifty=True)
    return p, plan


@case("readme_example")
def _():
    p, plan, idx = gemm_plan(problem=gemm(7, 10, 5))
    AA = plan.cache(p.arrays["A"], index=idx["ii"], double_buffer=True)
    plan.cache(AA, index=idx["jj"])
    plan.unroll(idx["ii"])
    plan.vectorize(idx["jj"])
    plan.parallelize(idx["i"], max_threads=2)
    return p, plan


for _a in "ABC":
    for _budget in (1, 3, 24, 10**6):

        @case(f"max_elements_{_a}_{_budget}")
        def _(a=_a, budget=_budget):
            p, plan, _ = gemm_plan()
            plan.cache(p.arrays[a], max_elements=budget)
            return p, plan


@case("max_elements_all_tiny")
def _():
    p, plan, _ = gemm_plan()
    for name in "ABC":
        plan.cache(p.arrays[name], max_elements=1)
    return p, plan


@case("max_elements_untiled")
def _():
    p = gemm(*GEMM)
    plan = p.nest.create_plan()
    plan.cache(p.arrays["A"], max_elements=11)
    plan.cache(p.arrays["C"], max_elements=5)
    return p, plan


@case("max_elements_hierarchical")
def _():
    p, plan, _ = gemm_plan()
    BB = plan.cache(p.arrays["B"], max_elements=200)
    plan.cache(BB, max_elements=8)
    CC = plan.cache(p.arrays["C"], max_elements=40)
    plan.cache(CC, max_elements=1)
    return p, plan


@case("max_elements_thrifty_last_major")
def _():
    p, plan, _ = gemm_plan()
    plan.cache(p.arrays["A"], max_elements=12, thrifty=True, layout=LM)
    plan.cache(p.arrays["B"], max_elements=8, thrifty=True)
    return p, plan


@case("max_elements_double_buffer")
def _():
    p, plan, _ = gemm_plan()
    plan.cache(p.arrays["A"], max_elements=12, double_buffer=True)
    plan.cache(p.arrays["B"], max_elements=1, double_buffer=True)
    return p, plan


@case("unroll_kk")
def _():
    p, plan, idx = gemm_plan()
    plan.unroll(idx["kk"])
    return p, plan


@case("vectorize_jj")
def _():
    p, plan, idx = gemm_plan()
    plan.vectorize(idx["jj"])
    return p, plan


@case("unroll_vectorize_with_caches")
def _():
    p, plan, idx = gemm_plan()
    plan.cache(p.arrays["B"], index=idx["kk"])
    plan.cache(p.arrays["C"], index=idx["ii"])
    plan.unroll(idx["ii"])
    plan.vectorize(idx["jj"])
    return p, plan


@case("kernelize_with_multicache")
def _():
    p, plan, idx = gemm_plan(order="j k i jj kk ii")
    plan.cache(p.arrays["B"], index=idx["kk"], trigger_index=idx["k"], layout=LM)
    plan.cache(p.arrays["A"], index=idx["kk"])
    plan.kernelize(unroll_indices=[idx["kk"]], vectorize_indices=idx["ii"])
    return p, plan


@case("unroll_loop_holding_a_cache")
def _():
    p, plan, idx = gemm_plan(tiles={"i": 2, "j": 3, "k": 3})
    plan.cache(p.arrays["A"], index=idx["jj"])
    plan.cache(p.arrays["C"], index=idx["kk"])
    plan.unroll(idx["ii"])
    plan.unroll(idx["jj"])
    return p, plan


@case("unroll_double_buffered_loop")
def _():
    p, plan, idx = gemm_plan()
    plan.cache(p.arrays["A"], index=idx["kk"], double_buffer=True)
    plan.unroll(idx["ii"])
    return p, plan


for _threads in (1, 2, 3, 5):

    @case(f"parallelize_{_threads}_threads")
    def _(threads=_threads):
        p, plan, idx = gemm_plan()
        plan.parallelize(idx["i"], max_threads=threads)
        return p, plan


@case("parallelize_with_caches")
def _():
    p, plan, idx = gemm_plan()
    plan.cache(p.arrays["A"], index=idx["ii"], double_buffer=True)
    plan.cache(p.arrays["B"], index=idx["k"], trigger_index=idx["j"])
    plan.cache(p.arrays["C"], index=idx["jj"])
    plan.parallelize(idx["i"], max_threads=3)
    return p, plan


@case("parallelize_two_indices")
def _():
    p, plan, idx = gemm_plan()
    plan.parallelize([idx["i"], idx["j"]], max_threads=4)
    plan.cache(p.arrays["C"], index=idx["ii"])
    return p, plan


@case("parallelize_double_buffered_outer_loop")
def _():
    p, plan, idx = gemm_plan(tiles={"i": 3, "j": 8, "k": 3}, order="i j k ii jj kk")
    plan.cache(p.arrays["A"], index=idx["j"], double_buffer=True)  # hoisted to j's parent, i: the parallel loop
    plan.parallelize(idx["i"], max_threads=2)
    return p, plan


@case("accera_tutorial_style")
def _():
    p = gemm(29, 35, 19)
    s = p.nest.create_schedule()
    i, j, k = (p.index[n] for n in "ijk")
    jj = s.split(j, 16)
    kk = s.split(k, 8)
    jjj = s.split(jj, 8)
    jjjj = s.split(jjj, 4)
    ii = s.split(i, 6)
    s.reorder(j, k, i, jj, kk, ii, jjj, jjjj)
    plan = s.create_plan()
    plan.cache(p.arrays["B"], index=jj, layout=FM)
    plan.cache(p.arrays["C"], index=ii)
    plan.unroll(jjj)
    plan.unroll(ii)
    plan.vectorize(jjjj)
    return p, plan


# transposed operands


@case("A_column_major")
def _():
    p, plan, _ = gemm_plan(problem=gemm(*GEMM, layouts=(LM, FM, FM)))
    return p, plan


@case("A_column_major_caches")
def _():
    p, plan, idx = gemm_plan(problem=gemm(*GEMM, layouts=(LM, FM, FM)))
    plan.cache(p.arrays["A"], index=idx["ii"])  # its own layout: column-major
    plan.cache(p.arrays["B"], index=idx["kk"], layout=LM)
    return p, plan


@case("A_column_major_thrifty")
def _():
    p, plan, idx = gemm_plan(problem=gemm(*GEMM, layouts=(LM, FM, FM)), order="j k i kk jj ii")
    AA = plan.cache(p.arrays["A"], index=idx["kk"], layout=FM, thrifty=True)  # 3x4 row-major copy: kept
    plan.cache(AA, index=idx["ii"], thrifty=True, layout=LM)  # a column piece of it
    plan.cache(p.arrays["B"], index=idx["jj"], thrifty=True)  # a row piece: elided
    return p, plan


@case("all_column_major_multicache_double_buffer")
def _():
    p, plan, idx = gemm_plan(problem=gemm(*GEMM, layouts=(LM, LM, LM)))
    plan.cache(p.arrays["A"], index=idx["ii"], trigger_index=idx["k"], double_buffer=True)
    plan.cache(p.arrays["B"], index=idx["jj"], thrifty=True)
    plan.cache(p.arrays["C"], index=idx["ii"], layout=FM)
    return p, plan


@case("logic_transposed_A_and_B")
def _():
    p, plan, idx = gemm_plan(problem=gemm(*GEMM, ta=True, tb=True))
    plan.cache(p.arrays["A"], index=idx["ii"], layout=LM)
    plan.cache(p.arrays["B"], index=idx["kk"], trigger_index=idx["k"])
    plan.cache(p.arrays["C"], index=idx["jj"])
    return p, plan


@case("read_write_output_cache")
def _():
    p, plan, idx = gemm_plan(problem=gemm(*GEMM, sub=True))
    plan.cache(p.arrays["C"], index=idx["ii"])
    plan.cache(p.arrays["A"], index=idx["kk"])
    return p, plan


@case("read_write_output_budget")
def _():
    p, plan, _ = gemm_plan(problem=gemm(*GEMM, sub=True))
    plan.cache(p.arrays["C"], max_elements=6)
    return p, plan


@case("const_B")
def _():
    p, plan, idx = gemm_plan(problem=gemm(*GEMM, b_const=True))
    plan.cache(p.arrays["B"], index=idx["kk"], trigger_index=idx["k"], double_buffer=True)
    return p, plan


# other nests


@case("bmm_4d")
def _():
    p = bmm(3, 7, 9, 5)
    s = p.nest.create_schedule()
    b, i, j, k = (p.index[n] for n in "bijk")
    ii, jj = s.tile({i: 3, j: 4})
    s.reorder(b, i, j, k, ii, jj)
    plan = s.create_plan()
    plan.cache(p.arrays["A"], index=ii)
    plan.cache(p.arrays["B"], index=k, trigger_index=j)
    plan.cache(p.arrays["C"], index=k)
    plan.vectorize(jj)
    return p, plan


@case("bmm_4d_batch_inner")
def _():
    p = bmm(4, 5, 6, 7, layouts=(FM, LM, FM))
    s = p.nest.create_schedule()
    b, i, j, k = (p.index[n] for n in "bijk")
    kk = s.split(k, 3)
    s.reorder(i, k, b, j, kk)
    plan = s.create_plan()
    plan.cache(p.arrays["B"], index=b, double_buffer=True)
    plan.cache(p.arrays["C"], max_elements=30)
    plan.parallelize(i, max_threads=2)
    return p, plan


@case("reduce3d")
def _():
    p = reduce3d(6, 11, 9)
    s = p.nest.create_schedule()
    i, j, k = (p.index[n] for n in "ijk")
    jj, kk = s.tile({j: 4, k: 4})
    s.reorder(j, k, i, jj, kk)
    plan = s.create_plan()
    plan.cache(p.arrays["X"], index=i, layout=LM)
    plan.cache(p.arrays["W"], index=jj, trigger_index=k, double_buffer=True)
    plan.cache(p.arrays["Y"], index=k)
    return p, plan


@case("reduce3d_const_column_major")
def _():
    p = reduce3d(5, 7, 8, layouts=(LM, FM, LM), w_const=True)
    s = p.nest.create_schedule()
    i, j, k = (p.index[n] for n in "ijk")
    ii = s.split(i, 2)
    s.reorder(k, i, j, ii)
    plan = s.create_plan()
    plan.cache(p.arrays["X"], index=ii, thrifty=True)
    plan.cache(p.arrays["W"], max_elements=4)
    plan.cache(p.arrays["Y"], index=j, layout=FM)
    return p, plan


for _name, _caches in [
    ("plain", []),
    ("X_at_ii", [("X", "ii", None, {})]),
    ("X_at_jj_trigger_j", [("X", "jj", "j", {})]),
    ("X_at_i_last_major", [("X", "i", None, {"layout": LM})]),
    ("X_double_buffer", [("X", "ii", None, {"double_buffer": True})]),
    ("X_thrifty", [("X", "jj", None, {"thrifty": True})]),
    ("Y_at_ii", [("Y", "ii", None, {})]),
    ("Y_at_j_and_X_budget", [("Y", "j", None, {}), ("X", None, None, {"max_elements": 10})]),
]:  # fmt: skip

    @case(f"stencil_{_name}")
    def _(caches=_caches):
        p = stencil(13, 11)
        s, plan, idx = tiled(p, {"i": 4, "j": 5}, "i j ii jj")
        for array, at, trigger, kw in caches:
            plan.cache(p.arrays[array], index=idx[at] if at else None,
                       trigger_index=idx[trigger] if trigger else None, **kw)  # fmt: skip
        return p, plan


@case("stencil_const_int32")
def _():
    p = stencil(9, 10, dtype=I32, x_const=True)
    s, plan, idx = tiled(p, {"i": 3, "j": 4}, "j i jj ii")
    plan.cache(p.arrays["X"], index=idx["jj"], trigger_index=idx["i"], double_buffer=True)
    plan.cache(p.arrays["Y"], index=idx["ii"])
    return p, plan


for _name, _caches in [
    ("plain", []),
    ("X_at_ii", [("X", "ii", None, {})]),
    ("X_at_r_trigger_i", [("X", "r", "i", {})]),
    ("X_double_buffer", [("X", "rr", None, {"double_buffer": True})]),
    ("W_and_Y", [("W", "r", None, {}), ("Y", "ii", None, {})]),
    ("budgets", [("X", None, None, {"max_elements": 4}), ("Y", None, None, {"max_elements": 1})]),
]:  # fmt: skip

    @case(f"conv1d_{_name}")
    def _(caches=_caches):
        p = conv1d(23, 5)
        s, plan, idx = tiled(p, {"i": 6, "r": 2}, "i r ii rr")
        for array, at, trigger, kw in caches:
            plan.cache(p.arrays[array], index=idx[at] if at else None,
                       trigger_index=idx[trigger] if trigger else None, **kw)  # fmt: skip
        return p, plan


@case("conv1d_stride2_const_w")
def _():
    p = conv1d(17, 4, stride=2, w_const=True)
    s, plan, idx = tiled(p, {"i": 5}, "i r ii")
    plan.cache(p.arrays["X"], index=idx["ii"], thrifty=True)  # stride 2: a 9+ wide box, kept
    plan.cache(p.arrays["W"], index=idx["r"], double_buffer=True)
    plan.cache(p.arrays["Y"], index=idx["r"])
    return p, plan


@case("flip_negative_coefficient")
def _():
    p = flip(7, 9, 4, layouts=(LM, FM))
    s, plan, idx = tiled(p, {"i": 3, "j": 4}, "i k j ii jj")
    XX = plan.cache(p.arrays["X"], index=idx["j"], trigger_index=idx["k"])
    plan.cache(XX, index=idx["jj"], thrifty=True)
    plan.cache(p.arrays["Y"], index=idx["ii"])
    return p, plan


@case("two_statements_temp")
def _():
    p = two_statements(7, 9, 5)
    s, plan, idx = tiled(p, {"i": 3, "k": 2}, "i j k ii kk")
    plan.cache(p.arrays["T"], index=idx["ii"])
    plan.cache(p.arrays["Y"], index=idx["k"])
    plan.cache(p.arrays["X"], index=idx["ii"], double_buffer=True)
    plan.cache(p.arrays["Z"], max_elements=2)
    return p, plan


@case("axpy_1d")
def _():
    p = axpy(29)
    s, plan, idx = tiled(p, {"i": 8})
    plan.cache(p.arrays["Y"], index=idx["ii"])
    plan.cache(p.arrays["X"], index=idx["ii"], double_buffer=True)
    plan.vectorize(idx["ii"])
    return p, plan


@case("axpy_1d_untiled_budget")
def _():
    p = axpy(7)
    plan = p.nest.create_plan()
    plan.cache(p.arrays["Y"], max_elements=3)
    plan.cache(p.arrays["X"], max_elements=100, thrifty=True)
    return p, plan


# element types

for _dtype in (I32, I64, F64):

    @case(f"gemm_{np.dtype(_dtype).name}_caches")
    def _(dtype=_dtype):
        p, plan, idx = gemm_plan(problem=gemm(*GEMM, dtype=dtype))
        plan.cache(p.arrays["A"], index=idx["ii"], trigger_index=idx["k"], double_buffer=True)
        plan.cache(p.arrays["B"], index=idx["kk"], layout=LM)
        plan.cache(p.arrays["C"], index=idx["ii"])
        plan.vectorize(idx["jj"])
        return p, plan

    @case(f"gemm_{np.dtype(_dtype).name}_budgets_read_write")
    def _(dtype=_dtype):
        p, plan, _ = gemm_plan(problem=gemm(*GEMM, dtype=dtype, sub=True, layouts=(LM, FM, FM)))
        plan.cache(p.arrays["A"], max_elements=3, thrifty=True)
        plan.cache(p.arrays["C"], max_elements=16)
        return p, plan


@case("conv1d_int64")
def _():
    p = conv1d(19, 6, dtype=I64)
    s, plan, idx = tiled(p, {"i": 4, "r": 4}, "r i rr ii")
    plan.cache(p.arrays["X"], index=idx["rr"], trigger_index=idx["i"])
    plan.cache(p.arrays["Y"], index=idx["i"])
    return p, plan


def test_one_array_cached_twice() -> None:
    """Accera accepts two independent caches of one array; this compiler may refuse the second
    (a ScheduleError, at the call or at build: "already cached"), but must not miscompile it."""
    p, plan, idx = gemm_plan()
    plan.cache(p.arrays["B"], index=idx["k"])
    try:
        plan.cache(p.arrays["B"], index=idx["jj"])
        run_and_compare(p, plan)
    except oi.OiError as e:
        assert "already cached" in e.message, e.message


def test_cache_level_is_snapshotted_before_a_reorder() -> None:
    """Accera resolves `level=` against the order when `plan.cache` is called (accera.md §1.5)."""
    p = gemm(*GEMM)
    s = p.nest.create_schedule()
    i, j, k = (p.index[n] for n in "ijk")
    ii, jj, kk = s.tile({i: 4, j: 4, k: 3})  # order i ii j jj k kk
    plan = s.create_plan()
    cache = plan.cache(p.arrays["A"], level=3)  # order[-3]: jj
    assert cache.index is jj
    s.reorder(i, j, k, ii, jj, kk)  # jj is now level 2; the cache stays at jj
    assert cache.index is jj
    run_and_compare(p, plan)


@pytest.mark.parametrize("cache_at", ["ii", "kk", "k"])
def test_padded_coefficient_layout(cache_at) -> None:
    """A with a coefficient layout (rows padded to K + 3): a view of a wider numpy array."""
    M, N, K = 9, 6, 7
    A = oi.Array(role=IN, shape=(M, K), layout=(K + 3, 1), name="A")
    B = oi.Array(role=IN, shape=(K, N), name="B")
    C = oi.Array(role=IO, shape=(M, N), name="C")
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    s = nest.create_schedule()
    ii, kk = s.tile({i: 4, k: 3})
    s.reorder(i, j, k, ii, kk)
    plan = s.create_plan()
    index = {"ii": ii, "kk": kk, "k": k}[cache_at]
    plan.cache(A, index=index, thrifty=True)
    plan.cache(B, index=kk, trigger_index=k, layout=LM)
    fn = plan.build(args=(A, B, C))
    rng = np.random.default_rng(3)
    wide = np.full((M + 2, K + 3), _sentinel(np.dtype(F32)), F32)
    a = wide[1 : M + 1, :K]
    a[...] = rng.standard_normal((M, K))
    before = wide.copy()
    b = rng.standard_normal((K, N)).astype(F32)
    c = rng.standard_normal((M, N)).astype(F32)
    expected = _f64(c) + _f64(a) @ _f64(b)
    fn(a, b, c)
    np.testing.assert_allclose(c, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))
    np.testing.assert_array_equal(wide, before)


@pytest.mark.parametrize("name", list(CASES))
def test_hand_written_plan_matches_numpy(name) -> None:
    problem, plan = CASES[name]()
    run_and_compare(problem, plan)


# --- the property --------------------------------------------------------------------------------

KINDS = {  # kind -> (nest rank, largest extent drawn)
    "gemm": (3, 20),
    "tgemm": (3, 20),
    "gemm_sub": (3, 20),
    "stencil": (2, 20),
    "conv1d": (2, 20),
    "sconv": (2, 20),
    "reduce3d": (3, 14),
    "bmm": (4, 7),
    "axpy": (1, 20),
    "flip": (3, 14),
    "two_statements": (3, 14),
}
DTYPES = (F32, F32, F32, F64, I32, I64)
MAX_SPLITS = int(os.environ.get("OI_DIFF_SPLITS", "3"))
BUDGETS = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 100, 1000, 10**6)


def make_problem(kind: str, dims: list[int], dtype, layouts: list[bool], const: bool, extra: int) -> Problem:
    lay = tuple(LM if flag else FM for flag in layouts)
    if kind in ("gemm", "tgemm", "gemm_sub"):
        return gemm(*dims, dtype=dtype, layouts=lay if not const else (lay[0], FM, lay[2]), b_const=const,
                    ta=kind == "tgemm", tb=kind == "tgemm", sub=kind == "gemm_sub")  # fmt: skip
    if kind == "stencil":
        return stencil(*dims, dtype=dtype, layouts=(FM if const else lay[0], lay[1]), extra=(extra, 2 - extra),
                       x_const=const)  # fmt: skip
    if kind in ("conv1d", "sconv"):
        return conv1d(*dims, dtype=dtype, stride=2 if kind == "sconv" else 1, extra=extra, w_const=const)
    if kind == "reduce3d":
        return reduce3d(*dims, dtype=dtype, layouts=lay if not const else (lay[0], FM, lay[2]), w_const=const)
    if kind == "bmm":
        return bmm(*dims, dtype=dtype, layouts=lay)
    if kind == "two_statements":
        return two_statements(*dims, dtype=dtype, layouts=(lay[0], lay[1]))
    if kind == "flip":
        return flip(*dims, dtype=dtype, layouts=(lay[0], lay[2]), extra=extra)
    return axpy(*dims, dtype=dtype, extra=extra)


@dataclass
class CacheDraw:
    source: int  # which array (or earlier cache, when `hierarchical`), modulo the choices
    hierarchical: bool
    where: str  # "index", "level" or "max_elements"
    position: int  # where in the order (index/level), modulo
    trigger: int | None  # how many loops further out the trigger is (None: no trigger)
    budget: int
    layout: oi.Layout | None
    thrifty: bool
    double_buffer: bool
    unchecked: bool  # keep a trigger/double_buffer/placement Accera rejects (tests the rejection)


cache_draws = st.builds(
    CacheDraw,
    source=st.integers(0, 63),
    hierarchical=st.integers(0, 2).map(lambda n: n == 0),
    where=st.sampled_from(["index", "index", "level", "max_elements"]),
    position=st.integers(0, 63),
    trigger=st.none() | st.integers(0, 4),
    budget=st.sampled_from(BUDGETS),
    layout=st.sampled_from([None, None, FM, LM]),
    thrifty=st.booleans(),
    double_buffer=st.integers(0, 2).map(lambda n: n == 0),
    unchecked=st.integers(0, 9).map(lambda n: n == 0),
)


@dataclass
class PlanDraw:
    kind: str
    dims: list[int]
    dtype: type
    layouts: list[bool]
    const: bool
    extra: int
    splits: list[tuple[int, int]]  # (which loop, size), modulo
    interleave: list[int] | None  # None: keep the order the splits give
    caches: list[CacheDraw]
    marks: list[tuple[int, str]]
    parallel: tuple[int, int] | None  # (how many outer loops, max_threads)


@st.composite
def plan_draws(draw) -> PlanDraw:
    kind = draw(st.sampled_from(sorted(KINDS)))
    rank, largest = KINDS[kind]
    return PlanDraw(
        kind=kind,
        dims=draw(st.lists(st.integers(1, largest), min_size=rank, max_size=rank)),
        dtype=draw(st.sampled_from(DTYPES)),
        layouts=draw(st.lists(st.booleans(), min_size=3, max_size=3)),
        const=draw(st.integers(0, 3)) == 0,
        extra=draw(st.integers(0, 2)),
        splits=draw(st.lists(st.tuples(st.integers(0, 63), st.integers(1, 22)), min_size=0, max_size=MAX_SPLITS)),
        interleave=draw(st.none() | st.lists(st.integers(0, 63), min_size=7, max_size=7)),
        caches=draw(st.lists(cache_draws, min_size=1, max_size=4)),
        marks=draw(st.lists(st.tuples(st.integers(0, 63), st.sampled_from(["unroll", "vectorize"])), max_size=3)),
        parallel=draw(st.none() | st.none() | st.tuples(st.integers(1, 2), st.integers(1, 3))),
    )


@dataclass
class Made:
    """A cache the test made: what Accera's rules need to know of it as an outer cache."""

    cache: object
    role: oi.Role
    level: int | None
    trigger_level: int | None
    max_elements: int | None


def accera_verdict(where, level, trigger_level, budget, double_buffer, has_trigger, role, outer: Made | None):
    """Accera's `Plan.cache` validation (accera.md §1.5) for the arguments the property passes:
    the message of the first rule broken, or None."""
    multicache = role in (IN, CONST)
    if double_buffer and not multicache:
        return "Double-buffering is only supported for CONST and INPUT arrays"
    if where != "max_elements":
        if has_trigger and not multicache:
            return "Multicaching is only supported for CONST and INPUT arrays"
        if level > trigger_level:
            return "Cache level must be less than or equal to the cache trigger level"
    if outer is not None:
        if (outer.max_elements is not None) != (where == "max_elements"):
            return "Can only create a max element hierarchical caches of other max element caches"
        if where == "max_elements":
            if outer.max_elements <= budget:
                return "Outer max element cache for a hierarchical cache must have a larger budget than the inner cache"
        else:
            if outer.level <= level:
                return "Outer cache for a hierarchical cache must have a higher cache level than inner cache"
            if outer.level < trigger_level:
                return ("Outer cache for a hierarchical cache must have a greater or equal cache level than the inner "
                        "cache's trigger_level")  # fmt: skip
    return None


def _boundary_loop(chain: list, pos: int, extent: int) -> bool:
    """Whether loop `chain[pos]` sometimes runs a partial tile (its parent's tiles do not all
    have a multiple of its step), i.e. unrolling or vectorizing it unswitches it."""
    if pos == 0:
        return False
    lengths = {extent}
    for _, step in chain[: pos - 1]:
        lengths = {min(r, step) for r in lengths} | {r % step for r in lengths if r > step and r % step}
    return any(r % chain[pos - 1][1] for r in lengths)


KNOWN_BUGS: dict[frozenset[str], str] = {}  # facts -> the xfail test pinning an open bug


def excluded_by_known_bugs(facts: set[str]) -> str | None:
    """Configurations a pinned bug (an xfail test at the end) gets wrong, left out of the property."""
    for needs, test in KNOWN_BUGS.items():
        if needs <= facts:
            return test
    return None


def apply_plan(d: PlanDraw, problem: Problem, facts: set[str]):
    """The schedule and plan `d` describes, made through the public API (`facts` collects what
    `excluded_by_known_bugs` needs)."""
    s = problem.nest.create_schedule()
    # our own model of the chains: per dimension, [name, step] outermost first
    chains = [[[name, 1]] for name in problem.index]
    loops = dict(problem.index)
    dim_of = {name: n for n, name in enumerate(problem.index)}
    for sel, raw in d.splits:
        order = [x.name for x in s.get_indices()]
        name = order[sel % len(order)]
        extent = problem.dims[dim_of[name]]
        size = 1 + (raw - 1) % (extent + 2)
        new = s.split(loops[name], size)
        chain = chains[dim_of[name]]
        pos = [c[0] for c in chain].index(name)
        old = chain[pos][1]
        chain[pos][1] = old * size
        chain.insert(pos + 1, [new.name, old])
        loops[new.name], dim_of[new.name] = new, dim_of[name]
        note(f"split({name}, {size}) -> {new.name}")
    if d.interleave is not None:
        pending = [[c[0] for c in chain] for chain in chains]
        order, n = [], 0
        while any(pending):
            live = [p for p in pending if p]
            choice = d.interleave[n % len(d.interleave)] + n // len(d.interleave)
            order.append(live[choice % len(live)].pop(0))
            n += 1
        s.reorder(*(loops[name] for name in order))
    order = [x.name for x in s.get_indices()]
    note(f"order {order}")
    plan = s.create_plan()
    made: list[Made] = []
    cached: set[int] = set()  # the sources (arrays or caches) cached so far
    for c in d.caches:
        # one cache per source (this compiler refuses a second one: test_one_array_cached_twice)
        outers = [m for m in made if id(m.cache) not in cached]
        arrays = [a for a in problem.arrays.values() if id(a) not in cached]
        outer = outers[c.source % len(outers)] if c.hierarchical and outers else None
        if outer is not None:
            source, role = outer.cache, outer.role
        elif arrays:
            source = arrays[c.source % len(arrays)]
            role = source.role
        else:
            continue
        multicache = role in (IN, CONST)
        where, kwargs = c.where, {}
        if outer is not None and not c.unchecked:  # mostly valid hierarchical requests
            where = "max_elements" if outer.max_elements is not None else ("level" if where == "level" else "index")
        level = trigger_level = budget = None
        has_trigger = c.trigger is not None and (multicache or c.unchecked)
        if where == "max_elements":
            budget = c.budget
            if outer is not None and not c.unchecked and budget >= outer.max_elements:
                budget = max(1, outer.max_elements // 2) if outer.max_elements > 1 else budget
            kwargs["max_elements"] = budget
        else:
            deepest = len(order) - 1
            if outer is not None and not c.unchecked:
                first = min(len(order) - outer.level + 1, deepest)  # strictly inside the outer cache's index
                pos = first + c.position % (deepest - first + 1)
            else:
                pos = c.position % len(order)
            level = len(order) - pos
            trigger_pos = pos
            if has_trigger:
                trigger_pos = pos - c.trigger if not c.unchecked else pos + 2 - c.trigger
                trigger_pos = min(max(trigger_pos, 0), len(order) - 1)
                if outer is not None and not c.unchecked:
                    trigger_pos = max(trigger_pos, len(order) - outer.level)
            trigger_level = len(order) - trigger_pos
            if where == "level":
                kwargs["level"] = level
                if has_trigger:
                    kwargs["trigger_level"] = trigger_level
            else:
                kwargs["index"] = loops[order[pos]]
                if has_trigger:
                    kwargs["trigger_index"] = loops[order[trigger_pos]]
        double_buffer = c.double_buffer and (multicache or c.unchecked)
        expected = accera_verdict(where, level, trigger_level, budget, double_buffer, has_trigger, role, outer)
        shown = {k: (v.name if isinstance(v, oi.LoopIndex) else v) for k, v in kwargs.items()}
        what = f"cache({getattr(source, 'name', None) or 'cache' + str(made.index(outer))}, {shown}, " \
               f"layout={c.layout}, thrifty={c.thrifty}, double_buffer={double_buffer})"  # fmt: skip
        try:
            cache = plan.cache(source, layout=c.layout, thrifty=c.thrifty, double_buffer=double_buffer, **kwargs)
        except oi.ScheduleError as e:
            note(f"{what} -> rejected: {e.message}")
            assert expected is not None, f"{what}: rejected ({e.message}) but Accera accepts it"
            assert e.message == expected
            event(f"rejected: {expected}")
            continue
        assert expected is None, f"{what}: accepted but Accera rejects it ({expected})"
        note(what)
        event(f"cache {where}{' hierarchical' if outer else ''}")
        for flag, on in [("trigger", has_trigger), ("double_buffer", double_buffer), ("thrifty", c.thrifty),
                         ("layout", c.layout is not None)]:  # fmt: skip
            if on:
                event(f"cache with {flag}")
        made.append(Made(cache, role, level, trigger_level, budget))
        cached.add(id(source))
        if double_buffer:
            facts.add("two double_buffers" if "double_buffer" in facts else "double_buffer")
    # unroll / vectorize loops with few iterations
    unrolled, total = set(), 1
    for sel, mark in d.marks:
        name = order[sel % len(order)]
        chain = chains[dim_of[name]]
        pos = [c[0] for c in chain].index(name)
        span = problem.dims[dim_of[name]] if pos == 0 else chain[pos - 1][1]
        trips = -(-span // chain[pos][1])
        if name in unrolled or trips > 8 or total * trips > 64:
            continue
        unrolled.add(name)
        total *= trips
        getattr(plan, mark)(loops[name])
        note(f"{mark}({name})")
        event(mark)
        if _boundary_loop(chain, pos, problem.dims[dim_of[name]]):
            facts.add("unswitched mark")
            event(f"{mark} of a boundary loop (unswitched)")
    # threads may only split a loop every written element depends on (parallelizing a reduction
    # is refused: tests/runtime/test_concurrency.py)
    stored = [{x.name for e in idx for x in e.terms} for _, idx, _ in problem.nest.logic]
    reduced = {dim_of[n] for n in problem.index if not all(n in names for names in stored)}
    if d.parallel is not None and dim_of[order[0]] not in reduced:
        count, threads = d.parallel
        outer_loops = list(itertools.takewhile(lambda n: dim_of[n] not in reduced, order[:count]))
        plan.parallelize([loops[n] for n in outer_loops], max_threads=threads)
        note(f"parallelize({outer_loops}, max_threads={threads})")
        event("parallelize")
    return plan


EXAMPLES = int(os.environ.get("OI_DIFF_EXAMPLES", "60"))


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize="OI_DIFF_EXAMPLES" not in os.environ,  # CI runs the same plans every time; more explore
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(plan_draws())
def test_random_plans_match_numpy(d: PlanDraw) -> None:
    problem = make_problem(d.kind, d.dims, d.dtype, d.layouts, d.const, d.extra)
    note(f"{d.kind}{tuple(d.dims)} {np.dtype(d.dtype).name} arrays {list(problem.arrays.values())}")
    event(f"kind {d.kind}")
    facts: set[str] = set()
    plan = apply_plan(d, problem, facts)
    if (why := excluded_by_known_bugs(facts)) is not None:
        event(f"excluded: {why}")
        return
    fn = run_and_compare(problem, plan, seed=sum(d.dims))
    lowered = str(fn.lowered)
    event(f"{lowered.count('oi.cache = ') - lowered.count('oi.double_buffer_temp')} cache buffers")
    if "oi.prefetch_swap" in lowered:
        event("double buffered")


def test_concurrent_calls_have_their_own_caches() -> None:
    """Accera's CPU caches are module globals (not thread-safe); here every call has its own."""
    from concurrent.futures import ThreadPoolExecutor

    p, plan, idx = gemm_plan(problem=gemm(24, 20, 16), tiles={"i": 4, "j": 8, "k": 4})
    plan.cache(p.arrays["A"], index=idx["ii"], double_buffer=True)
    plan.cache(p.arrays["B"], index=idx["k"], trigger_index=idx["j"])
    plan.cache(p.arrays["C"], index=idx["j"])
    plan.parallelize(idx["i"], max_threads=2)
    fn = run_and_compare(p, plan, calls=1)
    runs = [_inputs(p, seed) for seed in range(8)]
    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(fn, *(r[0][a.name] for a in p.params)) for r in runs]:
            future.result()
    for run in runs:
        _check(p, *run)


# --- bugs found by this file (regression tests once fixed; while open, an xfail(strict=True) test
# and an entry in KNOWN_BUGS, so the property leaves the configuration out) ----------------------


def _accumulate_rows(J: int, NB: int) -> tuple[Problem, object, oi.LoopIndex, oi.LoopIndex]:
    """Y[j] += X[j, b], b split by 2 (a boundary tile when NB is odd)."""
    X = oi.Array(role=IN, shape=(J, NB), name="X")
    Y = oi.Array(role=IO, shape=(J,), name="Y")
    nest = oi.Nest(shape=(J, NB))
    j, b = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[j] += X[j, b]

    problem = _problem(nest, [X, Y], lambda v: {"Y": _f64(v["Y"]) + _f64(v["X"]).sum(axis=1)}, (J, NB))
    s = nest.create_schedule()
    bb = s.split(b, 2)
    return problem, s.create_plan(), b, bb


@pytest.mark.parametrize("J", [1, 3])
@pytest.mark.parametrize("mark", ["unroll", "vectorize"])
def test_double_buffer_with_unswitched_loop(mark, J) -> None:
    """Found by the property (fixed in double_buffer.py): a double-buffered cache whose fill
    --cache split in two (the main and boundary copies of an unswitched unrolled/vectorized loop)
    was double-buffered once per copy: the second pass peeled the already peeled loop again (the
    last iteration computed from a never-filled temp; with J=1 it stored to Y[-1])."""
    problem, plan, b, bb = _accumulate_rows(J, 5)
    plan.cache(problem.arrays["X"], index=bb, trigger_index=b, double_buffer=True)
    getattr(plan, mark)(bb)
    run_and_compare(problem, plan)


@pytest.mark.parametrize("mark", ["unroll", "vectorize", None])
@pytest.mark.parametrize("double_buffer", [False, True])
def test_unswitched_loop_neighbours_of_the_double_buffer_bug(mark, double_buffer) -> None:
    """The neighbours of the plan above: without double_buffer, the mark, or a boundary tile."""
    for NB in (4, 5):
        problem, plan, b, bb = _accumulate_rows(3, NB)
        plan.cache(problem.arrays["X"], index=bb, trigger_index=b, double_buffer=double_buffer)
        if mark:
            getattr(plan, mark)(bb)
        run_and_compare(problem, plan)


def _row_sums(I: int, K: int, tiles: dict[str, int], order: str):
    """Y[i] += X[i, k], tiled: (problem, plan, indices by name)."""
    X = oi.Array(role=IN, shape=(I, K), name="X")
    Y = oi.Array(role=IO, shape=(I,), name="Y")
    nest = oi.Nest(shape=(I, K))
    i, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] += X[i, k]

    problem = _problem(nest, [X, Y], lambda v: {"Y": _f64(v["Y"]) + _f64(v["X"]).sum(axis=1)}, (I, K))
    _, plan, idx = tiled(problem, tiles, order)
    return problem, plan, idx


@pytest.mark.parametrize("budgets", [False, True], ids=["index", "max_elements"])
def test_double_buffer_reading_an_outer_cache(budgets) -> None:
    """Found by the property (fixed in double_buffer.py): an inner cache double-buffered at its
    outer cache's loop (trigger level == the outer's level, which Accera allows) prefilled and
    prefetched the next iteration of the loop around from the outer cache's buffer, which then
    held the current block only (or nothing yet)."""
    if budgets:  # both caches end up at kk (one element); the inner one double-buffered around k
        problem, plan, idx = _row_sums(2, 3, {"k": 1}, "i k kk")
        XX = plan.cache(problem.arrays["X"], max_elements=2)
        plan.cache(XX, max_elements=1, double_buffer=True)
    else:
        problem, plan, idx = _row_sums(4, 2, {"i": 2, "k": 2}, "i k ii kk")
        XX = plan.cache(problem.arrays["X"], index=idx["k"])  # rows [i, i+2), all columns
        plan.cache(XX, index=idx["kk"], trigger_index=idx["k"], double_buffer=True)  # prefetches rows i+2.. from XX
    run_and_compare(problem, plan)


def test_inner_cache_trigger_stays_inside_its_outer_cache() -> None:
    """Found by the property (fixed): the inner cache's trigger was hoisted past loops that do not
    index the outer buffer (XX[0, kk] does not depend on i), out of the outer cache's region, and
    its fill read XX before XX was filled."""
    problem, plan, idx = _row_sums(2, 2, {"k": 2}, "i k kk")
    XX = plan.cache(problem.arrays["X"], index=idx["k"])  # one row: indexed XX[0, kk]
    plan.cache(XX, index=idx["kk"], trigger_index=idx["k"])
    run_and_compare(problem, plan)


@pytest.mark.parametrize("budgets", [False, True], ids=["index", "max_elements"])
def test_neighbours_of_the_outer_cache_bugs(budgets) -> None:
    """The plans of the two tests above less what they need to fail: without double_buffer,
    and with the inner trigger inside the outer cache's region."""
    if budgets:
        problem, plan, _ = _row_sums(2, 3, {"k": 1}, "i k kk")
        XX = plan.cache(problem.arrays["X"], max_elements=2)
        plan.cache(XX, max_elements=1)
    else:
        problem, plan, idx = _row_sums(4, 2, {"i": 2, "k": 2}, "i k ii kk")
        XX = plan.cache(problem.arrays["X"], index=idx["k"])
        plan.cache(XX, index=idx["kk"], trigger_index=idx["k"])
    run_and_compare(problem, plan)
    problem, plan, idx = _row_sums(4, 5, {"i": 2, "k": 2}, "i k ii kk")
    XX = plan.cache(problem.arrays["X"], index=idx["k"])
    plan.cache(XX, index=idx["kk"], trigger_index=idx["ii"], double_buffer=True)
    run_and_compare(problem, plan)


@pytest.mark.parametrize("inner", ["jj", "ii"])
def test_double_buffer_inside_an_outer_cache(inner) -> None:
    """The neighbour of the bug above that works: the inner cache's trigger (and the loop
    around it) inside the outer cache's loop."""
    p, plan, idx = gemm_plan()
    BB = plan.cache(p.arrays["B"], index=idx["k"])
    plan.cache(BB, index=idx[inner], double_buffer=True)
    run_and_compare(p, plan)


@pytest.mark.parametrize("b_first", [False, True], ids=["A_first", "B_first"])
def test_double_buffered_trigger_of_a_double_buffered_cache(b_first) -> None:
    p = gemm(2, 1, 1)
    plan = p.nest.create_plan()  # order i j k
    caches = [(p.arrays["A"], p.index["j"]), (p.arrays["B"], p.index["k"])]
    for array, index in reversed(caches) if b_first else caches:
        plan.cache(array, index=index, double_buffer=True)
    run_and_compare(p, plan)


@pytest.mark.parametrize("double_buffered", ["A", "B"])
def test_neighbours_of_the_nested_double_buffer_bug(double_buffered) -> None:
    p = gemm(3, 2, 2)
    plan = p.nest.create_plan()
    plan.cache(p.arrays["A"], index=p.index["j"], double_buffer=double_buffered == "A")
    plan.cache(p.arrays["B"], index=p.index["k"], double_buffer=double_buffered == "B")
    run_and_compare(p, plan)
