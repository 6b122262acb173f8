"""Accera compatibility, found by porting Accera's own tests (hardening item 17; item 18's docstrings).

* the logic may write a `Role.INPUT` array, as Accera's tests do: accepted with an
  `AcceraCompatWarning` naming it, and the function writes the argument in place (its ABI says
  so); a multicache of it, which would lose the writes, is refused;
* `str(ScheduleError)` is the bare message, as Accera's `ValueError`; the location stays in `loc`
  and `repr`, and the tools' `file:line:col: error: message` lines are unchanged;
* a rule a call can check is checked by that call (`plan.cache`, `parallelize`, `bind`, `unroll`,
  `vectorize`, `kernelize`, and `split`/`tile`/`reorder` against the schedule's plans), and the
  message names arrays, caches and indices as the user named them, never `array19`/`A_cache0`;
* `unroll` and `vectorize` of one index: refused at the second call;
* numpy and math functions in the logic: a `ScheduleError` listing what the logic supports.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.errors import PassError, ScheduleError, SourceLoc
from oi_compiler.frontend import loopnest
from oi_compiler.frontend.loopnest import AcceraCompatWarning
from oi_compiler.graph import parse_mlir
from oi_compiler.passes import run_passes

pytestmark = pytest.mark.usefixtures("private_compile_cache")

ROOT = Path(__file__).resolve().parents[2]
IN, IO, CONST = oi.Role.INPUT, oi.Role.INPUT_OUTPUT, oi.Role.CONST
GPU = oi.Target(category=oi.Target.Category.GPU)
INTERNAL_NAME = re.compile(r"\barray\d+|_cache\d+")


def gemm(M=4, N=4, K=6):
    A = oi.Array(role=IN, shape=(M, K))
    B = oi.Array(role=IN, shape=(K, N))
    C = oi.Array(role=IO, shape=(M, N))
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    ii, jj, kk = schedule.tile({i: 2, j: 2, k: 3})
    schedule.reorder(i, j, k, ii, jj, kk)
    return A, B, C, nest, schedule, (i, j, k, ii, jj, kk)


def prefix_sums_of_an_input(N=12):
    """Accera's tests write INPUT arrays: X[i + 1] = X[i] + 1 over X (INPUT), in place."""
    X = oi.Array(role=IN, shape=(N,))
    nest = oi.Nest(shape=(N - 1,))
    i = nest.get_indices()
    with pytest.warns(AcceraCompatWarning) as record:

        @nest.iteration_logic
        def _():
            X[i + 1] = X[i] + 1.0

    return X, nest, i, record


# --- writing an INPUT array ---------------------------------------------------------------------


def test_writing_an_input_array_warns_and_writes_it_in_place() -> None:
    X, nest, i, record = prefix_sums_of_an_input()
    (warning,) = record
    assert issubclass(warning.category, UserWarning)
    assert str(warning.message).startswith("X is an INPUT array and the logic writes it")
    assert "in place" in str(warning.message) and "INPUT_OUTPUT" in str(warning.message)
    assert warning.filename == __file__  # points at the write in the user's logic
    schedule = nest.create_schedule()
    ii = schedule.split(i, 4)
    plan = schedule.create_plan()
    plan.cache(X, index=ii)
    fn = plan.build()
    x = np.zeros(12, np.float32)
    fn(x)
    np.testing.assert_array_equal(x, np.arange(12, dtype=np.float32))  # written in place
    (param,) = fn.compiled.abis["nest"].params
    assert param.name == "X" and param.written  # the ABI knows the argument is written
    read_only = np.zeros(12, np.float32)
    read_only.setflags(write=False)
    with pytest.raises(oi.ExecutionError, match="the function writes it but the array is read-only"):
        fn(read_only)


def test_writing_an_input_array_can_be_made_an_error() -> None:
    X = oi.Array(role=IN, shape=(4,))
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()
    with warnings.catch_warnings():
        warnings.simplefilter("error", AcceraCompatWarning)
        with pytest.raises(AcceraCompatWarning, match="X is an INPUT array"):

            @nest.iteration_logic
            def _():
                X[i] = X[i] * 2.0


def test_a_const_array_is_still_never_written() -> None:
    K = oi.Array(role=CONST, shape=(4,), data=np.zeros(4, np.float32))
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()
    with pytest.raises(ScheduleError, match="^K is a CONST array and cannot be written"):

        @nest.iteration_logic
        def _():
            K[i] = 1.0


