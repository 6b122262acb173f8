"""`plan.build()` of a plan built before comes from the compile cache without running the passes
(issue #16 item 4): the key is the plan's IR, the compiler's source and the host; the function,
its ABI checks, its parallel split and its `lowered` module are the same as a fresh build's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler import pipeline
from oi_compiler.backend import compile_cache

N = 24


def gemm_plan(parallel: bool = False):
    A = oi.Array(role=oi.Role.INPUT, element_type=oi.ScalarType.float32, shape=(N, N))
    B = oi.Array(role=oi.Role.INPUT, element_type=oi.ScalarType.float32, shape=(N, N))
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, element_type=oi.ScalarType.float32, shape=(N, N))
    nest = oi.Nest(shape=(N, N, N))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    ii, jj, kk = schedule.tile({i: 8, j: 8, k: 8})
    plan = schedule.create_plan()
    plan.cache(B, index=jj)
    if parallel:
        plan.parallelize(indices=i, max_threads=2)
    return plan


def arrays():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, N, N), dtype=np.float32)
    return a, b, np.zeros((N, N), np.float32)


@pytest.mark.parametrize("parallel", [False, True])
def test_a_plan_built_before_loads_without_running_the_passes(tmp_path, monkeypatch, parallel) -> None:
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path))
    compile_cache.clear_cache()
    first = gemm_plan(parallel).build()
    assert first.compiled.source == "compiled"
    lowered = str(first.lowered)

    with compile_cache._lock:
        compile_cache._memory.clear()

    def no_passes(*_args, **_kwargs):
        raise AssertionError("a cached plan ran the pipeline")

    monkeypatch.setattr(pipeline, "run_stages", no_passes)
    again = gemm_plan(parallel).build()
    assert again.compiled.source == "disk"
    assert again.parallel == first.parallel
    a, b, c = arrays()
    again(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
    with pytest.raises(oi.ExecutionError):  # the ABI checks came back with the entry
        again(a, b, c.astype(np.float64))
    monkeypatch.undo()
    assert str(again.lowered) == lowered  # rebuilt on demand


def test_a_fresh_process_builds_a_cached_plan_from_disk(tmp_path) -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parents[2])!r})
        from tests.loopnest.test_plan_cache import gemm_plan
        print(gemm_plan().build().compiled.source)
    """)
    env = {**__import__("os").environ, "OI_CACHE_DIR": str(tmp_path)}
    sources = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                              timeout=120).stdout.strip() for _ in range(2)]  # fmt: skip
    assert sources == ["compiled", "disk"]


def test_a_corrupt_meta_is_a_miss(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path))
    compile_cache.clear_cache()
    from oi_compiler.backend.jit import host_target
    from oi_compiler.frontend.loopnest_ir import plan_module
    from oi_compiler.runtime.nest_function import _nest_key

    plan = gemm_plan()
    key = _nest_key(plan_module(plan, "nest", None), host_target())
    compile_cache.disk_put(key, compile_cache.CacheEntry(b"", "", '{"abis": 3}'))
    fn = plan.build()
    assert fn.compiled.source in ("compiled", "disk")  # the LLVM-level entry may still hit
    a, b, c = arrays()
    fn(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
