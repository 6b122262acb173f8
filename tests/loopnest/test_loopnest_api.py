"""The Accera-style loop-nest API (oi.Array / oi.Nest / Schedule / Plan / Cache).

* `plan.cache`: every rule of Accera's `Plan.cache` (../shared/reference/accera.md §1.5) the cpu
  target can reach, with Accera's exact message, and Accera's evaluation order when a request
  breaks two rules at once;
* the schedule rules (split / reorder / parallelize / kernelize), `tile` order, level snapshots
  and the `Cache` fields;
* the IR route: `plan.module` text through `run_passes` or `oi-opt --tile --cache
  --double-buffer --lower-nests` gives exactly the module `plan.build()` compiled;
* rule violations found in IR (hand-edited `oi.plan`) as one-line `file:line:col` diagnostics;
* names read from assignments, and `build()` arguments (count, `args=` order, TEMP, CONST).

Shapes are tiny so each `plan.build()` stays well under a second.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.graph import parse_mlir
from oi_compiler.ir_context import make_context
from oi_compiler.passes import run_passes

pytestmark = pytest.mark.usefixtures("private_compile_cache")

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = "tile,cache,double-buffer,lower-nests"
PIPELINE_FLAGS = ["--tile", "--cache", "--double-buffer", "--lower-nests"]

MS = oi.MemorySpace
DB_ONLY_INPUT = "Double-buffering is only supported for CONST and INPUT arrays"
ONE_OF = "Specify one and only one of index, level, or max_elements"
BUDGET = "Max element count specified as a cache budget must be greater than 0"
DB_LOCATION = "double_buffer_location is only valid to specify when double_buffer is set to True"
CPU_STRATEGY = "Only AUTO strategy is supported on the CPU"
DB_TENSOR = "Double buffering is not supported with Tensor caching"
SHARED_OFFSET = "_shared_memory_offset can only be set with shared memory"
INDEX_AND_LEVEL = "Can't specify both a cache index and a cache level or trigger level"
LEVEL_AND_INDEX = "Can't specify both a cache level and a cache index or trigger index"
MULTICACHE = "Multicaching is only supported for CONST and INPUT arrays"
LEVEL_LE_TRIGGER = "Cache level must be less than or equal to the cache trigger level"
LEVEL_GE_1 = "Cache level must be greater than or equal to 1"
TRIGGER_GE_1 = "Cache trigger level must be greater than or equal to 1"
H_MIXED = "Can only create a max element hierarchical caches of other max element caches"
H_BUDGET = "Outer max element cache for a hierarchical cache must have a larger budget than the inner cache"
H_LEVEL = "Outer cache for a hierarchical cache must have a higher cache level than inner cache"
H_TRIGGER = ("Outer cache for a hierarchical cache must have a greater or equal cache level than the inner "
             "cache's trigger_level")  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def gemm(M=4, N=4, K=6, tiles=(2, 2, 3), reorder=True):
    """C[i, j] += A[i, k] * B[k, j], tiled, ordered i, j, k, ii, jj, kk (levels 6..1)."""
    A = oi.Array(role=oi.Role.INPUT, shape=(M, K))
    B = oi.Array(role=oi.Role.INPUT, shape=(K, N))
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(M, N))
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    ii, jj, kk = schedule.tile({i: tiles[0], j: tiles[1], k: tiles[2]})
    if reorder:
        schedule.reorder(i, j, k, ii, jj, kk)
    plan = schedule.create_plan()
    return SimpleNamespace(A=A, B=B, C=C, nest=nest, i=i, j=j, k=k, ii=ii, jj=jj, kk=kk,
                           schedule=schedule, plan=plan, M=M, N=N, K=K)  # fmt: skip


def gemm_data(g, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((g.M, g.K)).astype(np.float32)
    b = rng.standard_normal((g.K, g.N)).astype(np.float32)
    c = rng.standard_normal((g.M, g.N)).astype(np.float32)
    return a, b, c


def check_gemm(g, fn, seed=0):
    a, b, c = gemm_data(g, seed)
    expected = c.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
    fn(a, b, c)
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5)


@contextmanager
def raises_exactly(message):
    """A ScheduleError (an OiError and a ValueError) whose message is exactly `message`."""
    with pytest.raises(oi.ScheduleError) as info:
        yield info
    assert isinstance(info.value, oi.OiError) and isinstance(info.value, ValueError)
    assert info.value.message == message


def oi_opt_command() -> list[str]:
    script = Path(sys.executable).with_name("oi-opt")
    if script.exists():
        return [str(script)]
    found = shutil.which("oi-opt")
    return [found] if found else [sys.executable, "-m", "oi_compiler.tools.oi_opt"]


def run_oi_opt(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([*oi_opt_command(), *map(str, argv)], capture_output=True, text=True, timeout=120, cwd=ROOT)


def nest_position(text: str) -> tuple[int, int]:
    """Line and column (from 1) of the `oi.nest` op (custom or generic form) in printed module text."""
    for n, line in enumerate(text.splitlines(), 1):
        if (m := re.search(r'"oi\.nest"|\boi\.nest ', line)) is not None:
            return n, m.start() + 1
    raise AssertionError("no oi.nest in the text")


# ----------------------------------------------------------------------------- plan.cache: one test per rule

# (id, call, message). Schedule order is i, j, k, ii, jj, kk: level 1 = kk, 2 = jj, 3 = ii,
# 4 = k, 5 = j, 6 = i. A and B are INPUT, C is INPUT_OUTPUT.
CACHE_RULES = [
    # 1. exactly one of index / level / max_elements
    ("r1-index-and-level", lambda g: g.plan.cache(g.B, index=g.jj, level=2), ONE_OF),
    ("r1-index-and-max_elements", lambda g: g.plan.cache(g.B, index=g.jj, max_elements=8), ONE_OF),
    ("r1-level-and-max_elements", lambda g: g.plan.cache(g.B, level=2, max_elements=8), ONE_OF),
    ("r1-none", lambda g: g.plan.cache(g.B), ONE_OF),
    ("r1-all-three", lambda g: g.plan.cache(g.B, index=g.jj, level=2, max_elements=8), ONE_OF),
    # 2. a budget is > 0
    ("r2-max_elements-0", lambda g: g.plan.cache(g.B, max_elements=0), BUDGET),
    ("r2-max_elements-negative", lambda g: g.plan.cache(g.B, max_elements=-3), BUDGET),
    # 3. double buffering only for CONST / INPUT
    ("r3-double_buffer-input_output", lambda g: g.plan.cache(g.C, index=g.jj, double_buffer=True), DB_ONLY_INPUT),
    # 4. double_buffer_location only with double_buffer
    ("r4-db_location-without-db", lambda g: g.plan.cache(g.B, index=g.jj, double_buffer_location=MS.NONE),
     DB_LOCATION),
    ("r4-db_location-db-false",
     lambda g: g.plan.cache(g.B, index=g.jj, double_buffer=False, double_buffer_location=MS.GLOBAL), DB_LOCATION),
    # (5. GLOBAL caches on GPU targets: not reachable on the cpu target)
    # 6. only AUTO strategy on the cpu
    ("r6-blocked", lambda g: g.plan.cache(g.B, index=g.jj, strategy=oi.CacheStrategy.BLOCKED), CPU_STRATEGY),
    ("r6-striped", lambda g: g.plan.cache(g.B, index=g.jj, strategy=oi.CacheStrategy.STRIPED), CPU_STRATEGY),
    # 7. no double buffering of MMA_FRAGMENT caches
    ("r7-db-mma_fragment",
     lambda g: g.plan.cache(g.B, index=g.jj, double_buffer=True, location=MS.MMA_FRAGMENT), DB_TENSOR),
    # 8. _shared_memory_offset only with SHARED
    ("r8-shared-offset-none", lambda g: g.plan.cache(g.B, index=g.jj, _shared_memory_offset=0), SHARED_OFFSET),
    ("r8-shared-offset-global",
     lambda g: g.plan.cache(g.B, index=g.jj, location=MS.GLOBAL, _shared_memory_offset=16), SHARED_OFFSET),
    # 9. index with trigger_level (index with level is rule 1)
    ("r9-index-trigger_level", lambda g: g.plan.cache(g.B, index=g.jj, trigger_level=4), INDEX_AND_LEVEL),
    # 10. level with trigger_index
    ("r10-level-trigger_index", lambda g: g.plan.cache(g.B, level=2, trigger_index=g.k), LEVEL_AND_INDEX),
    # 11. multicaching (a trigger) only for CONST / INPUT, even when the trigger is the index itself
    ("r11-trigger_index-input_output", lambda g: g.plan.cache(g.C, index=g.jj, trigger_index=g.k), MULTICACHE),
    ("r11-trigger_index-is-index", lambda g: g.plan.cache(g.C, index=g.jj, trigger_index=g.jj), MULTICACHE),
    ("r11-trigger_level-input_output", lambda g: g.plan.cache(g.C, level=2, trigger_level=4), MULTICACHE),
    # 13. level <= trigger level
    ("r13-level-above-trigger_level", lambda g: g.plan.cache(g.B, level=4, trigger_level=2), LEVEL_LE_TRIGGER),
    ("r13-trigger_index-inside-index", lambda g: g.plan.cache(g.B, index=g.k, trigger_index=g.jj), LEVEL_LE_TRIGGER),
    # 14. level >= 1 (level=0: Accera itself fails with `None is not in list`; the message is rule 14's)
    ("r14-level-0", lambda g: g.plan.cache(g.B, level=0), LEVEL_GE_1),
    ("r14-level-negative", lambda g: g.plan.cache(g.B, level=-2), LEVEL_GE_1),
    # 16-20: hierarchical caches (the source is a Cache returned by plan.cache)
    ("r17-level-cache-of-budget-cache",
     lambda g: g.plan.cache(g.plan.cache(g.A, max_elements=64), index=g.ii), H_MIXED),
    ("r17-budget-cache-of-level-cache",
     lambda g: g.plan.cache(g.plan.cache(g.A, index=g.k), max_elements=8), H_MIXED),
    ("r18-equal-budgets", lambda g: g.plan.cache(g.plan.cache(g.A, max_elements=16), max_elements=16), H_BUDGET),
    ("r18-larger-inner-budget",
     lambda g: g.plan.cache(g.plan.cache(g.A, max_elements=16), max_elements=32), H_BUDGET),
    ("r19-equal-levels", lambda g: g.plan.cache(g.plan.cache(g.A, index=g.ii), index=g.ii), H_LEVEL),
    ("r19-inner-level-higher", lambda g: g.plan.cache(g.plan.cache(g.A, index=g.ii), level=4), H_LEVEL),
    ("r20-inner-trigger-above-outer",
     lambda g: g.plan.cache(g.plan.cache(g.A, index=g.ii), index=g.jj, trigger_index=g.k), H_TRIGGER),
    ("r20-inner-trigger_level-above-outer",
     lambda g: g.plan.cache(g.plan.cache(g.A, level=3), level=2, trigger_level=4), H_TRIGGER),
]


@pytest.mark.parametrize(("call", "message"), [c[1:] for c in CACHE_RULES], ids=[c[0] for c in CACHE_RULES])
def test_cache_rule_message(call, message) -> None:
    g = gemm()
    with raises_exactly(message):
        call(g)


def test_cache_errors_leave_no_cache_behind() -> None:
    g = gemm()
    with pytest.raises(oi.ScheduleError):
        g.plan.cache(g.C, index=g.jj, double_buffer=True)
    assert g.plan.caches == []
    assert "oi.plan" not in str(g.plan.module)


# (id, call, message): two (or more) rules broken at once, the first in Accera's order wins
CACHE_RULE_ORDER = [
    ("1-before-3: index+level+double_buffer on INPUT_OUTPUT",
     lambda g: g.plan.cache(g.C, index=g.jj, level=2, double_buffer=True), ONE_OF),
    ("1-before-3: nothing+double_buffer on INPUT_OUTPUT", lambda g: g.plan.cache(g.C, double_buffer=True), ONE_OF),
    ("1-before-6: index+level+BLOCKED",
     lambda g: g.plan.cache(g.B, index=g.jj, level=2, strategy=oi.CacheStrategy.BLOCKED), ONE_OF),
    ("2-before-3: max_elements=0+double_buffer on INPUT_OUTPUT",
     lambda g: g.plan.cache(g.C, max_elements=0, double_buffer=True), BUDGET),
    ("2-before-6: max_elements<0+BLOCKED",
     lambda g: g.plan.cache(g.B, max_elements=-1, strategy=oi.CacheStrategy.BLOCKED), BUDGET),
    ("3-before-6: double_buffer on INPUT_OUTPUT+BLOCKED",
     lambda g: g.plan.cache(g.C, index=g.jj, double_buffer=True, strategy=oi.CacheStrategy.BLOCKED), DB_ONLY_INPUT),
    ("3-before-7: double_buffer on INPUT_OUTPUT+MMA_FRAGMENT",
     lambda g: g.plan.cache(g.C, index=g.jj, double_buffer=True, location=MS.MMA_FRAGMENT), DB_ONLY_INPUT),
    ("3-before-11: double_buffer+trigger on INPUT_OUTPUT",
     lambda g: g.plan.cache(g.C, index=g.jj, trigger_index=g.k, double_buffer=True), DB_ONLY_INPUT),
    ("4-before-6: db_location without db+BLOCKED",
     lambda g: g.plan.cache(g.B, index=g.jj, double_buffer_location=MS.PRIVATE,
                            strategy=oi.CacheStrategy.BLOCKED), DB_LOCATION),  # fmt: skip
    ("4-before-8: db_location without db+shared offset",
     lambda g: g.plan.cache(g.B, index=g.jj, double_buffer_location=MS.PRIVATE, _shared_memory_offset=0),
     DB_LOCATION),
    ("6-before-7: BLOCKED+double_buffer MMA_FRAGMENT",
     lambda g: g.plan.cache(g.B, index=g.jj, double_buffer=True, location=MS.MMA_FRAGMENT,
                            strategy=oi.CacheStrategy.BLOCKED), CPU_STRATEGY),  # fmt: skip
    ("6-before-14: BLOCKED+level=0", lambda g: g.plan.cache(g.B, level=0, strategy=oi.CacheStrategy.BLOCKED),
     CPU_STRATEGY),
    ("7-before-8: double_buffer MMA_FRAGMENT+shared offset",
     lambda g: g.plan.cache(g.B, index=g.jj, double_buffer=True, location=MS.MMA_FRAGMENT, _shared_memory_offset=0),
     DB_TENSOR),
    ("8-before-9: shared offset+index+trigger_level",
     lambda g: g.plan.cache(g.B, index=g.jj, trigger_level=4, _shared_memory_offset=0), SHARED_OFFSET),
    ("9-before-11: index+trigger_level on INPUT_OUTPUT",
     lambda g: g.plan.cache(g.C, index=g.jj, trigger_level=4), INDEX_AND_LEVEL),
    ("10-before-11: level+trigger_index on INPUT_OUTPUT",
     lambda g: g.plan.cache(g.C, level=2, trigger_index=g.k), LEVEL_AND_INDEX),
    ("11-before-13: level>trigger_level on INPUT_OUTPUT",
     lambda g: g.plan.cache(g.C, level=4, trigger_level=2), MULTICACHE),
    ("11-before-13: trigger_index inside index on INPUT_OUTPUT",
     lambda g: g.plan.cache(g.C, index=g.k, trigger_index=g.jj), MULTICACHE),
    ("2-before-17: budget 0 of a level cache",
     lambda g: g.plan.cache(g.plan.cache(g.A, index=g.k), max_elements=0), BUDGET),
    ("1-before-17: hierarchical with nothing", lambda g: g.plan.cache(g.plan.cache(g.A, max_elements=8)), ONE_OF),
    ("3-before-19: double_buffer of a cache of an INPUT_OUTPUT array (role of the base array)",
     lambda g: g.plan.cache(g.plan.cache(g.C, index=g.ii), index=g.ii, double_buffer=True), DB_ONLY_INPUT),
    ("11-before-20: trigger on a cache of an INPUT_OUTPUT array",
     lambda g: g.plan.cache(g.plan.cache(g.C, index=g.ii), index=g.jj, trigger_index=g.k), MULTICACHE),
    ("13-before-19: level>trigger_level of a cache",
     lambda g: g.plan.cache(g.plan.cache(g.A, index=g.ii), level=4, trigger_level=3), LEVEL_LE_TRIGGER),
    ("14-before-19: level=0 of a cache", lambda g: g.plan.cache(g.plan.cache(g.A, index=g.ii), level=0), LEVEL_GE_1),
    ("19-before-20: same level, higher trigger",
     lambda g: g.plan.cache(g.plan.cache(g.A, index=g.ii), index=g.ii, trigger_index=g.k), H_LEVEL),
]


@pytest.mark.parametrize(("call", "message"), [c[1:] for c in CACHE_RULE_ORDER], ids=[c[0] for c in CACHE_RULE_ORDER])
def test_cache_rule_order(call, message) -> None:
    g = gemm()
    with raises_exactly(message):
        call(g)


def test_cache_rule_order_negative_level_with_trigger_on_input_output() -> None:
    g = gemm()
    with raises_exactly(MULTICACHE):
        g.plan.cache(g.C, level=-1, trigger_level=2)


def test_cache_trigger_level_0_is_rejected() -> None:
    g = gemm()
    with pytest.raises(oi.ScheduleError):
        g.plan.cache(g.B, level=1, trigger_level=0)
    assert g.plan.caches == []


@pytest.mark.parametrize("trigger_level", [0, -1])
def test_cache_rule_order_trigger_level_not_positive(trigger_level) -> None:
    g = gemm()
    with raises_exactly(LEVEL_LE_TRIGGER):
        g.plan.cache(g.B, level=1, trigger_level=trigger_level)


def test_cache_max_elements_skips_the_level_rules() -> None:
    """With a budget Accera checks none of rules 9-15 (they sit under `if max_elements is None`)."""
    g = gemm()
    cache = g.plan.cache(g.C, max_elements=16, trigger_index=g.k)
    assert cache.max_elements == 16 and cache.index is None


def test_valid_caches_raise_nothing() -> None:
    """Requests Accera's rules accept. Two plans: this compiler caches an array once per plan (a
    second `plan.cache` of it is refused at the call: tests/loopnest/test_accera_compat.py)."""
    g = gemm()
    g.plan.cache(g.A, index=g.ii, trigger_index=g.k)  # multicache of an INPUT
    g.plan.cache(g.B, level=2, trigger_level=4, double_buffer=True, double_buffer_location=MS.NONE)
    g.plan.cache(g.C, index=g.jj, location=MS.GLOBAL, strategy=oi.CacheStrategy.AUTO)
    assert len(g.plan.caches) == 3
    plan = g.schedule.create_plan()
    outer = plan.cache(g.A, index=g.k)
    plan.cache(outer, index=g.ii, trigger_index=g.k)  # trigger level == outer level
    budget = plan.cache(g.B, max_elements=64)
    plan.cache(budget, max_elements=8)
    assert len(plan.caches) == 4


# ----------------------------------------------------------------------------- schedule rules


@pytest.mark.parametrize("size", [0, -2, 2.5, "4", None])
def test_split_size_rule(size) -> None:
    g = gemm(reorder=False)
    with raises_exactly("Split sizes must be integers >= 1"):
        g.schedule.split(g.i, size)
    with raises_exactly("Split sizes must be integers >= 1"):
        g.schedule.tile({g.j: 2, g.k: size})


def test_reorder_wrong_count() -> None:
    g = gemm()
    with raises_exactly("Expected 6 indices, but got 3 indices instead"):
        g.schedule.reorder(g.i, g.j, g.k)
    with raises_exactly("Expected 6 indices, but got 7 indices instead"):
        g.schedule.reorder([g.i, g.j, g.k, g.ii, g.jj, g.kk, g.kk])


def test_reorder_inner_before_outer() -> None:
    g = gemm()
    with raises_exactly("An inner dimension must not be ordered before its outer dimension"):
        g.schedule.reorder(g.ii, g.i, g.j, g.k, g.jj, g.kk)
    with raises_exactly("An inner dimension must not be ordered before its outer dimension"):
        g.schedule.reorder([g.i, g.j, g.kk, g.ii, g.jj, g.k])
    assert [x.name for x in g.schedule.get_indices()] == ["i", "j", "k", "ii", "jj", "kk"]  # unchanged
    assert not g.schedule.is_valid_loop_order([g.ii, g.i, g.j, g.k, g.jj, g.kk])
    assert g.schedule.is_valid_loop_order([g.j, g.i, g.ii, g.k, g.kk, g.jj])


def test_parallelize_rules() -> None:
    g = gemm()
    for indices in ([g.i, g.k], [g.j, g.i], [g.ii, g.kk]):  # order is i, j, k, ii, jj, kk
        with raises_exactly("indices must be contiguous in the Schedule dimension order"):
            g.plan.parallelize(indices)
    for max_threads in (0, -1):
        with raises_exactly("max_threads must be a positive (greater than 0) integer."):
            g.plan.parallelize([g.i, g.j], max_threads=max_threads)
    g.plan.parallelize([g.i, g.j], max_threads=2)
    assert g.plan.parallel["indices"] == ["i", "j"]


def test_kernelize_overlap() -> None:
    g = gemm()
    with raises_exactly("vectorize_indices cannot be one of the unroll indices"):
        g.plan.kernelize(unroll_indices=[g.ii, g.jj], vectorize_indices=g.jj)
    assert g.plan.unrolled == [] and g.plan.vectorized == []
    g.plan.kernelize(unroll_indices=[g.ii], vectorize_indices=g.kk)
    assert g.plan.unrolled == ["ii"] and g.plan.vectorized == ["kk"]


def test_tile_returns_inner_indices_in_dict_order_each_after_its_parent() -> None:
    nest = oi.Nest(shape=(8, 8, 8))
    i, j, k = nest.get_indices()
    schedule = nest.create_schedule()
    kk, ii = schedule.tile({k: 4, i: 2})
    assert (kk.name, ii.name) == ("kk", "ii")
    assert [x.name for x in schedule.get_indices()] == ["i", "ii", "j", "k", "kk"]

    g = gemm(reorder=False)
    assert [x.name for x in (g.ii, g.jj, g.kk)] == ["ii", "jj", "kk"]
    assert list(g.schedule.get_indices()) == [g.i, g.ii, g.j, g.jj, g.k, g.kk]


def test_split_puts_the_new_index_right_after_its_parent() -> None:
    nest = oi.Nest(shape=(16, 4))
    i, j = nest.get_indices()
    schedule = nest.create_schedule()
    ii = schedule.split(i, 8)
    iii = schedule.split(i, 2)  # splits the outer loop again: the new loop sits between i and ii
    assert [x.name for x in schedule.get_indices()] == ["i", "iii", "ii", "j"]
    assert (ii.name, iii.name) == ("ii", "iii")


def test_level_is_a_snapshot_of_the_order() -> None:
    g = gemm()
    cache = g.plan.cache(g.B, level=2)
    assert cache.index is g.jj and cache.level == 2
    assert cache.trigger_index is g.jj and cache.trigger_level == 2
    assert cache.max_elements is None
    g.schedule.reorder(g.i, g.j, g.k, g.ii, g.kk, g.jj)  # level 2 is now kk
    assert cache.index is g.jj and cache.level == 2
    later = g.plan.cache(g.A, level=2)
    assert later.index is g.kk
    text = str(g.plan.module)
    assert '{name = "cache", source = "B", index = "jj"}' in text
    assert '{name = "later", source = "A", index = "kk"}' in text


def test_cache_fields() -> None:
    g = gemm()
    multi = g.plan.cache(g.A, index=g.ii, trigger_index=g.k)
    assert multi.index is g.ii and multi.level == 3
    assert multi.trigger_index is g.k and multi.trigger_level == 4
    assert multi.max_elements is None
    by_level = g.plan.cache(g.B, level=1, trigger_level=5)
    assert by_level.index is g.kk and by_level.trigger_index is g.j
    assert (by_level.level, by_level.trigger_level) == (1, 5)
    budget = g.plan.cache(g.C, max_elements=12)
    assert budget.max_elements == 12 and budget.index is None and budget.trigger_index is None
    db = g.schedule.create_plan().cache(g.B, index=g.jj, double_buffer=True, layout=oi.Layout.LAST_MAJOR,
                                        thrifty=True)  # B's second cache: another plan (one per array)
    assert db.double_buffer is True and db.thrifty is True


# ----------------------------------------------------------------------------- the IR route gives the same code


def cached_gemm():
    g = gemm(M=4, N=6, K=6, tiles=(2, 3, 3))
    g.plan.cache(g.B, index=g.jj, layout=oi.Array.Layout.LAST_MAJOR, double_buffer=True)
    g.plan.cache(g.A, index=g.ii, trigger_index=g.k)
    g.plan.cache(g.C, level=2)
    return g


@pytest.fixture(scope="module")
def built_cached_gemm(tmp_path_factory):
    import os

    saved = os.environ.get("OI_CACHE_DIR")
    os.environ["OI_CACHE_DIR"] = str(tmp_path_factory.mktemp("jit"))
    try:
        g = cached_gemm()
        text = str(g.plan.module)
        fn = g.plan.build()
    finally:
        if saved is None:
            os.environ.pop("OI_CACHE_DIR", None)
        else:
            os.environ["OI_CACHE_DIR"] = saved
    return g, text, fn


def test_plan_module_records_schedule_and_plan(built_cached_gemm) -> None:
    g, text, fn = built_cached_gemm
    assert 'oi.schedule = {splits = [["i", "ii", 2 : i64], ["j", "jj", 3 : i64], ["k", "kk", 3 : i64]]' in text
    assert 'order = ["i", "j", "k", "ii", "jj", "kk"]' in text
    assert 'layout = "last_major", double_buffer = true' in text
    assert 'trigger_index = "k"' in text
    lowered = str(fn.lowered)
    assert "oi.nest" not in lowered and "oi.double_buffer_temp" in lowered and "memref<2x2x3xf32>" in lowered


def test_parsed_module_through_passes_prints_what_build_compiled(built_cached_gemm) -> None:
    g, text, fn = built_cached_gemm
    expected = str(fn.lowered)
    parsed = parse_mlir(text, "gemm.mlir")
    run_passes(parsed, PIPELINE)
    assert str(parsed) == expected

    from xdsl.parser import Parser

    module = Parser(make_context(), text).parse_module()
    run_passes(module, PIPELINE, make_context())
    assert str(module) == expected


def test_oi_opt_on_plan_module_prints_what_build_compiled(built_cached_gemm, tmp_path) -> None:
    g, text, fn = built_cached_gemm
    path = tmp_path / "gemm.mlir"
    path.write_text(text)
    proc = run_oi_opt(path, *PIPELINE_FLAGS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n") == str(fn.lowered).rstrip("\n")


def test_cached_gemm_single_caches_compute_gemm() -> None:
    for request in (
        lambda g: g.plan.cache(g.B, index=g.jj, layout=oi.Layout.LAST_MAJOR, double_buffer=True),
        lambda g: g.plan.cache(g.A, index=g.ii, trigger_index=g.k),
        lambda g: g.plan.cache(g.C, level=2),
    ):
        g = gemm(M=4, N=6, K=6, tiles=(2, 3, 3))
        request(g)
        check_gemm(g, g.plan.build())


def test_cached_gemm_computes_gemm(built_cached_gemm) -> None:
    g, text, fn = built_cached_gemm
    check_gemm(g, fn)


B_DOUBLE_BUFFERED = lambda g: g.plan.cache(g.B, index=g.jj, double_buffer=True)  # noqa: E731
A_AT_II = lambda g: g.plan.cache(g.A, index=g.ii)  # noqa: E731
A_MULTICACHE = lambda g: g.plan.cache(g.A, index=g.ii, trigger_index=g.k)  # noqa: E731


@pytest.mark.parametrize(
    "requests",
    [
        pytest.param([A_AT_II, B_DOUBLE_BUFFERED], id="A-then-double-buffered-B"),
        pytest.param([A_MULTICACHE, B_DOUBLE_BUFFERED], id="A-multicache-then-double-buffered-B"),
        pytest.param([B_DOUBLE_BUFFERED, A_AT_II], id="double-buffered-B-then-A"),
        pytest.param([B_DOUBLE_BUFFERED, A_MULTICACHE], id="double-buffered-B-then-A-multicache"),
    ],
)
def test_double_buffer_with_another_cache_computes_gemm(requests) -> None:
    g = gemm(M=4, N=6, K=6, tiles=(2, 3, 3))
    for request in requests:
        request(g)
    check_gemm(g, g.plan.build())


@pytest.mark.parametrize(
    "request_caches",
    [
        pytest.param(lambda g: g.plan.cache(g.plan.cache(g.A, index=g.k), index=g.ii), id="level-of-level"),
        pytest.param(lambda g: g.plan.cache(g.plan.cache(g.B, index=g.k), index=g.jj, layout=oi.Layout.LAST_MAJOR),
                     id="last-major-of-level"),
        pytest.param(lambda g: g.plan.cache(g.plan.cache(g.B, max_elements=24), max_elements=4), id="budgets"),
    ],
)
def test_hierarchical_caches_compute_gemm(request_caches) -> None:
    g = gemm(M=4, N=6, K=6, tiles=(2, 3, 3))
    request_caches(g)
    check_gemm(g, g.plan.build())


# ----------------------------------------------------------------------------- errors found in IR


def plain_cached_gemm_text() -> str:
    g = gemm()
    g.plan.cache(g.B, index=g.jj)
    return str(g.plan.module)


def test_oi_opt_reports_a_bad_cache_request_at_the_nest(tmp_path) -> None:
    text = plain_cached_gemm_text()
    assert 'index = "jj"}' in text
    bad = text.replace('index = "jj"}', 'index = "jj", level = 2}')
    path = tmp_path / "bad.mlir"
    path.write_text(bad)
    line, col = nest_position(bad)
    proc = run_oi_opt(path, "--tile", "--cache")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr == f"{path}:{line}:{col}: error: {ONE_OF}\n"
    assert proc.stdout == ""


def test_oi_opt_cache_needs_tile(tmp_path) -> None:
    path = tmp_path / "gemm.mlir"
    text = plain_cached_gemm_text()
    path.write_text(text)
    line, col = nest_position(text)
    proc = run_oi_opt(path, "--cache")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr == f"{path}:{line}:{col}: error: --cache needs the nest scheduled: run --tile first\n"


IR_EDITS = [
    ("index-and-level", ('index = "jj"}', 'index = "jj", level = 2}'), ONE_OF),
    ("valid-C-cache", ('source = "B"', 'source = "C"'), None),
    ("double-buffer-on-C", ('source = "B", index = "jj"}', 'source = "C", index = "jj", double_buffer = true}'),
     DB_ONLY_INPUT),
    ("strategy", ('index = "jj"}', 'index = "jj", strategy = "blocked"}'), CPU_STRATEGY),
    ("multicache-C", ('source = "B", index = "jj"}', 'source = "C", index = "jj", trigger_index = "k"}'), MULTICACHE),
    ("level-above-trigger", ('index = "jj"}', 'index = "k", trigger_index = "jj"}'), LEVEL_LE_TRIGGER),
    ("budget-0", ('index = "jj"}', 'max_elements = 0}'), BUDGET),
]


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in IR_EDITS], ids=[c[0] for c in IR_EDITS])
def test_cache_pass_checks_hand_written_requests(edit, message) -> None:
    text = plain_cached_gemm_text().replace(*edit)
    module = parse_mlir(text, "edited.mlir")
    if message is None:
        run_passes(module, "tile,cache")
        return
    line, col = nest_position(text)
    with pytest.raises(oi.PassError) as info:
        run_passes(module, "tile,cache")
    assert info.value.message == message
    assert str(info.value) == f"edited.mlir:{line}:{col}: error: {message}"


def test_tile_pass_checks_a_hand_written_order() -> None:
    text = plain_cached_gemm_text()
    old = 'order = ["i", "j", "k", "ii", "jj", "kk"]'
    assert old in text
    module = parse_mlir(text.replace(old, 'order = ["ii", "i", "j", "k", "jj", "kk"]'), "order.mlir")
    with pytest.raises(oi.PassError, match="An inner dimension must not be ordered before its outer dimension"):
        run_passes(module, "tile")
    module = parse_mlir(text.replace(old, 'order = ["i", "j", "k"]'), "order.mlir")
    with pytest.raises(oi.PassError, match="Expected 6 indices, but got 3 indices instead"):
        run_passes(module, "tile")


# ----------------------------------------------------------------------------- names


def test_index_and_array_names_come_from_assignments() -> None:
    g = gemm()
    text = str(g.plan.module)
    assert "oi.nest domain(i = 4, j = 4, k = 6) arrays(input A = %A : memref<4x6xf32>, input B = %B : " in text
    assert "input_output C = %C : memref<4x4xf32>) {" in text
    assert "func.func @nest(%A: memref<4x6xf32>, %B: memref<6x4xf32>, %C: memref<4x4xf32>)" in text

    nest = oi.Nest(shape=(3, 5))
    row, col = nest.get_indices()
    X = oi.Array(role=oi.Role.INPUT, shape=(3, 5)); Y = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(3, 5))  # noqa: E702

    @nest.iteration_logic
    def _():
        Y[row, col] += X[row, col]

    assert (X.name, Y.name) == ("X", "Y")
    assert (row.name, col.name) == ("row", "col")
    text = str(nest.create_plan().module)
    assert "domain(row = 3, col = 5) arrays(input X = %X : memref<3x5xf32>, input_output Y = %Y : " in text


def test_names_of_multi_line_calls() -> None:
    Weights = oi.Array(
        role=oi.Role.INPUT,
        shape=(2, 2),
    )
    nest = oi.Nest(shape=(2, 2))
    r, c = nest.get_indices()
    schedule = nest.create_schedule()
    rr, cc = schedule.tile({
        r: 1,
        c: 1,
    })
    assert Weights.name == "Weights"
    assert [x.name for x in schedule.get_indices()] == ["r", "rr", "c", "cc"]


def test_explicit_array_name_wins() -> None:
    arr = oi.Array(role=oi.Role.INPUT, shape=(2,), name="weights")
    assert arr.name == "weights"


# ----------------------------------------------------------------------------- build() arguments


def test_build_wrong_number_of_arrays() -> None:
    g = gemm()
    fn = g.plan.build()
    a, b, c = gemm_data(g)
    with pytest.raises(oi.ExecutionError, match="takes 3 arrays"):
        fn(a, b)
    with pytest.raises(oi.ExecutionError):
        fn(a, b, c, c)


def test_build_args_order_is_honoured() -> None:
    g = gemm()
    fn = g.plan.build(args=[g.C, g.B, g.A])
    a, b, c = gemm_data(g)
    expected = c + a @ b
    fn(c, b, a)
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5)
    assert "func.func @nest(%C: memref<4x4xf32>, %B: memref<6x4xf32>, %A: memref<4x6xf32>)" in str(fn.lowered)


def test_build_args_must_be_the_input_arrays() -> None:
    g = gemm()
    with pytest.raises(oi.ScheduleError):
        g.plan.build(args=[g.A, g.B])  # C missing


def test_const_and_temp_arrays() -> None:
    n = 6
    weights = np.arange(1, n + 1, dtype=np.float32)
    X = oi.Array(role=oi.Role.INPUT, shape=(n,))
    W = oi.Array(role=oi.Role.CONST, shape=(n,), data=weights)
    T = oi.Array(role=oi.Role.TEMP, shape=(n,))
    Y = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(n,))
    nest = oi.Nest(shape=(n,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        T[i] += X[i] * W[i]  # T starts at zero
        Y[i] += T[i] + 1.0

    plan = nest.create_plan()
    fn = plan.build()
    assert [a.name for a in fn.arrays] == ["X", "Y"]
    x = np.linspace(-1, 1, n).astype(np.float32)
    y = np.full(n, 10.0, np.float32)
    fn(x, y)
    np.testing.assert_allclose(y, 10.0 + x * weights + 1.0, rtol=1e-6)
    fn(x, y)  # the scratch is zero again on every call
    np.testing.assert_allclose(y, 10.0 + 2 * (x * weights + 1.0), rtol=1e-6)
    with pytest.raises(oi.ScheduleError):
        plan.build(args=[X, W, Y])  # a CONST array is not an argument


def test_const_array_needs_data() -> None:
    with pytest.raises(oi.ScheduleError, match="CONST array needs its data"):
        oi.Array(role=oi.Role.CONST, shape=(3,))


def test_a_one_dimensional_nest_unpacks_as_accera_tests_write_it() -> None:
    """`i, = nest.get_indices()` (Accera's own tests) used to fail: a 1-D nest's index is returned
    as a sequence to a caller that unpacks it, and as the index itself to `i = ...`."""
    A = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(8,))
    nest = oi.Nest((8,))
    (i,) = nest.get_indices()
    assert isinstance(i, oi.LoopIndex) and i.name == "i"
    j = oi.Nest((8,)).get_indices()
    assert isinstance(j, oi.LoopIndex) and j.name == "j"
    k, = oi.Nest((8,)).get_indices()  # fmt: skip
    assert isinstance(k, oi.LoopIndex) and k.name == "k"

    @nest.iteration_logic
    def _():
        A[i] += 1.0

    a = np.zeros(8, np.float32)
    nest.create_plan().build()(a)
    np.testing.assert_array_equal(a, np.ones(8, np.float32))
