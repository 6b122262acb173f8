"""Edge cases of the loop-nest compiler (frontend/loopnest.py, loopnest/, passes/{tile,cache,
double_buffer,lower_nests}.py): caches of caches, double buffering around unswitched loops, budgets,
layouts, parallel chunks, write-only caches with holes, and what the iteration logic refuses. Each
is the minimal case of a bug once found (all fixed) or of behaviour nothing else covered.

Out-of-bounds accesses and reads of never-written cache elements do not always change a result, so
some tests run the lowered IR (what `plan.build()` hands the backend) in `_Interp`, a small
interpreter that checks every load and store against its memref's shape and flags loads of cache
elements nothing wrote.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings

import numpy as np
import pytest
from xdsl.dialects import affine, func, memref, scf
from xdsl.dialects.builtin import FloatAttr, IntegerAttr

import oi_compiler as oi
from oi_compiler.errors import PassError, ScheduleError
from oi_compiler.frontend.loopnest import AcceraCompatWarning
from oi_compiler.graph import parse_mlir
from oi_compiler.loopnest.attrs import to_py
from oi_compiler.pipeline import NEST_STAGES
from oi_compiler.frontend.loopnest_ir import plan_module
from oi_compiler.passes import run_passes

NESTS_PIPELINE = ",".join(stage.name for stage in NEST_STAGES[:-1])  # what plan.build() runs

pytestmark = pytest.mark.usefixtures("private_compile_cache")

IN, IO, TEMP = oi.Role.INPUT, oi.Role.INPUT_OUTPUT, oi.Role.TEMP
LM = oi.Layout.LAST_MAJOR


# --- a checking interpreter for the lowered IR -------------------------------------------------------


class OutOfBounds(AssertionError):
    pass


class _Buffer:
    def __init__(self, data: np.ndarray, shape, strides, name: str, scratch: bool):
        self.data, self.shape, self.strides, self.name = data, list(shape), list(strides), name
        self.written = np.zeros(data.size, bool) if scratch else None  # caches: which elements were stored

    def offset(self, index, what: str) -> int:
        for d, (x, n) in enumerate(zip(index, self.shape)):
            if not 0 <= x < n:
                raise OutOfBounds(f"{what} {self.name}{list(index)}: dimension {d} outside [0, {n})")
        return sum(x * s for x, s in zip(index, self.strides))


_BINARY = {
    "arith.addi": lambda a, b: a + b, "arith.subi": lambda a, b: a - b, "arith.muli": lambda a, b: a * b,
    "arith.floordivsi": lambda a, b: a // b, "arith.ceildivsi": lambda a, b: -(-a // b),
    "arith.remsi": lambda a, b: int(math.fmod(a, b)), "arith.minsi": min, "arith.maxsi": max,
    "arith.divsi": lambda a, b: int(a / b), "arith.addf": lambda a, b: a + b, "arith.subf": lambda a, b: a - b,
    "arith.mulf": lambda a, b: a * b, "arith.divf": lambda a, b: a / b, "arith.maximumf": max, "arith.minimumf": min,
}  # fmt: skip
_CMP = [lambda a, b: a == b, lambda a, b: a != b] + [lambda a, b: a < b, lambda a, b: a <= b,
                                                     lambda a, b: a > b, lambda a, b: a >= b] * 2  # fmt: skip


class _Interp:
    """Runs the plan's lowered function on numpy arrays (in place). Raises OutOfBounds at the first
    access outside its memref; `uninitialized` lists loads of cache elements nothing stored."""

    def __init__(self, plan, args=None):
        module = plan_module(plan, "nest", args)
        run_passes(module, NESTS_PIPELINE)
        self.globals = {}
        for op in module.ops:
            if isinstance(op, memref.GlobalOp):
                values = np.array(list(op.initial_value.get_values()))
                self.globals[op.sym_name.data] = _Buffer(values, op.type.get_shape(), _strides(op.type), "const", False)
        self.function = next(op for op in module.ops if isinstance(op, func.FuncOp))
        self.parallel = to_py(self.function.attributes.get("oi.parallel"))
        self.uninitialized: list[str] = []

    def __call__(self, *arrays: np.ndarray) -> None:
        block = self.function.body.blocks[0]
        env = {}
        for arg, a in zip(block.args, arrays):
            strides = _strides(arg.type)
            span = 1 + sum((n - 1) * s for n, s in zip(a.shape, strides))
            flat = np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(a.itemsize,))
            env[arg] = _Buffer(flat, a.shape, strides, arg.name_hint or "arg", False)
        if self.parallel:  # the chunks plan.build() would run, one after the other
            extent, step = self.parallel["extent"], self.parallel["step"]
            for lo in range(0, extent, 2 * step):
                env[block.args[len(arrays)]], env[block.args[len(arrays) + 1]] = lo, min(extent, lo + 2 * step)
                self._block(block, env)
        else:
            self._block(block, env)

    def _block(self, block, env) -> None:
        for op in block.ops:
            self._op(op, env)

    def _op(self, op, env) -> None:  # noqa: C901
        get = env.__getitem__
        if isinstance(op, (scf.YieldOp, func.ReturnOp, memref.DeallocOp)):
            return
        if isinstance(op, scf.ForOp):
            iv, x = op.body.block.args[0], get(op.lb)
            while x < get(op.ub):
                env[iv] = x
                self._block(op.body.block, env)
                x += get(op.step)
            return
        if isinstance(op, scf.IfOp):
            self._block((op.true_region if get(op.cond) else op.false_region).block, env)
            return
        name = op.name
        if name == "arith.constant":
            env[op.results[0]] = op.value.value.data if isinstance(op.value, (IntegerAttr, FloatAttr)) else op.value
        elif name in _BINARY:
            env[op.results[0]] = _BINARY[name](get(op.operands[0]), get(op.operands[1]))
        elif name == "arith.cmpi":
            env[op.results[0]] = _CMP[op.predicate.value.data](get(op.operands[0]), get(op.operands[1]))
        elif name in ("arith.negf", "math.absf", "math.absi", "math.exp", "math.log", "math.sqrt", "math.tanh"):
            fn = {"arith.negf": lambda v: -v, "math.absf": abs, "math.absi": abs, "math.exp": math.exp,
                  "math.log": math.log, "math.sqrt": math.sqrt, "math.tanh": math.tanh}[name]  # fmt: skip
            env[op.results[0]] = fn(get(op.operands[0]))
        elif isinstance(op, (affine.ApplyOp, affine.MinOp)):
            values = op.map.data.eval([get(v) for v in op.operands], [])
            env[op.results[0]] = min(values)
        elif isinstance(op, (memref.AllocOp, memref.AllocaOp)):
            ty = op.memref.type
            data = np.zeros(math.prod(ty.get_shape()), _dtype(ty.element_type))
            env[op.memref] = _Buffer(data, ty.get_shape(), _strides(ty), op.memref.name_hint or "alloc", True)
        elif isinstance(op, memref.GetGlobalOp):
            env[op.memref] = self.globals[op.name_.root_reference.data]
        elif isinstance(op, memref.ReinterpretCastOp):
            src, ty = get(op.source), op.result.type
            view = _Buffer(src.data, ty.get_shape(), _strides(ty), op.result.name_hint or src.name, False)
            view.written = src.written
            env[op.result] = view
        elif isinstance(op, memref.LoadOp):
            buf = get(op.memref)
            at = buf.offset([get(i) for i in op.indices], "load")
            if buf.written is not None and not buf.written[at]:
                self.uninitialized.append(f"{buf.name}{[get(i) for i in op.indices]}")
            env[op.res] = buf.data[at].item()
        elif isinstance(op, memref.StoreOp):
            buf = get(op.memref)
            at = buf.offset([get(i) for i in op.indices], "store")
            buf.data[at] = get(op.value)
            if buf.written is not None:
                buf.written[at] = True
        elif isinstance(op, memref.CopyOp):
            src, dst = get(op.source), get(op.destination)
            for index in itertools.product(*(range(n) for n in src.shape)):
                s, d = src.offset(index, "copy from"), dst.offset(index, "copy to")
                dst.data[d] = src.data[s]
                if dst.written is not None:
                    dst.written[d] = src.written is None or src.written[s]
        else:
            raise NotImplementedError(name)


def _strides(ty) -> list[int]:
    return [int(s) for s in ty.get_strides()]


def _dtype(element) -> type:
    return {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}[str(element)]


# --- problems ----------------------------------------------------------------------------------------


def _gemm(M, N, K, a_layout=oi.Layout.FIRST_MAJOR):
    A = oi.Array(role=IN, shape=(M, K), name="A", layout=a_layout)
    B = oi.Array(role=IN, shape=(K, N), name="B")
    C = oi.Array(role=IO, shape=(M, N), name="C")
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    return nest, (A, B, C), (i, j, k)


def _gemm_data(M, N, K, seed=0, a_layout=oi.Layout.FIRST_MAJOR):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float32)
    a = np.asfortranarray(a) if a_layout is LM else a
    b = rng.standard_normal((K, N)).astype(np.float32)
    c = rng.standard_normal((M, N)).astype(np.float32)
    return a, b, c, c + a.astype(np.float64) @ b


def _build(plan):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "double_buffer ... single-buffered"
        return plan.build()


def _check_gemm(plan, M, N, K, a_layout=oi.Layout.FIRST_MAJOR) -> None:
    a, b, c, want = _gemm_data(M, N, K, a_layout=a_layout)
    _build(plan)(a, b, c)
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-4)


def _reduce3d(I, J, K):
    """Y[i, j] += X[i, k, j] * W[k, j]."""
    X = oi.Array(role=IN, shape=(I, K, J), name="X")
    W = oi.Array(role=IN, shape=(K, J), name="W")
    Y = oi.Array(role=IO, shape=(I, J), name="Y")
    nest = oi.Nest(shape=(I, J, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i, j] += X[i, k, j] * W[k, j]

    return nest, (X, W, Y), (i, j, k)


def _cache_sites(plan, passes="tile,cache") -> dict[str, tuple[str, str]]:
    """name -> (cache index, trigger index) of each cache buffer after `passes`."""
    module = plan.module
    run_passes(module, passes)
    found = re.findall(r'oi.cache = "(\w+)", oi.source = "\w+", oi.index = "(\w+)", oi.trigger_index = "(\w+)"',
                       str(module))  # fmt: skip
    return {name: (index, trigger) for name, index, trigger in found}


# --- double buffering ----------------------------------------------------------------------------------


def test_two_double_buffered_caches_under_one_loop_with_a_one_iteration_tile() -> None:
    I, J, K = 3, 5, 4
    nest, (X, W, Y), (i, j, k) = _reduce3d(I, J, K)
    s = nest.create_schedule()
    jj = s.split(j, 4)
    s.reorder(i, j, jj, k)
    plan = s.create_plan()
    plan.cache(X, index=k, double_buffer=True)  # both triggers are k: P = jj for both
    plan.cache(W, index=k, double_buffer=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((I, K, J)).astype(np.float32)
    w = rng.standard_normal((K, J)).astype(np.float32)
    y = rng.standard_normal((I, J)).astype(np.float32)
    want = y + np.einsum("ikj,kj->ij", x, w)
    _build(plan)(x, w, y)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def test_double_buffered_multicache_with_an_unswitched_loop_inside_the_trigger() -> None:
    M, N, K = 2, 8, 7  # kk's last tile is short, so the unrolled kk is unswitched right inside k
    nest, (A, B, C), (i, j, k) = _gemm(M, N, K)
    s = nest.create_schedule()
    jj, kk = s.tile({j: 4, k: 3})
    s.reorder(i, j, jj, k, kk)
    plan = s.create_plan()
    plan.cache(B, index=kk, trigger_index=k, double_buffer=True)
    plan.unroll(kk)
    _check_gemm(plan, M, N, K)


@pytest.mark.parametrize("outer_double_buffer", [False, True])
def test_double_buffered_cache_of_a_cache_filled_in_the_same_loop(outer_double_buffer) -> None:
    M, N, K = 8, 8, 12
    nest, (A, B, C), (i, j, k) = _gemm(M, N, K)
    s = nest.create_schedule()
    ii, jj, kk = s.tile({i: 4, j: 4, k: 4})
    s.reorder(i, j, k, ii, jj, kk)
    plan = s.create_plan()
    AA = plan.cache(A, index=ii, double_buffer=outer_double_buffer)
    plan.cache(AA, index=kk, trigger_index=ii, double_buffer=True)
    _check_gemm(plan, M, N, K)


# --- hierarchical caches ---------------------------------------------------------------------------


def test_cache_of_a_cache_stays_inside_the_outer_cache() -> None:
    M, N, K = 6, 5, 4
    nest, (A, B, C), (i, j, k) = _gemm(M, N, K)
    s = nest.create_schedule()
    ii = s.split(i, 3)
    s.reorder(k, j, i, ii)
    plan = s.create_plan()
    c = plan.cache(A, index=i)  # hoisted to j: the block of all rows of column k
    plan.cache(c, index=ii, trigger_index=i)
    _check_gemm(plan, M, N, K)


def test_budget_cache_of_a_budget_cache_reads_only_what_the_outer_cache_holds() -> None:
    M, N, K = 9, 11, 7
    nest, (A, B, C), (i, j, k) = _gemm(M, N, K)
    s = nest.create_schedule()
    ii, jj, kk = s.tile({i: 4, j: 4, k: 3})
    s.reorder(i, j, k, ii, jj, kk)
    plan = s.create_plan()
    c0 = plan.cache(C, max_elements=3)  # at kk (jj's block has 4 elements)
    plan.cache(c0, max_elements=1)
    a, b, c, want = _gemm_data(M, N, K)
    run = _Interp(plan)
    run(a, b, c)
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-4)
    assert run.uninitialized == []


# --- the same array cached twice ---------------------------------------------------------------------


def test_an_array_cached_twice_is_refused() -> None:
    """A second cache of the same array would see the first one's copy loops as accesses (its
    block then reached past the array's end); caching the cache is the way to cache again."""
    N = 6
    X = oi.Array(role=IN, shape=(N + 1,), name="X")
    Y = oi.Array(role=IO, shape=(N,), name="Y")
    nest = oi.Nest(shape=(N,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] = 2 * Y[i] + X[i + 1]

    s = nest.create_schedule()
    ii = s.split(i, 3)
    plan = s.create_plan()
    plan.cache(Y, index=ii)
    # Accera accepts it; this compiler refuses it when plan.cache is called (and `--cache` on IR
    # that has both: tests/loopnest/test_accera_compat.py)
    with pytest.raises(ScheduleError, match="Y is already cached by the cache of Y at index ii: to cache it at "
                                            "another level, cache the Cache that call returned"):  # fmt: skip
        plan.cache(Y, index=i)
    assert len(plan.caches) == 1


# --- data movement -----------------------------------------------------------------------------------


def test_plain_store_then_accumulate_to_the_same_element() -> None:
    M, N = 5, 6
    X = oi.Array(role=IN, shape=(M, N), name="X")
    Y = oi.Array(role=IO, shape=(M, N), name="Y")
    nest = oi.Nest(shape=(M, N))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i, j] = X[i, j]
        Y[i, j] += 1.0

    s = nest.create_schedule()
    jj = s.split(j, 3)
    plan = s.create_plan()
    plan.cache(Y, index=jj)
    x = np.arange(M * N, dtype=np.float32).reshape(M, N)
    y = np.full((M, N), 100.0, np.float32)
    plan.build()(x, y)
    np.testing.assert_array_equal(y, x + 1)