def test_a_multicache_of_a_written_input_is_refused_at_the_call_and_in_ir() -> None:
    """Its copies would be filled once per trigger and miss the writes (it computed garbage)."""
    M, N = 8, 12
    X = oi.Array(role=IN, shape=(M, N))
    nest = oi.Nest(shape=(M, N - 1))
    i, j = nest.get_indices()
    with pytest.warns(AcceraCompatWarning):

        @nest.iteration_logic
        def _():
            X[i, j + 1] = X[i, j] + 1.0

    schedule = nest.create_schedule()
    ii, jj = schedule.tile({i: 4, j: 4})
    schedule.reorder(i, j, ii, jj)
    message = ("Multicaching is only supported for arrays the nest does not write: X is an INPUT array the logic "
               "writes (cache it without trigger_index or trigger_level)")  # fmt: skip
    plan = schedule.create_plan()
    with pytest.raises(ScheduleError) as info:
        plan.cache(X, index=ii, trigger_index=j)
    assert info.value.message == message
    plan.cache(X, index=ii)  # without a trigger it is right
    x = np.zeros((M, N), np.float32)
    plan.build()(x)
    np.testing.assert_array_equal(x, np.tile(np.arange(N, dtype=np.float32), (M, 1)))
    # the same request written into the IR by hand: --cache refuses it at the nest
    text = str(plan.module).replace('index = "ii"}', 'index = "ii", trigger_index = "j"}')
    with pytest.raises(PassError) as info:
        run_passes(parse_mlir(text, "edited.mlir"), "tile,cache")
    assert info.value.message == message and info.value.loc is not None


# --- str(ScheduleError) -------------------------------------------------------------------------


def test_str_of_a_schedule_error_is_the_bare_message() -> None:
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    with pytest.raises(ScheduleError, match=r"^Split sizes must be integers >= 1$") as info:
        schedule.split(i, 0)
    assert str(info.value) == "Split sizes must be integers >= 1" == info.value.message
    assert isinstance(info.value, ValueError)
    located = ScheduleError("Cache level must be greater than or equal to 1", SourceLoc("nest.mlir", 3, 5))
    assert str(located) == "Cache level must be greater than or equal to 1"
    assert located.loc == SourceLoc("nest.mlir", 3, 5)
    assert "nest.mlir:3:5" in repr(located) and "Cache level must be" in repr(located)
    assert repr(ScheduleError("bare")) == "ScheduleError('bare')"


def test_the_tools_still_print_file_line_col_error(tmp_path) -> None:
    """A rule broken in IR is a PassError at the nest (`file:line:col: error: message`), from the
    passes and from `--dump-stages`, which reads the plan before any pass runs."""
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    plan = schedule.create_plan()
    plan.cache(B, index=jj)
    text = str(plan.module)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "oi.nest " in t)
    bad = tmp_path / "bad.mlir"
    bad.write_text(text.replace('index = "jj"}', 'index = "jj", level = 2}'))
    one_of = "Specify one and only one of index, level, or max_elements"
    with pytest.raises(PassError) as info:
        run_passes(parse_mlir(bad.read_text(), "bad.mlir"), "tile,cache")
    assert str(info.value) == f"bad.mlir:{line}:5: error: {one_of}"
    proc = _oi_opt(bad, "--tile", "--cache")
    assert proc.returncode == 1 and proc.stderr == f"{bad}:{line}:5: error: {one_of}\n"
    malformed = tmp_path / "malformed.mlir"
    malformed.write_text(text.replace('index = "jj"}', 'index = "jj", odd = 1.5 : f32}'))
    proc = _oi_opt(malformed, "--dump-stages")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert re.fullmatch(rf"{re.escape(str(malformed))}:{line}:5: error: unexpected attribute 1.5\S* : f32 in a "
                        r"schedule or plan\n", proc.stderr), proc.stderr  # fmt: skip


