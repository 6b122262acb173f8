"""GPU plans: `oi.Target(category=GPU)`, `plan.bind`, SHARED/PRIVATE caches, `plan.ptx()`, `plan.build()`.

Without a GPU, every kernel is assembled by `ptxas` and run in the CPU emulation of the mapped
kernel (`OI_GPU_EMULATE=1`, runtime/gpu_emulation.py): grid and block as loops, barriers as
phases, so a wrong mapping or a missing barrier gives a wrong answer here. On a machine with a
GPU and a launcher, the `device` tests run the same plans for real.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oi_compiler as oi
from oi_compiler.backend.ptx import assemble, ptxas_path
from oi_compiler.errors import ScheduleError
from oi_compiler.frontend.loopnest import exp

needs_ptxas = pytest.mark.skipif(ptxas_path() is None, reason="no ptxas (pip install nvidia-cuda-nvcc)")
GPU = oi.Target(category=oi.Target.Category.GPU)
U, MS = oi.GridUnit, oi.MemorySpace

pytestmark = pytest.mark.usefixtures("private_compile_cache")


@pytest.fixture(autouse=True)
def emulate(monkeypatch):
    monkeypatch.setenv("OI_GPU_EMULATE", "1")


def gemm(M: int, N: int, K: int):
    A = oi.Array(role=oi.Role.INPUT, shape=(M, K))
    B = oi.Array(role=oi.Role.INPUT, shape=(K, N))
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(M, N))
    nest = oi.Nest((M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    return nest, (i, j, k)


def operands(M: int, N: int, K: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    c = rng.standard_normal((M, N)).astype(np.float32)
    return a, b, c, c + a @ b


def blocked_plan(M, N, K, tile=16, k_tile=None):
    """i, j over blocks of `tile` x `tile` threads; k sequential (or in `k_tile` chunks, outside the threads)."""
    nest, (i, j, k) = gemm(M, N, K)
    schedule = nest.create_schedule()
    ii, jj = schedule.split(i, tile), schedule.split(j, tile)
    kk = None
    if k_tile:
        kk = schedule.split(k, k_tile)
        schedule.reorder(i, j, k, ii, jj, kk)
    else:
        schedule.reorder(i, j, ii, jj, k)
    plan = schedule.create_plan(GPU)
    plan.bind({i: U.BLOCK_Y, j: U.BLOCK_X, ii: U.THREAD_Y, jj: U.THREAD_X})
    return plan, (i, j, k, ii, jj, kk)


def run(plan, M, N, K, seed=0):
    a, b, c, want = operands(M, N, K, seed)
    plan.build()(a, b, c)
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-4)


# --- the API and Accera's rules ------------------------------------------------------------------


def test_target_and_grid_units() -> None:
    assert GPU.is_gpu and GPU.arch == "sm_80" and GPU.GridUnit is U and GPU.MemorySpace is MS
    assert not oi.Target.HOST.is_gpu
    with pytest.raises(ScheduleError, match="unknown GPU architecture 'sm_1'"):
        oi.Target(category=oi.Target.Category.GPU, arch="sm_1")


def test_bind_is_for_gpu_plans_only() -> None:
    nest, (i, _, _) = gemm(8, 8, 8)
    with pytest.raises(ValueError, match="Only supported on plans with GPU targets$"):
        nest.create_plan().bind({i: U.BLOCK_X})


@pytest.mark.parametrize(("mapping", "message"), [
    (lambda i, j: {i: "block_x"}, "bind maps indices to Target.GridUnit values"),
    (lambda i, j: {i: U.BLOCK_X, j: U.BLOCK_X}, "BLOCK_X is already bound to i"),
    (lambda i, j: {i: U.WARP_X}, "binding to warps is not supported yet"),
    (lambda i, j: {(i, j): U.BLOCK_X}, "binding a tuple of indices"),
])  # fmt: skip
def test_bind_arguments_are_checked(mapping, message) -> None:
    nest, (i, j, _) = gemm(8, 8, 8)
    plan = nest.create_plan(GPU)
    with pytest.raises(ScheduleError, match=message):
        plan.bind(mapping(i, j))


def test_accera_cache_rules_on_a_gpu_target() -> None:
    nest, (i, j, k) = gemm(8, 8, 8)
    plan = nest.create_plan(GPU)
    a = [arr for arr in plan._arrays() if arr.name == "A"][0]
    with pytest.raises(ValueError, match="Global memory caches are not yet supported on GPU targets.$"):
        plan.cache(a, index=j, location=MS.GLOBAL)
    cpu = nest.create_plan()
    with pytest.raises(ValueError, match="Only AUTO strategy is supported on the CPU$"):
        cpu.cache(a, index=j, strategy=oi.CacheStrategy.BLOCKED)
    with pytest.raises(ScheduleError, match="needs a GPU target"):
        cpu.cache(a, index=j, location=MS.SHARED)


def test_too_many_threads_per_block_is_refused() -> None:
    with pytest.raises(oi.OiError, match=r"Invalid block size 64x64x1 = 4096 threads. Max threads per block: 1024"):
        blocked_plan(64, 64, 4, tile=64)  # by plan.bind, when it is called


def test_binding_a_reduction_index_is_refused() -> None:
    nest, (i, j, k) = gemm(8, 8, 8)
    plan = nest.create_plan(GPU)
    with pytest.raises(oi.OiError, match="the logic reduces over k .* its threads would race"):
        plan.bind({k: U.THREAD_X})
    assert plan.bindings == {}


def test_what_gpu_plans_refuse() -> None:
    nest, (i, j, k) = gemm(8, 8, 8)
    plan = nest.create_plan(GPU)
    with pytest.raises(ScheduleError, match="on a GPU, bind indices to the grid"):
        plan.parallelize(i)
    with pytest.raises(ScheduleError, match="ptx\\(\\) is for plans with GPU targets"):
        nest.create_plan().ptx()
    T = oi.Array(role=oi.Role.TEMP, shape=(4,))
    X = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(4,))
    temp_nest = oi.Nest((4,))
    t = temp_nest.get_indices()

    @temp_nest.iteration_logic
    def _():
        T[t] = X[t]
        X[t] = T[t] * 2.0

    with pytest.raises(ScheduleError, match="TEMP arrays are not supported on GPU targets yet"):
        temp_nest.create_plan(GPU).build()


def test_a_shared_cache_of_a_written_array_is_refused() -> None:
    plan, (i, j, k, ii, jj, _) = blocked_plan(32, 32, 8)
    c = [a for a in plan._arrays() if a.name == "C"][0]
    with pytest.raises(oi.OiError, match=r"a SHARED cache of an array the nest writes \(C\)"):
        plan.cache(c, index=ii, location=MS.SHARED)  # when it is called


def test_a_shared_cache_inside_the_thread_loops_is_refused() -> None:
    plan, (i, j, k, ii, jj, _) = blocked_plan(32, 32, 8)
    a = [arr for arr in plan._arrays() if arr.name == "A"][0]
    plan.cache(a, index=k, location=MS.SHARED)
    with pytest.raises(oi.OiError, match="must be filled outside the thread-bound loops"):
        plan.build()


# --- code: PTX and the mapped kernel -----------------------------------------------------------


@needs_ptxas
def test_ptx_of_a_blocked_gemm_assembles() -> None:
    plan, _ = blocked_plan(64, 48, 32)
    ptx = plan.ptx()
    assert ".visible .entry nest(" in ptx and "%ctaid.y" in ptx and "%tid.x" in ptx
    assemble(ptx, "sm_90")


@needs_ptxas
def test_ptx_of_a_shared_double_buffered_gemm_assembles() -> None:
    plan, (i, j, k, ii, jj, kk) = blocked_plan(64, 48, 40, k_tile=16)
    arrays = {a.name: a for a in plan._arrays()}
    plan.cache(arrays["A"], index=ii, location=MS.SHARED)
    plan.cache(arrays["B"], index=ii, location=MS.SHARED, double_buffer=True)
    ptx = plan.ptx()
    assert ".shared" in ptx and "bar.sync" in ptx
    assemble(ptx, "sm_90")


def test_the_kernel_is_a_gpu_module_with_its_launch() -> None:
    from xdsl.dialects import gpu

    plan, _ = blocked_plan(50, 40, 8)
    f = plan.build()
    kernels = [op for op in f.module.walk() if isinstance(op, gpu.FuncOp)]
    assert [k.sym_name.data for k in kernels] == ["nest"] and kernels[0].kernel is not None
    assert (f.grid, f.block) == ((3, 4, 1), (16, 16, 1))


# --- results, in the emulation ------------------------------------------------------------------


@pytest.mark.parametrize(("M", "N", "K"), [(32, 32, 8), (50, 40, 36), (1, 17, 3)])
def test_blocked_gemm_matches_numpy(M, N, K) -> None:
    run(blocked_plan(M, N, K)[0], M, N, K)


def test_one_dimensional_grid_elementwise() -> None:
    n = 1000
    X = oi.Array(role=oi.Role.INPUT, shape=(n,))
    Y = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(n,))
    nest = oi.Nest((n,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        Y[i] = Y[i] + exp(X[i]) * 0.5

    schedule = nest.create_schedule()
    ii = schedule.split(i, 128)
    plan = schedule.create_plan(GPU)
    plan.bind({i: U.BLOCK_X, ii: U.THREAD_X})
    x = np.linspace(-3, 3, n, dtype=np.float32)
    y = np.ones(n, np.float32)
    plan.build()(x, y)
    np.testing.assert_allclose(y, 1 + np.exp(x) * 0.5, rtol=1e-5)


def test_private_cache_per_thread() -> None:
    plan, (i, j, k, ii, jj, _) = blocked_plan(40, 24, 12)
    arrays = {a.name: a for a in plan._arrays()}
    plan.cache(arrays["C"], index=k, location=MS.PRIVATE)  # each thread's C element in a register
    run(plan, 40, 24, 12)


def test_shared_caches_with_barriers_match_numpy() -> None:
    plan, (i, j, k, ii, jj, kk) = blocked_plan(50, 40, 36, k_tile=16)
    arrays = {a.name: a for a in plan._arrays()}
    plan.cache(arrays["A"], index=ii, location=MS.SHARED)
    plan.cache(arrays["B"], index=ii, location=MS.SHARED)
    run(plan, 50, 40, 36)


def test_double_buffered_shared_cache_matches_numpy() -> None:
    plan, (i, j, k, ii, jj, kk) = blocked_plan(48, 40, 70, k_tile=16)
    arrays = {a.name: a for a in plan._arrays()}
    plan.cache(arrays["A"], index=ii, location=MS.SHARED, double_buffer=True)
    plan.cache(arrays["B"], index=ii, location=MS.SHARED, double_buffer=True, double_buffer_location=MS.PRIVATE)
    run(plan, 48, 40, 70)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(M=st.integers(1, 40), N=st.integers(1, 40), K=st.integers(1, 24), tile=st.sampled_from([2, 4, 8, 16]),
       k_tile=st.sampled_from([None, 2, 4, 8]),
       caches=st.sampled_from(["none", "shared", "shared-double", "private", "all"]))  # fmt: skip
def test_random_gpu_plans_match_numpy(M, N, K, tile, k_tile, caches) -> None:
    """Shapes that do not divide the blocks, every cache kind and their mix, k split or not."""
    plan = cached_plan(M, N, K, tile, k_tile, caches)
    run(plan, M, N, K, seed=M * 1000 + N)


def cached_plan(M, N, K, tile, k_tile, caches):
    if caches in ("shared", "shared-double", "all") and not k_tile:
        k_tile = 8  # a shared tile is filled outside the thread loops: above them, at a k chunk
    plan, (i, j, k, ii, jj, kk) = blocked_plan(M, N, K, tile=tile, k_tile=k_tile)
    arrays = {a.name: a for a in plan._arrays()}
    if caches in ("shared", "shared-double", "all"):
        plan.cache(arrays["A"], index=ii, location=MS.SHARED, double_buffer=caches != "shared")
        plan.cache(arrays["B"], index=ii, location=MS.SHARED, double_buffer=caches == "all")
    if caches in ("private", "all"):
        plan.cache(arrays["C"], index=kk or k, location=MS.PRIVATE)
    return plan


def test_a_private_cache_of_unit_dims_across_barriers() -> None:
    """A 1x1 private cache living across the shared fills' barriers: the emulation's per-thread row
    kept both unit dims (it dropped them and the loads lost their indices)."""
    run(cached_plan(1, 1, 1, 2, None, "all"), 1, 1, 1)


def test_accera_gpu_only_plan_options() -> None:
    nest, _ = gemm(8, 8, 8)
    with pytest.raises(ValueError, match="_dynamic_shared_memory_size can only be set on a GPU target$"):
        nest.create_schedule().create_plan(target="cpu", _dynamic_shared_memory_size=1024)
    with pytest.raises(ScheduleError, match="dynamic shared memory is not supported yet"):
        nest.create_schedule().create_plan(GPU, _dynamic_shared_memory_size=1024)


def test_dump_stages_of_a_gpu_plan_ends_with_its_ptx(tmp_path, capsys) -> None:
    from oi_compiler.pipeline import GPU_NEST_STAGES
    from oi_compiler.tools.oi_opt import main

    plan, _ = blocked_plan(20, 24, 16, tile=8)
    path = tmp_path / "gpu_nest.mlir"
    path.write_text(str(plan.module))
    assert main([str(path), "--dump-stages"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("// ----- after")]
    assert headers == [f"// ----- after {s.name}: {s.description} -----" for s in GPU_NEST_STAGES]
    assert ".visible .entry nest(" in out.split("// ----- after ptx")[1]