def test_plain_store_then_accumulate_without_a_cache() -> None:
    """The same logic uncached: the reference point for the test above."""
    X = oi.Array(role=IN, shape=(3, 4), name="X")
    Y = oi.Array(role=IO, shape=(3, 4), name="Y")
    nest = oi.Nest(shape=(3, 4))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i, j] = X[i, j]
        Y[i, j] += 1.0

    x, y = np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros((3, 4), np.float32)
    nest.create_plan().build()(x, y)
    np.testing.assert_array_equal(y, x + 1)


def test_writing_an_input_array_is_computed_correctly() -> None:
    """Accera lets the logic write an INPUT array; so does this compiler, with a warning, and the
    function writes it in place (a double buffer of it falls back to single buffering)."""
    N = 12
    X = oi.Array(role=IN, shape=(N,), name="X")
    nest = oi.Nest(shape=(N - 1,))
    i = nest.get_indices()
    with pytest.warns(AcceraCompatWarning, match="X is an INPUT array and the logic writes it"):

        @nest.iteration_logic
        def _():
            X[i + 1] = X[i] + 1.0

    s = nest.create_schedule()
    ii = s.split(i, 4)
    plan = s.create_plan()
    plan.cache(X, index=ii, double_buffer=True)
    x = np.zeros(N, np.float32)
    _build(plan)(x)
    np.testing.assert_array_equal(x, np.arange(N, dtype=np.float32))


