"""`device="cuda"`: the cpu's compiled control plane, each op launched as its GPU kernels
(runtime/cuda_executor.py, runtime/op_launches.py, passes/launch_op_kernels.py).

Here, without a GPU, the kernels run in the CPU emulation (`OI_GPU_EMULATE=1`): results against
`device="cpu"` (the same control plane, the CPU nests) and the reference, rollback when a check
or a launch fails, checkpoints across devices, the launch counts, the refusal without a GPU.
The random graphs (tests/cpu/test_cpu_differential.py) and the tiny decoder
(tests/e2e/test_tiny_decoder.py) have cuda variants of their own. The last test needs a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.errors import ExecutionError
from oi_compiler.runtime import cuda
from oi_compiler.runtime.op_launches import EmulatedKernels
from oi_compiler.tools.oi_run import main as oi_run
from tests.device_check import device_check

KV_DECODE = "examples/kv_decode.oi"
SOFTMAX = device_check().FIXED  # softmax and a sum into a @fixed table (the GPU session checks it too)


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setenv("OI_GPU_EMULATE", "1")


def _kv_model(seed: int = 0) -> oi.Model:
    rng = np.random.default_rng(seed)
    weights = {n: rng.standard_normal((4, 4)).astype(np.float32) for n in ("Wq", "Wk", "Wv")}
    return oi.Model(sizevars={"D": 4, "T": 8}, tensors=weights)


def _executors(graph, model, devices=("reference", "cpu", "cuda")):
    if isinstance(graph, str) and not graph.endswith(".oi"):
        graph = oi.parse_graph(graph)
    return {d: oi.Simulator(model, graph, device=d).make_executor() for d in devices}


def test_kv_decode_matches_cpu_bit_for_bit(emulated) -> None:
    exes = _executors(KV_DECODE, _kv_model())
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.standard_normal((1, 4)).astype(np.float32)
        for exe in exes.values():
            exe.insert(x=x).step()
        for name in ("q", "k", "v", "keys", "values"):
            np.testing.assert_array_equal(exes["cuda"].fetch(name), exes["cpu"].fetch(name), err_msg=name)
            np.testing.assert_allclose(exes["cuda"].fetch(name), exes["reference"].fetch(name), rtol=1e-6)
    np.testing.assert_array_equal(exes["cuda"].state("K"), exes["cpu"].state("K"))
    counts = exes["cuda"].launch_counts
    # three matmuls a step, each a zeroing launch and the shared-tile contraction; one kernel set for all three
    assert (counts.op_calls, counts.launches, counts.prepared) == (12, 24, 1)


def test_scratch_and_kernels_are_made_once_per_shape(emulated) -> None:
    exe = _executors(SOFTMAX, oi.Model(), ("cuda",))["cuda"]
    exe.insert(x=np.ones((2, 8), np.float32)).step()
    prepared = dict(exe.launcher.prepared)
    scratch = [id(a) for p in prepared.values() for a in p.scratch]
    assert scratch  # softmax's row maxima and sums
    for _ in range(2):
        exe.insert(x=np.arange(16, dtype=np.float32).reshape(2, 8)).step()
    assert exe.launcher.prepared == prepared
    assert [id(a) for p in exe.launcher.prepared.values() for a in p.scratch] == scratch
    np.testing.assert_allclose(exe.fetch("s"), [1.0, 1.0], rtol=1e-6)
    assert exe.launch_counts.prepared == 2 and exe.launch_counts.op_calls == 6


def test_a_failed_check_after_launches_rolls_back(emulated) -> None:
    exes = _executors(SOFTMAX, oi.Model(), ("cpu", "cuda"))
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    for _ in range(3):
        for exe in exes.values():
            exe.insert(x=x).step()
    errors = {}
    for device, exe in exes.items():
        before = (exe.state("K").copy(), int(exe.state("n")))
        with pytest.raises(oi.CacheError) as info:
            exe.insert(x=2 * x).step()  # the ops ran; the write past @fixed(t = 3) fails
        errors[device] = (info.value.message, str(info.value.loc))
        np.testing.assert_array_equal(exe.state("K"), before[0])
        assert int(exe.state("n")) == before[1]
    assert errors["cuda"] == errors["cpu"]


def test_a_failed_launch_fails_the_step_at_its_statement_and_rolls_back(emulated, monkeypatch) -> None:
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "0")  # every launch through EmulatedKernels.run, patched below
    exe = _executors(SOFTMAX, oi.Model(), ("cuda",))["cuda"]
    x = np.ones((2, 8), np.float32)
    exe.insert(x=x).step()
    before = exe.state("K").copy()
    calls = []

    def failing(self, prepared, launch, operands):
        calls.append(launch.kernel)
        if launch.kernel.startswith("sum_axis"):
            raise ExecutionError("device lost")
        return run(self, prepared, launch, operands)

    run = EmulatedKernels.run
    monkeypatch.setattr(EmulatedKernels, "run", failing)
    with pytest.raises(ExecutionError, match="device lost") as info:
        exe.insert(x=3 * x).step()
    assert info.value.loc is not None and info.value.loc.line == 10  # op sum_axis(...)
    assert "softmax_0" in calls
    np.testing.assert_array_equal(exe.state("K"), before)
    assert int(exe.state("n")) == 1 and exe.table_sizes("K") == [3]
    monkeypatch.setattr(EmulatedKernels, "run", run)
    exe.insert(x=x).step()
    assert int(exe.state("n")) == 2


@pytest.mark.parametrize("other", ["cpu", "reference"])
def test_checkpoints_move_between_cuda_and_other_devices(emulated, tmp_path, other) -> None:
    model = _kv_model(3)
    exes = _executors(KV_DECODE, model, ("cuda", other))
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(4)]
    for x in xs[:2]:
        exes["cuda"].insert(x=x).step()
    exes["cuda"].save_state(tmp_path / "cuda.oistate")
    exes[other].load_state(tmp_path / "cuda.oistate")
    for x in xs[2:]:
        for exe in exes.values():
            exe.insert(x=x).step()
    np.testing.assert_allclose(exes["cuda"].state("K"), exes[other].state("K"), rtol=1e-6)
    assert int(exes["cuda"].state("t")) == int(exes[other].state("t")) == 4
    exes[other].save_state(tmp_path / "other.oistate")  # and back
    fresh = oi.Simulator(model, KV_DECODE, device="cuda").make_executor()
    fresh.load_state(tmp_path / "other.oistate")
    fresh.insert(x=xs[0]).step()
    exes[other].insert(x=xs[0]).step()
    np.testing.assert_allclose(fresh.fetch("keys"), exes[other].fetch("keys"), rtol=1e-6)


def test_oi_run_device_cuda(emulated, capsys) -> None:
    assert oi_run([KV_DECODE, "--dims", "D=4,T=8", "--zero-constants", "--steps", "2", "--device", "cuda",
                   "--fetch", "t"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "t" in out and "2" in out


@pytest.mark.skipif(cuda.available(), reason="a GPU is present")
def test_without_a_gpu_or_the_emulation_cuda_is_refused(monkeypatch) -> None:
    monkeypatch.delenv("OI_GPU_EMULATE", raising=False)
    with pytest.raises(cuda.GpuUnavailableError, match="OI_GPU_EMULATE=1") as info:
        oi.Simulator(_kv_model(), KV_DECODE, device="cuda")
    assert isinstance(info.value, oi.OiError)


@pytest.mark.skipif(not cuda.available(), reason="needs a CUDA GPU and a launcher")
def test_on_a_gpu_kv_decode_matches_cpu(monkeypatch) -> None:
    monkeypatch.delenv("OI_GPU_EMULATE", raising=False)
    exes = _executors(KV_DECODE, _kv_model(), ("cpu", "cuda"))
    x = np.ones((1, 4), np.float32)
    for _ in range(3):
        for exe in exes.values():
            exe.insert(x=x).step()
    np.testing.assert_allclose(exes["cuda"].fetch("keys"), exes["cpu"].fetch("keys"), rtol=1e-5)
