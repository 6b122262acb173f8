"""benchmarks/gpu_decode.py, the GPU decode benchmark, in what this machine can run of it.

Its smoke mode (`--smoke`: tiny dims, context 128, 2 rounds of 2 steps) with the kernels in the CPU
emulation: it checks oi's `device="cuda"` decode against `device="cpu"` and prints both tables.
The device-to-device copy column runs against a stand-in for runtime/cuda.py's launcher whose
"device memory" is host memory (the rows' addresses are real, so a wrong offset would show), and
the PyTorch decoder's math (eager, and the masked window the CUDA graph captures) is checked on
CPU tensors when torch imports. The GPU itself is not: no GPU here (benchmarks/README.md, "GPU
decode", says how a lent machine runs it).
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_decode.py"
HEADER = "median µs per decode step"


@pytest.fixture(autouse=True)
def _compile_after_restored(monkeypatch):
    """gpu_decode.main sets OI_CUDA_COMPILE_AFTER when unset: put it back for the rest of the worker."""
    monkeypatch.delenv("OI_CUDA_COMPILE_AFTER", raising=False)


def _load():
    name = "gpu_decode_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


gpu_decode = _load()


def test_smoke_mode_checks_prints_the_tables_and_fails_on_a_mismatch(monkeypatch, capsys):
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    began = time.perf_counter()
    assert gpu_decode.main(["--smoke", "--sizes", "tiny"]) == 0
    out = capsys.readouterr().out
    assert HEADER in out and "KV append" in out, out
    row = next(line for line in out.splitlines() if line.startswith("tiny "))
    cells = row.split()
    assert cells[1] == "128" and float(cells[2]) > 0 and float(cells[3]) > 0, row
    assert cells[4:8] == ["n/a"] * 4, row  # the torch columns and their ratios
    assert int(cells[8]) > 0 and int(cells[9]) >= int(cells[8]), row  # op calls, launches per step
    assert int(cells[10]) == 2 * 2, row  # copies per step: a K and a V row per layer (2 layers), nothing staged
    assert float(cells[-1]) <= gpu_decode.TOLERANCE, row
    assert out.rstrip().splitlines()[-1].startswith("ok"), out
    print(f"smoke: {time.perf_counter() - began:.1f} s")

    # a cuda result that differs from cpu's is a failure, exit status 1 (the kernels made above are reused)
    real_step = gpu_decode.OiDecoder.step

    def wrong(self, token):
        logits = real_step(self, token)
        return logits + 1.0 if self.exe.sim.device == "cuda" else logits

    monkeypatch.setattr(gpu_decode.OiDecoder, "step", wrong)
    assert gpu_decode.main(["--smoke", "--sizes", "tiny", "--no-appends"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: tiny context 128 first step: oi-cuda differs from oi-cpu" in out, out
    row = next(line for line in out.splitlines() if line.startswith("tiny "))
    assert row.split()[2] == "FAILED" and float(row.split()[3]) > 0, row  # dropped; oi-cpu still timed

    # one that raises (the driver path has never run on a GPU) is reported the same way
    def raising(self, token):
        if self.exe.sim.device == "cuda":
            raise RuntimeError("boom")
        return real_step(self, token)

    monkeypatch.setattr(gpu_decode.OiDecoder, "step", raising)
    assert gpu_decode.main(["--smoke", "--sizes", "tiny"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: tiny context 128: oi-cuda step raised RuntimeError: boom" in out, out
    assert "KV append" in out  # the rest of the run went on


def test_without_a_gpu_or_emulation_it_says_so(monkeypatch, capsys):
    monkeypatch.delenv("OI_GPU_EMULATE", raising=False)
    from oi_compiler.runtime import cuda

    if cuda.unavailable_reason() is None:
        pytest.skip("a GPU is here")
    assert gpu_decode.main(["--smoke", "--sizes", "tiny", "--no-appends"]) == 2
    assert "device='cuda' unavailable" in capsys.readouterr().out


def test_synthetic_state_is_what_the_executors_load(tmp_path):
    dims = dict(gpu_decode.td.DIMS)
    model, _ = gpu_decode.model_and_weights(dims)
    exe = oi.Simulator(model, oi.Graph.load(gpu_decode.td.GRAPH), device="cpu").make_executor()
    gpu_decode.reach_context(exe, 40, dims, "synthetic", [1, 2], tmp_path)
    keys = exe.state("Kc")
    assert keys.shape == (dims["L"], 40, dims["Hk"], dims["Dh"]) and int(exe.state("pos")) == 40
    assert exe.table_sizes("Kc") == [dims["L"], 40] and float(np.std(keys)) > 0.5  # random rows, not zeros
    gpu_decode.td.graph_step(exe, 3)
    assert exe.table_sizes("Kc") == [dims["L"], 41]


class _FakeDeviceArray:
    def __init__(self, array: np.ndarray):
        self.array = np.ascontiguousarray(array)
        self.pointer = self.array.ctypes.data

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.array.shape, "typestr": self.array.dtype.str, "data": (self.pointer, False),
                "version": 3, "strides": None}  # fmt: skip


class _FakeLauncher:
    """runtime/cuda.py's functions that run_appends uses, on host memory."""

    def __init__(self):
        self.caches: list[_FakeDeviceArray] = []
        self.copies = 0

    def to_device(self, array):
        return _FakeDeviceArray(array.copy())

    def empty(self, shape, dtype):
        self.caches.append(_FakeDeviceArray(np.full(shape, np.nan, dtype)))
        return self.caches[-1]

    def copy(self, dst, src):
        d, s = dst.__cuda_array_interface__, src.__cuda_array_interface__
        nbytes = int(np.prod(s["shape"])) * np.dtype(s["typestr"]).itemsize
        cache = self.caches[-1].array
        assert cache.ctypes.data <= d["data"][0] and d["data"][0] + nbytes <= cache.ctypes.data + cache.nbytes
        ctypes.memmove(d["data"][0], s["data"][0], nbytes)
        self.copies += 1

    def time_ms(self, run, repeat=10, warmup=2):
        for _ in range(warmup):
            run()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            run()
            times.append((time.perf_counter() - t) * 1e3)
        return times

    def synchronize(self):
        pass


