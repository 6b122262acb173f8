"""Loop-nest bugs found and fixed, each pinned by the case that showed it."""

from __future__ import annotations

import numpy as np
import pytest

import oi_compiler as oi

pytestmark = pytest.mark.usefixtures("private_compile_cache")


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
