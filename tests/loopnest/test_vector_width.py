"""`oi.Target(vector_bytes=...)`: the vector width LLVM prefers for one plan's compile (issue #16
item 2: on AVX-512 Intel CPUs LLVM prefers 256-bit vectors unless told otherwise). It reaches the
target machine (512 gives zmm registers, 256 does not), is part of the compile-cache key, can be an
`oi.Parameter`, and a width the host cannot do is refused with `oi.VectorWidthError`."""

from __future__ import annotations

import re

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.backend import compile_cache
from oi_compiler.backend.jit import host_target

N = 32
AVX512 = "+avx512f" in host_target().features.split(",")
X86 = host_target().triple.startswith(("x86_64", "i386", "i686"))


def gemm_plan(target=None):
    A = oi.Array(role=oi.Role.INPUT, shape=(N, N), name="A")
    B = oi.Array(role=oi.Role.INPUT, shape=(N, N), name="B")
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(N, N), name="C")
    nest = oi.Nest(shape=(N, N, N))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    jj = schedule.split(j, 32)
    schedule.reorder(i, j, k, jj)
    plan = schedule.create_plan(target if target is not None else "cpu")
    plan.vectorize(jj)
    return plan, (A, B, C)


def build(vector_bytes):
    plan, args = gemm_plan(oi.Target(vector_bytes=vector_bytes))
    return plan.build(args=args, name="gemm")


def check(fn) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, N, N), dtype=np.float32)
    c = np.zeros((N, N), np.float32)
    fn(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path))
    compile_cache.clear_cache()


@pytest.mark.skipif(not AVX512, reason="needs an AVX-512F host")
def test_512_bit_vectors_reach_the_target_machine_and_256_and_128_do_not() -> None:
    wide, narrow = build(64), build(32)
    check(wide)
    check(narrow)
    assert re.search(r"vfmadd\w+\s+[^\n]*%zmm", wide.asm), "64 bytes: the FMAs should use zmm registers"
    assert "%zmm" not in narrow.asm and "%ymm" in narrow.asm
    assert "-prefer-256-bit" in wide.compiled._host.features
    narrowest = build(16)
    check(narrowest)
    assert "%xmm" in narrowest.asm and "%ymm" not in narrowest.asm and "%zmm" not in narrowest.asm


@pytest.mark.skipif(not X86, reason="x86 vector widths")
def test_the_width_is_part_of_the_compile_cache_key() -> None:
    plain, wide = build(None), build(32)
    assert plain.compiled.source == wide.compiled.source == "compiled"  # not each other's cache entry
    assert build(32).compiled.source == "memory"
    with compile_cache._lock:
        compile_cache._memory.clear()
    assert build(32).compiled.source == "disk"
    assert build(None).compiled.source == "disk"


@pytest.mark.parametrize("width", [8, 48, 128, "64", True, 64.0])
def test_a_width_that_is_not_one_is_refused(width) -> None:
    with pytest.raises(oi.VectorWidthError, match=r"vector_bytes"):
        oi.Target(vector_bytes=width)


@pytest.mark.skipif(AVX512, reason="needs a host without AVX-512F")
def test_a_width_the_host_cannot_do_is_refused() -> None:
    with pytest.raises(oi.VectorWidthError, match=r"has no 512-bit vectors"):
        oi.Target(vector_bytes=64)


def test_the_host_check_names_the_missing_feature() -> None:
    no_avx512 = type(host_target())("x86_64-unknown-linux-gnu", "haswell", "+sse2,+avx,+avx2,-avx512f")
    with pytest.raises(oi.VectorWidthError, match=r"haswell, x86_64\) has no 512-bit vectors \(they need AVX512F\)"):
        no_avx512.with_vector_bytes(64)
    assert no_avx512.with_vector_bytes(32).features.endswith("+prefer-256-bit")
    assert isinstance(oi.VectorWidthError("x"), oi.ScheduleError)


def test_a_gpu_target_takes_no_vector_width() -> None:
    with pytest.raises(oi.ScheduleError, match="cpu target's option"):
        oi.Target(category=oi.Target.Category.GPU, vector_bytes=32)


@pytest.mark.skipif(not AVX512, reason="needs an AVX-512F host")
def test_a_tuning_grid_searches_the_width() -> None:
    (P_VB,) = oi.create_parameters()

    def builder():
        return gemm_plan(oi.Target(vector_bytes=P_VB))

    result = oi.tune(builder, oi.create_parameter_grid({P_VB: [32, 64]}), name="gemm", jobs=1, repeats=1,
                     finalists=2, use_db=False, progress=False)  # fmt: skip
    assert [c.status for c in result.candidates] == ["ok", "ok"]
    zmm = "%zmm" in result.function.asm
    assert zmm == (result.parameters["P_VB"] == 64)
