"""The tuner's parallel paths: a pool of processes (jobs=2) and, where Ray is installed, Ray tasks on
a local Ray instance (test_tune_ray.py); each gives the serial search's verdicts, wrong candidates
included."""

from __future__ import annotations

import pytest

import oi_compiler as oi
from tests.loopnest import tune_spaces
from tests.loopnest.tune_spaces import EXPECTED, verdicts


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path / "cache"))


def test_jobs_2_builds_and_checks_candidates_in_worker_processes() -> None:
    builder, grid, reference = tune_spaces.tune_space()
    result = oi.tune(builder, grid, reference=reference, jobs=2, repeats=1, finalists=1, use_db=False)
    assert verdicts(result) == EXPECTED
    # compiled in a worker, so here the finalist came from the compile cache the workers filled
    ok = next(c for c in result.candidates if c.status == "ok")
    assert ok.compile_s > 0 and result.function.compiled.source in ("disk", "memory")


def test_a_builder_other_processes_cannot_load_runs_here_with_a_warning() -> None:
    builder, grid, reference = tune_spaces.tune_space()
    with pytest.warns(RuntimeWarning, match="cannot be sent to other processes"):
        result = oi.tune(lambda: builder(), grid, reference=reference, jobs=2, repeats=1, finalists=1)
    assert verdicts(result) == EXPECTED