# --- arrays --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [LM, (8, 1)], ids=["last_major", "padded_rows"])
def test_temp_array_with_a_layout(layout) -> None:
    M, N = 4, 5
    X = oi.Array(role=IN, shape=(M, N), name="X")
    T = oi.Array(role=TEMP, shape=(M, N), name="T", layout=layout)
    Y = oi.Array(role=IO, shape=(M, N), name="Y")
    nest = oi.Nest(shape=(M, N))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        T[i, j] = X[i, j] * 2.0
        Y[i, j] = T[i, j] + 1.0

    x, y = np.arange(M * N, dtype=np.float32).reshape(M, N), np.zeros((M, N), np.float32)
    nest.create_plan().build()(x, y)
    np.testing.assert_array_equal(y, 2 * x + 1)


# --- hand-written IR ------------------------------------------------------------------------------------


def _plain_module_text() -> str:
    nest, (A, B, C), (i, j, k) = _gemm(6, 5, 4)
    text = str(nest.create_plan().module)
    assert re.search(r"\{oi\.schedule = .*\}$", text, re.M)
    return text


@pytest.mark.parametrize("attributes", [
    "oi.schedule = {splits = 3}",
    'oi.schedule = {}, oi.plan = {caches = [1]}',
    'oi.schedule = {}, oi.plan = {caches = [{name = "X", source = "A", max_elements = "4"}]}',
    'oi.schedule = {}, oi.plan = {parallelize = ["i"]}',
], ids=["splits-not-a-list", "cache-not-a-dict", "budget-a-string", "parallelize-a-list"])  # fmt: skip
def test_ill_typed_schedule_or_plan_attributes_are_diagnosed(attributes) -> None:
    text = re.sub(r"\{oi\.schedule = .*\}$", "{" + attributes + "}", _plain_module_text(), flags=re.M)
    module = parse_mlir(text, "typo.mlir")
    with pytest.raises(PassError):
        run_passes(module, NESTS_PIPELINE)


