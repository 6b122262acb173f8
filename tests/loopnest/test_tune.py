"""The loop-nest autotuner: parameters and grids, the search (invalid and wrong candidates skipped
with their reasons), the tuning database (a second tune builds the stored winner without
searching), and the error when nothing is usable."""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np
import pytest

import oi_compiler as oi
from tests.loopnest import tune_spaces
from tests.loopnest.tune_spaces import P_BAD, P_TI, P_TJ, gemm_inputs, gemm_plan, gemm_reference


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path / "cache"))


def _quick(**kwargs):
    return {"repeats": 1, "finalists": 1, "progress": False, **kwargs}


def test_parameters_are_named_by_their_assignment_and_grids_follow_accera() -> None:
    P0, P1 = oi.create_parameters()
    Q = oi.create_parameters()
    assert (P0.name, P1.name, Q.name) == ("P0", "P1", "Q")
    assert len(oi.create_parameters(3)) == 3
    grid = oi.create_parameter_grid({P0: [1, 2, 3], P1: ["a", "b"]}, filter_func=lambda p0, p1: p0 != 2)
    assert [(g[P0], g[P1]) for g in grid] == [(1, "a"), (1, "b"), (3, "a"), (3, "b")]
    sampled = oi.create_parameter_grid({P0: [1, 2, 3], P1: ["a", "b"]}, sample=2, seed=5)
    assert len(sampled) == 2 and sampled == oi.create_parameter_grid({P0: [1, 2, 3], P1: ["a", "b"]}, sample=2, seed=5)
    with pytest.raises(oi.OiError, match="non-empty list"):
        oi.create_parameter_grid({P0: []})


def test_a_parameter_has_a_value_only_while_a_candidate_is_built() -> None:
    with pytest.raises(oi.ScheduleError, match="parameter P_BAD has no value here"):  # (the first it reads)
        gemm_plan()
    with oi.parameter_values({P_TI: 4, P_TJ: 8, P_BAD: False}):
        plan, args = gemm_plan()
    assert "4 : i64" in str(plan.module)  # the split size in the IR is the point's value


def test_order_and_indices_by_name_in_a_parameter() -> None:
    """An order parameter holds the indices' names; an unroll parameter an index's name."""
    P_ORDER, P_UNROLL = oi.create_parameters()
    A = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(8, 8))
    nest = oi.Nest(shape=(8, 8))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        A[i, j] += 1.0

    with oi.parameter_values({P_ORDER: ("j", "i"), P_UNROLL: "i"}):
        schedule = nest.create_schedule()
        schedule.reorder(P_ORDER)
        plan = schedule.create_plan()
        plan.unroll(P_UNROLL)
    assert [x.name for x in schedule.get_indices()] == ["j", "i"] and plan.unrolled == ["i"]