def _oi_opt(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oi_compiler.tools.oi_opt", *map(str, argv)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, check=False)  # fmt: skip


# --- rules checked by the call that breaks them, in the user's names ----------------------------


def test_a_second_cache_of_an_array_is_refused_at_the_call() -> None:
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    plan = schedule.create_plan()
    AA = plan.cache(A, index=ii)
    with pytest.raises(ScheduleError) as info:
        plan.cache(A, index=k)
    assert info.value.message == ("A is already cached by AA: to cache it at another level, cache AA (a hierarchical "
                                  "cache)")  # fmt: skip
    plan.cache(B, index=jj)  # not assigned: no name of its own
    with pytest.raises(ScheduleError) as info:
        plan.cache(B, index=k)
    assert info.value.message == ("B is already cached by the cache of B at index jj: to cache it at another level, "
                                  "cache the Cache that call returned (a hierarchical cache)")  # fmt: skip
    assert len(plan.caches) == 2
    plan.cache(AA, index=jj)  # the way to cache A again
    check_gemm(plan, A, B, C)


def test_arrays_named_after_they_were_made_are_called_by_that_name() -> None:
    """No name at `oi.Array(...)` (a comprehension); the name the caller binds them to later is
    found when a message needs one (tests/loopnest/test_user_names.py: arrays with no name at all)."""
    X, Y = [oi.Array(role=role, shape=(8,)) for role in (IN, IO)]  # no name of their own
    nest = oi.Nest(shape=(8,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] += X[i]

    schedule = nest.create_schedule()
    ii = schedule.split(i, 4)
    plan = schedule.create_plan()
    plan.cache(X, index=ii)
    with pytest.raises(ScheduleError) as info:
        plan.cache(X, index=i)
    assert info.value.message.startswith("X is already cached by the cache of X at index ii")
    assert not INTERNAL_NAME.search(info.value.message)
    with pytest.raises(ScheduleError) as info:
        plan.parallelize(ii)
    assert not INTERNAL_NAME.search(info.value.message)
    x, y = np.arange(8, dtype=np.float32), np.ones(8, np.float32)
    plan.build()(x, y)
    np.testing.assert_array_equal(y, x + 1)


def test_arrays_made_in_a_comprehension_do_not_share_its_name() -> None:
    """`arrays = [oi.Array(...) for ...]` named every array `arrays`: the build then failed."""
    arrays = [oi.Array(role=role, shape=(4,)) for role in (IN, IO)]
    assert arrays[0].name != arrays[1].name and arrays[0].name != "arrays"
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        arrays[1][i] = arrays[0][i] * 3.0

    x, y = np.arange(4, dtype=np.float32), np.zeros(4, np.float32)
    nest.create_plan().build()(x, y)
    np.testing.assert_array_equal(y, 3 * x)


def test_parallelize_rules_are_checked_at_the_call() -> None:
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    plan = schedule.create_plan()
    with pytest.raises(ScheduleError) as info:
        plan.parallelize(j)  # order i, j, k, ...: only the outermost loops run in parallel
    assert info.value.message == ("parallelize: the cpu target runs only the outermost loops of the schedule in "
                                  "parallel (the order starts with 'i')")  # fmt: skip
    other = nest.create_schedule()
    other.reorder(k, i, j)
    plan = other.create_plan()
    with pytest.raises(ScheduleError) as info:
        plan.parallelize(k)
    assert info.value.message == ("parallelize: the logic reduces over k (every iteration of k updates the same "
                                  "elements of C): run by several threads at once, its chunks would race")  # fmt: skip
    assert plan.parallel is None
    with pytest.raises(ScheduleError, match="^parallelize needs at least one index$"):
        plan.parallelize([])


def test_a_reorder_or_split_that_breaks_a_plan_is_refused_and_changes_nothing() -> None:
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    plan = schedule.create_plan()
    plan.parallelize(i)
    with pytest.raises(ScheduleError) as info:
        schedule.reorder(j, i, k, ii, jj, kk)
    assert info.value.message == ("reorder would break a rule of a plan of this schedule: parallelize: the cpu "
                                  "target runs only the outermost loops of the schedule in parallel (the order "
                                  "starts with 'j')")  # fmt: skip
    assert [x.name for x in schedule.get_indices()] == ["i", "j", "k", "ii", "jj", "kk"]
    cached = schedule.create_plan()
    cached.cache(A, index=ii, trigger_index=k)
    with pytest.raises(ScheduleError) as info:
        schedule.reorder(i, j, ii, k, jj, kk)  # the trigger would be inside the cache's loop
    assert info.value.message == ("reorder would break a rule of a plan of this schedule: the cache of A at index "
                                  "ii: Cache level must be less than or equal to the cache trigger level")  # fmt: skip
    two = nest.create_schedule()
    plan = two.create_plan()
    plan.parallelize([i, j])
    with pytest.raises(ScheduleError, match="^split would break a rule .*: indices must be contiguous"):
        two.split(i, 2)  # i, i_, j: the parallel indices would not be contiguous
    assert [x.name for x in two.get_indices()] == ["i", "j", "k"]
    schedule.reorder(i, j, k, ii, kk, jj)  # breaks no rule: accepted
    check_gemm(cached, A, B, C)


def test_tile_is_all_or_nothing() -> None:
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    before = [x.name for x in schedule.get_indices()]
    with pytest.raises(ScheduleError, match="^Split sizes must be integers >= 1$"):
        schedule.tile({i: 2, j: 0})
    assert [x.name for x in schedule.get_indices()] == before


def test_cache_rules_of_this_compiler_are_checked_at_the_call() -> None:
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    plan = schedule.create_plan()
    D = oi.Array(role=IN, shape=(4, 4))
    with pytest.raises(ScheduleError, match="^D is not used by the nest's logic: there is nothing to cache$"):
        plan.cache(D, index=ii)
    AA = schedule.create_plan().cache(A, index=ii)
    with pytest.raises(ScheduleError, match="^AA is a cache of another plan"):
        plan.cache(AA, index=jj)
    assert plan.caches == []


def test_gpu_rules_are_checked_at_the_call() -> None:
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    U = GPU.GridUnit
    plan = schedule.create_plan(GPU)
    with pytest.raises(ScheduleError, match=r"^a SHARED cache of an array the nest writes \(C\)"):
        plan.cache(C, index=k, location=GPU.MemorySpace.SHARED)
    with pytest.raises(ScheduleError, match=r"^bind: the logic reduces over kk \(every iteration of kk updates the "
                                            r"same elements of C\)"):  # fmt: skip
        plan.bind({i: U.BLOCK_X, kk: U.THREAD_X})
    assert plan.bindings == {}  # all or nothing
    big = oi.Nest(shape=(64, 64))
    x, y = big.get_indices()
    Z = oi.Array(role=IO, shape=(64, 64))

    @big.iteration_logic
    def _():
        Z[x, y] += 1.0

    wide = big.create_plan(GPU)
    with pytest.raises(ScheduleError, match=r"^Invalid block size 64x64x1 = 4096 threads. Max threads per block: "
                                            r"1024$"):  # fmt: skip
        wide.bind({x: U.THREAD_X, y: U.THREAD_Y})
    T = oi.Array(role=oi.Role.TEMP, shape=(4,))
    temp_nest = oi.Nest(shape=(4,))
    t = temp_nest.get_indices()

    @temp_nest.iteration_logic
    def _():
        T[t] = 1.0

    with pytest.raises(ScheduleError, match="^TEMP arrays are not supported on GPU targets yet$"):
        temp_nest.create_plan(GPU)


def test_the_logic_indexes_only_by_the_nest_indices() -> None:
    X = oi.Array(role=IO, shape=(8,))
    nest = oi.Nest(shape=(8,))
    i = nest.get_indices()
    schedule = nest.create_schedule()
    ii = schedule.split(i, 4)
    with pytest.raises(ScheduleError, match=r"^the logic can index arrays only by the nest's indices \(i\), not ii$"):

        @nest.iteration_logic
        def _():
            X[ii] += 1.0


# --- unroll and vectorize ----------------------------------------------------------------------


def test_unroll_and_vectorize_of_one_index_is_refused_at_the_second_call() -> None:
    A, B, C, nest, schedule, (i, j, k, ii, jj, kk) = gemm()
    plan = schedule.create_plan()
    plan.unroll(kk)
    with pytest.raises(ScheduleError) as info:
        plan.vectorize(kk)
    assert info.value.message == "kk is already unrolled: an index can be unrolled or vectorized, not both"
    plan.vectorize(jj)
    with pytest.raises(ScheduleError) as info:
        plan.unroll(jj)
    assert info.value.message == "jj is already vectorized: an index can be unrolled or vectorized, not both"
    with pytest.raises(ScheduleError, match="^jj is already vectorized"):
        plan.kernelize(unroll_indices=[ii, jj])
    assert plan.unrolled == ["kk"] and plan.vectorized == ["jj"]  # kernelize marked nothing
    plan.unroll(kk)  # again: one mark
    assert plan.unrolled == ["kk"]
    check_gemm(plan, A, B, C)


# --- numpy and math in the logic ---------------------------------------------------------------


@pytest.mark.parametrize("logic", [
    lambda x: np.exp(x), lambda x: np.sin(x), lambda x: np.maximum(x, 0.0), lambda x: np.clip(x, 0.0, 1.0),
    lambda x: math.exp(x), lambda x: max(x, 0.0), lambda x: x ** 2, lambda x: np.where(x, 1.0, 0.0),
], ids=["np.exp", "np.sin", "np.maximum", "np.clip", "math.exp", "builtin max", "pow", "np.where"])  # fmt: skip
def test_unsupported_functions_in_the_logic_say_what_is_supported(logic) -> None:
    X = oi.Array(role=IN, shape=(4,))
    Y = oi.Array(role=IO, shape=(4,))
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()
    with pytest.raises(ScheduleError) as info:

        @nest.iteration_logic
        def _():
            Y[i] = logic(X[i])

    message = info.value.message
    assert "is not supported in @nest.iteration_logic" in message
    assert "+ - * /" in message and "oi_compiler.frontend.loopnest" in message
    for fn in ("max", "min", "abs", "exp", "log", "sqrt", "tanh"):
        assert re.search(rf"\b{fn}\b", message), fn
    assert nest.logic == []


def test_the_supported_functions_are_the_ones_the_logic_lowers() -> None:
    assert loopnest.LOGIC_FUNCTIONS == ("max", "min", "abs", "exp", "log", "sqrt", "tanh")
    for fn in loopnest.LOGIC_FUNCTIONS:
        assert callable(getattr(loopnest, fn))
    with pytest.raises(ScheduleError, match="^np.exp is not supported .*: use oi_compiler.frontend.loopnest.exp "
                                            "instead"):  # fmt: skip
        np.exp(oi.Array(role=IN, shape=(2,))[0])


def test_numpy_scalars_and_python_abs_still_work_in_the_logic() -> None:
    X = oi.Array(role=IN, shape=(4,))
    Y = oi.Array(role=IO, shape=(4,))
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] = np.float32(2.0) * abs(X[i]) + loopnest.exp(X[i] * np.float64(0.5)) - np.float32(1.0)

    x = np.array([-1.0, 0.0, 1.0, 2.0], np.float32)
    y = np.zeros(4, np.float32)
    nest.create_plan().build()(x, y)
    np.testing.assert_allclose(y, 2 * np.abs(x) + np.exp(x * 0.5) - 1, rtol=1e-6)


# --- docstrings (item 18) ---------------------------------------------------------------------


def test_the_classes_document_their_options() -> None:
    docs = {cls.__name__: cls.__doc__ or "" for cls in (oi.Array, oi.Nest, loopnest.Schedule, loopnest.Plan,
                                                         oi.Target)}  # fmt: skip
    for name in [r.name for r in oi.Role] + [t.name for t in oi.ScalarType] + ["FIRST_MAJOR", "LAST_MAJOR", "data",
                                                                                  "name", "AcceraCompatWarning"]:
        assert name in docs["Array"], name
    for name in ["get_indices", "iteration_logic", "create_schedule", "create_plan", *loopnest.LOGIC_FUNCTIONS]:
        assert name in docs["Nest"], name
    for name in ["split", "tile", "reorder", "is_valid_loop_order", "create_plan"]:
        assert name in docs["Schedule"], name
    for name in ["cache", "unroll", "vectorize", "kernelize", "parallelize", "bind", "build", "max_elements",
                 "trigger_index", "double_buffer", "location", "layout", "strategy"]:  # fmt: skip
        assert name in docs["Plan"], name
    for name in ["CPU", "GPU", "arch", "runtime", "max_threads_per_block", "GridUnit", "MemorySpace"]:
        assert name in docs["Target"], name


# --- helpers -----------------------------------------------------------------------------------


def check_gemm(plan, A, B, C) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal(A.shape).astype(np.float32)
    b = rng.standard_normal(B.shape).astype(np.float32)
    c = rng.standard_normal(C.shape).astype(np.float32)
    want = c + a @ b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan.build()(a, b, c)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)