# --- correct and important, previously untested ----------------------------------------------------------


def test_reversed_and_mixed_indices_with_padded_strides_stay_in_bounds() -> None:
    """Negative coefficients (`Y[N-1-i]`, `X[.. - r]`), an index mixing two loops, a padded strided
    source, boundary tiles and a double-buffered multicache: right values and every access inside
    its array."""
    N, R = 11, 4
    X = oi.Array(role=IN, shape=(N + R - 1, 2), name="X", layout=(3, 1))  # rows padded to 3
    W = oi.Array(role=IN, shape=(R,), name="W")
    Y = oi.Array(role=IO, shape=(N,), name="Y")
    nest = oi.Nest(shape=(N, R))
    i, r = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[N - 1 - i] += X[i + R - 1 - r, 1] * W[r]

    s = nest.create_schedule()
    ii, rr = s.tile({i: 4, r: 3})
    s.reorder(i, r, ii, rr)
    plan = s.create_plan()
    plan.cache(X, index=rr, trigger_index=r, double_buffer=True)
    plan.cache(Y, index=ii)
    module = plan.module
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # really double-buffered, not the single-buffered fallback
        run_passes(module, NESTS_PIPELINE)
    assert "oi.prefetch_swap" in str(module)
    rng = np.random.default_rng(3)
    big = np.full((N + R - 1) * 3, np.nan, np.float32)
    x = np.lib.stride_tricks.as_strided(big, shape=(N + R - 1, 2), strides=(12, 4))
    x[...] = rng.standard_normal((N + R - 1, 2)).astype(np.float32)
    w = rng.standard_normal(R).astype(np.float32)
    y = rng.standard_normal(N).astype(np.float32)
    want = y.astype(np.float64).copy()
    for n in range(N):
        want[N - 1 - n] += sum(float(x[n + R - 1 - a, 1]) * float(w[a]) for a in range(R))
    y_interp = y.copy()
    run = _Interp(plan)
    run(x, w, y_interp)
    assert run.uninitialized == []
    np.testing.assert_allclose(y_interp, want, rtol=1e-5, atol=1e-5)
    _build(plan)(x, w, y)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_parallel_chunks_with_caches_at_the_outermost_loop_stay_in_bounds() -> None:
    """The outermost loop parallelized and cached at (its range is [%lo, %hi)), int32 elements,
    a multicache triggered at the parallel loop: every chunk stays inside the arrays."""
    M, N, K = 10, 6, 5
    A = oi.Array(role=IN, shape=(M, K), name="A", element_type=oi.ScalarType.int32)
    B = oi.Array(role=IN, shape=(K, N), name="B", element_type=oi.ScalarType.int32)
    C = oi.Array(role=IO, shape=(M, N), name="C", element_type=oi.ScalarType.int32)
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    s = nest.create_schedule()
    ii, kk = s.tile({i: 3, k: 2})
    s.reorder(i, j, k, ii, kk)
    plan = s.create_plan()
    plan.cache(C, index=i)
    plan.cache(A, index=ii, trigger_index=i)
    plan.parallelize(i, max_threads=3)
    rng = np.random.default_rng(4)
    a = rng.integers(-5, 5, (M, K)).astype(np.int32)
    b = rng.integers(-5, 5, (K, N)).astype(np.int32)
    c = rng.integers(-5, 5, (M, N)).astype(np.int32)
    want = c + a @ b
    c_interp = c.copy()
    run = _Interp(plan)
    run(a, b, c_interp)
    assert run.uninitialized == []
    np.testing.assert_array_equal(c_interp, want)
    plan.build()(a, b, c)
    np.testing.assert_array_equal(c, want)