def test_the_search_skips_invalid_and_wrong_candidates_with_their_reasons() -> None:
    builder, grid, reference = tune_spaces.tune_space()
    result = oi.tune(builder, grid, reference=reference, **_quick())
    status = {c.point: (c.status, c.reason) for c in result.candidates}
    assert status["P_TI=0 P_TJ=8 P_BAD=False"] == ("invalid", "Split sizes must be integers >= 1")
    assert status["P_TI=4 P_TJ=8 P_BAD=True"][0] == "wrong results"
    assert "relative error" in status["P_TI=4 P_TJ=8 P_BAD=True"][1]
    assert status["P_TI=4 P_TJ=8 P_BAD=False"] == ("ok", "")
    assert result.parameters == {"P_TI": 4, "P_TJ": 8, "P_BAD": False} and not result.from_database
    a, b, c = gemm_inputs()
    result.function(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    assert "wrong results" in result.table() and "invalid" in result.table()


def test_without_a_reference_the_unscheduled_nest_is_the_reference() -> None:
    grid = oi.create_parameter_grid({P_TI: [4], P_TJ: [8], P_BAD: [False, True]})  # the first builds the reference
    result = oi.tune(gemm_plan, grid, **_quick())
    assert [c.status for c in result.candidates] == ["ok", "wrong results"]


def test_every_candidate_failing_is_one_error_with_the_reasons() -> None:
    builder, grid = tune_spaces.all_invalid_space()
    with pytest.raises(oi.TuneError, match=r"no candidate of the 2 in the grid is usable: 2 invalid \(first: "
                                           r"P_TI=0 P_TJ=8 P_BAD=False: Split sizes must be integers >= 1\)"):
        oi.tune(builder, grid, **_quick())
    only_wrong = oi.create_parameter_grid({P_TI: [4], P_TJ: [8], P_BAD: [True]})
    with pytest.raises(oi.TuneError, match="1 wrong results"):
        oi.tune(gemm_plan, only_wrong, reference=gemm_reference, **_quick())
    with pytest.raises(oi.OptionError, match="jobs must be an integer >= 1"):
        oi.tune(gemm_plan, only_wrong, jobs=0)
    with pytest.raises(oi.TuneError, match="the reference returned ndarray: it must update the arrays it is given in place"):
        oi.tune(gemm_plan, only_wrong, reference=lambda a, b, c: c + a @ b)
    with pytest.raises(oi.TuneError, match="the reference failed on random inputs: ValueError: "):
        oi.tune(gemm_plan, only_wrong, reference=lambda a, b, c: a @ b[:3])


def test_a_builder_that_raises_anything_is_one_invalid_candidate_and_a_failed_build_another() -> None:
    P = oi.create_parameters()

    def builder():
        if P.value == 1:
            raise KeyError("boom")
        with oi.parameter_values({P_TI: 4, P_TJ: 8, P_BAD: False}):
            plan, args = gemm_plan()
        return plan, args[:2] if P.value == 3 else args  # 3: C left out of the arguments: build fails

    result = oi.tune(builder, oi.create_parameter_grid({P: [1, 2, 3]}), reference=gemm_reference, **_quick())
    assert [(c.status, c.reason) for c in result.candidates] == [
        ("invalid", "KeyError: 'boom'"), ("ok", ""),
        ("compile failed", "the logic uses C but it is not one of the function's arguments")]  # fmt: skip


def test_a_second_tune_reuses_the_stored_winner_without_searching(tmp_path) -> None:
    grid = oi.create_parameter_grid({P_TI: [2, 4], P_TJ: [8], P_BAD: [False]})
    first = oi.tune(gemm_plan, grid, reference=gemm_reference, **_quick())
    assert not first.from_database and first.database_path is not None and first.database_path.is_file()
    entry = json.loads(first.database_path.read_text())
    assert entry["winner"]["point"] == " ".join(f"{k}={v}" for k, v in first.parameters.items())
    assert oct(first.database_path.parent.stat().st_mode & 0o777) == "0o700"

    def build_winner():
        with oi.parameter_values(first.parameters):
            plan, args = gemm_plan()
            return plan.build(args=args)

    overheads = []
    for _ in range(3):  # the least of three: the machine is shared
        start = time.perf_counter()
        again = oi.tune(gemm_plan, grid, reference=gemm_reference, **_quick())
        middle = time.perf_counter()
        build_winner()
        overheads.append((middle - start) - (time.perf_counter() - middle))
        assert again.from_database and again.parameters == first.parameters
        assert [c.point for c in again.candidates] == [c.point for c in first.candidates]
    assert min(overheads) < 0.1, overheads
    # another grid is another key; use_db=False searches anyway
    assert not oi.tune(gemm_plan, grid[:1], reference=gemm_reference, **_quick()).from_database
    assert not oi.tune(gemm_plan, grid, reference=gemm_reference, use_db=False, **_quick()).from_database


def test_a_damaged_or_foreign_database_entry_is_a_miss(tmp_path) -> None:
    grid = oi.create_parameter_grid({P_TI: [4], P_TJ: [8], P_BAD: [False]})
    db = tmp_path / "db"
    first = oi.tune(gemm_plan, grid, reference=gemm_reference, db=db, **_quick())
    assert first.database_path.parent == db
    first.database_path.write_text("{not json")
    assert not oi.tune(gemm_plan, grid, reference=gemm_reference, db=db, **_quick()).from_database
    entry = json.loads(first.database_path.read_text())
    entry["key"] = "0" * 64  # an entry copied from another key
    first.database_path.write_text(json.dumps(entry))
    assert not oi.tune(gemm_plan, grid, reference=gemm_reference, db=db, **_quick()).from_database
    os.chmod(db, 0o777)  # writable by others: not used (warned), the search still runs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not oi.tune(gemm_plan, grid, reference=gemm_reference, db=db, **_quick()).from_database
    assert any("writable by group or others" in str(w.message) for w in caught)
    os.chmod(db, 0o700)
    link = tmp_path / "link"
    link.symlink_to(db)
    assert oi.tune(gemm_plan, grid, reference=gemm_reference, db=link, **_quick()).database_path is None


def test_a_builder_that_is_not_a_function_is_refused_at_once() -> None:
    with pytest.raises(oi.TuneError, match="plan builder must be a function"):
        oi.tune(3, [{P_TI: 4}], **_quick())
