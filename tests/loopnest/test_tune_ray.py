"""oi.tune(ray_address="local"): candidates as Ray tasks on a Ray instance started here (skipped
where Ray, the optional extra `oi_compiler[tune-ray]`, is not installed)."""

from __future__ import annotations

import pytest

import oi_compiler as oi
from tests.loopnest import tune_spaces
from tests.loopnest.tune_spaces import EXPECTED, verdicts


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path / "cache"))


def test_ray_tasks_on_a_local_ray_instance() -> None:
    pytest.importorskip("ray")
    builder, grid, reference = tune_spaces.tune_space()
    result = oi.tune(builder, grid, reference=reference, ray_address="local", jobs=2, repeats=1, finalists=1,
                     use_db=False)  # fmt: skip
    assert verdicts(result) == EXPECTED


def test_without_ray_a_ray_address_is_one_error(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    builder, grid, reference = tune_spaces.tune_space()
    with pytest.raises(oi.OiError, match=r"ray_address needs Ray: pip install 'oi_compiler\[tune-ray\]'"):
        oi.tune(builder, grid, reference=reference, ray_address="local", use_db=False)