def test_hierarchical_cache_of_a_thrifty_elided_cache_reads_the_source() -> None:
    """The outer cache is elided (a 4x3 block of a 3-column row-major A is contiguous); the inner
    cache then caches A itself, double-buffered."""
    M, N, K = 9, 10, 3
    nest, (A, B, C), (i, j, k) = _gemm(M, N, K)
    s = nest.create_schedule()
    ii, jj, kk = s.tile({i: 4, j: 4, k: 3})
    s.reorder(i, j, k, ii, jj, kk)
    plan = s.create_plan()
    AA = plan.cache(A, index=ii, thrifty=True)
    plan.cache(AA, index=kk, trigger_index=jj, double_buffer=True)
    sites = _cache_sites(plan)
    assert "AA" not in sites and len(sites) == 1
    _check_gemm(plan, M, N, K)


# --- cases of the iteration logic and caches found by use -------------------------------------------


def test_write_only_cache_with_holes_keeps_the_unwritten_elements() -> None:
    """`B[2*i] = A[i]` cached at ii: the block has holes (odd elements), so zero-fill + copy-out
    would zero what the nest never writes; the block is copied in first instead."""
    A = oi.Array(role=oi.Role.INPUT, shape=(8,), name="A")
    B = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(16,), name="B")
    nest = oi.Nest(shape=(8,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        B[2 * i] = A[i]

    schedule = nest.create_schedule()
    ii = schedule.split(i, 4)
    plan = schedule.create_plan()
    plan.cache(B, index=ii)
    assert 'oi.movement = "read_write"' in str(_lowered_cache_ir(plan))
    a = np.arange(8, dtype=np.float32)
    b = np.full(16, -1.0, np.float32)
    plan.build()(a, b)
    expected = np.full(16, -1.0, np.float32)
    expected[::2] = a
    np.testing.assert_array_equal(b, expected)


def test_dense_write_only_cache_zero_fills() -> None:
    """A store that covers its block keeps Accera's zero fill + copy out (no copy in)."""
    A = oi.Array(role=oi.Role.INPUT, shape=(8, 8), name="A")
    B = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(8, 8), name="B")
    nest = oi.Nest(shape=(8, 8))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        B[j, i] = A[i, j] * 2.0

    schedule = nest.create_schedule()
    ii, jj = schedule.tile({i: 4, j: 4})
    schedule.reorder(i, j, ii, jj)
    plan = schedule.create_plan()
    plan.cache(B, index=ii)
    assert 'oi.movement = "write"' in str(_lowered_cache_ir(plan))
    a = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    b = np.zeros((8, 8), np.float32)
    plan.build()(a, b)
    np.testing.assert_array_equal(b, (a * 2).T)


def _lowered_cache_ir(plan):
    from oi_compiler.passes import run_passes

    module = plan.module
    run_passes(module, "tile,cache")
    return module


def test_fractional_constant_in_integer_logic_is_refused() -> None:
    """`X[i] * 2.5` in int32 logic computed `X[i] * 2` (the constant truncated silently)."""
    X = oi.Array(role=oi.Role.INPUT, shape=(4,), element_type=oi.ScalarType.int32, name="X")
    Y = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(4,), element_type=oi.ScalarType.int32, name="Y")
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] = X[i] * 2.5

    with pytest.raises(oi.ScheduleError, match="the constant 2.5 in i32 logic is not an integer"):
        nest.create_plan().module


def test_an_access_outside_its_array_is_a_schedule_error_from_python() -> None:
    """The bounds check ran only in --tile, so Python callers got a PassError with no location."""
    X = oi.Array(role=oi.Role.INPUT, shape=(10,), name="X")
    Y = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(10,), name="Y")
    nest = oi.Nest(shape=(10,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] = X[i + 1]

    with pytest.raises(oi.ScheduleError, match=r"an access of X reaches \[1, 10\] in dimension 0, outside \[0, 9\]"):
        nest.create_plan().build()