def test_append_table_with_device_copies(monkeypatch, capsys):
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    fake = _FakeLauncher()
    rows, failures = gpu_decode.run_appends([(4, 8)], rounds=2, window=3, fill=5, gpu=fake, torch=None,
                                            budget_end=time.perf_counter() + 60)  # fmt: skip
    assert failures == []
    (row,) = rows
    assert row["bytes"] == 128 and set(row["us"]) == {"oi-cuda", "DtoD events", "DtoD wall"}
    assert row["op_calls_per_append"] == 0
    written = fake.caches[0].array
    entry = np.random.default_rng(2).standard_normal((4, 8), dtype=np.float32)
    filled = ~np.isnan(written).all(axis=(1, 2))
    assert filled.sum() >= 6 and (written[filled] == entry).all()  # each copy landed on a whole row
    gpu_decode.print_append_table(rows, "", "n/a (no torch/GPU)")
    out = capsys.readouterr().out
    assert "DtoD events µs" in out and "4x8" in out


def test_torch_decoder_math_matches_oi_on_cpu_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    dims = dict(gpu_decode.td.DIMS, L=3, D=64, H=8, Hk=2, Dh=16, F=96, NV=80)
    model, weights = gpu_decode.model_and_weights(dims)
    exe = oi.Simulator(model, oi.Graph.load(gpu_decode.td.GRAPH), device="cpu").make_executor()
    gpu_decode.reach_context(exe, 100, dims, "synthetic", [1], tmp_path)
    on_cpu = gpu_decode.TorchGpuDecoder.upload(torch, weights, "cpu")
    eager = gpu_decode.TorchGpuDecoder(torch, on_cpu, dims, 160, "cpu")
    masked = gpu_decode.TorchGraphDecoder(torch, on_cpu, dims, 160, "cpu")
    for decoder in (eager, masked):
        decoder.load_cache(exe.state("Kc"), exe.state("Vc"))
    masked.pos.fill_(100)
    for token in (3, 17, 5):
        want = gpu_decode.td.graph_step(exe, token)
        assert gpu_decode.relative_error(eager.step(token), want) < 1e-5
        masked.token.fill_(token)
        with torch.no_grad():
            got = masked._body(120).numpy()  # what the graph replays, rows 0..119 with those after t masked
        assert gpu_decode.relative_error(got, want) < 1e-5
