"""`device="cuda"` through the real cuda-bindings package over a stand-in libcuda.so.1.

`tests/runtime/test_cuda_driver_path.py` replaces `cuda.bindings.driver` with a Python fake, so it
cannot catch a call the real package marshals differently than the fake assumed (an argument type
it refuses, a handle `int()` does not unwrap, a result tuple of another shape). Here the package is
the real one: `stub_libcuda.c`, built with gcc and loaded under the soname `libcuda.so.1` before
cuda-bindings looks for the driver, exports the driver API's C functions, and each forwards to a
ctypes hook that runs the fake's semantics (tagged device memory, copies checked by direction,
launches running the emulated kernels). The compiled launches call the same library's exported
`cuLaunchKernel` and `cuMemcpy`, as they would the driver's. Skipped without cuda-bindings or gcc.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.runtime import cuda, op_launches
from oi_compiler.runtime.device_memory import DriverDeviceMemory
from tests.device_check import device_check
from tests.runtime.test_cuda_driver_path import (
    BF16,
    RESET,
    EmulatingDriver,
    _kv_model,
    emulating_driver,
    kv_decode_steps,
    reset_steps,
)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("cuda.bindings") is None or shutil.which("gcc") is None,
                                reason="needs cuda-bindings (the test extra) and gcc")  # fmt: skip

STUB = Path(__file__).with_name("stub_libcuda.c")
ROOT = Path(__file__).resolve().parents[2]
R, P, U, D, Z = ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint64, ctypes.c_size_t
OUT_P = ctypes.POINTER(ctypes.c_void_p)
C_TYPES = {  # each hooked function's C signature (stub_libcuda.c)
    "cuInit": (U,),
    "cuDeviceGetCount": (ctypes.POINTER(ctypes.c_int),),
    "cuDeviceGet": (ctypes.POINTER(ctypes.c_int), ctypes.c_int),
    "cuDeviceGetName": (P, ctypes.c_int, ctypes.c_int),
    "cuDevicePrimaryCtxRetain": (OUT_P, ctypes.c_int),
    "cuCtxSetCurrent": (P,),
    "cuCtxSynchronize": (),
    "cuModuleLoadData": (OUT_P, ctypes.c_char_p),
    "cuModuleGetFunction": (OUT_P, P, ctypes.c_char_p),
    "cuMemAlloc": (ctypes.POINTER(D), Z),
    "cuMemFree": (D,),
    "cuMemcpyHtoD": (D, P, Z),
    "cuMemcpyDtoH": (P, D, Z),
    "cuMemcpyDtoD": (D, D, Z),
    "cuMemcpy": (D, D, Z),
    "cuMemsetD8": (D, ctypes.c_uint8, Z),
    "cuMemsetD16": (D, ctypes.c_uint16, Z),
    "cuMemsetD32": (D, ctypes.c_uint32, Z),
    "cuMemsetD2D32": (D, Z, ctypes.c_uint32, Z, Z),
    "cuLaunchKernel": (P, U, U, U, U, U, U, U, P, P, P),
    "cuEventCreate": (OUT_P, U),
    "cuEventRecord": (P, P),
    "cuEventSynchronize": (P,),
    "cuEventElapsedTime": (ctypes.POINTER(ctypes.c_float), P, P),
    "cuEventDestroy": (P,),
}
CONTEXT, EVENT = 0xC0, 0xE0  # the handles the stub hands out for the primary context and events


class StubDriver:
    """The hooks behind the stand-in library: each C call, decoded, to the fake's method of its name.

    A hook never raises into ctypes (which would print and return 0, a success): an exception is
    kept in `errors` and the call answers CUDA_ERROR_UNKNOWN (999)."""

    def __init__(self, library: ctypes.CDLL, fake: EmulatingDriver):
        self.library, self.fake = library, fake
        self.errors: list[BaseException] = []
        self.modules: list[str] = []  # module handle n + 1: its PTX text
        self.contexts: list[int] = []  # what cuCtxSetCurrent was given
        self.hooks = {name: ctypes.CFUNCTYPE(R, *types)(self._hook(name)) for name, types in C_TYPES.items()}
        for name, hook in self.hooks.items():
            assert library.oi_stub_hook(name.encode(), ctypes.cast(hook, P)) == 0, name

    def unhook(self) -> None:
        for name in self.hooks:
            self.library.oi_stub_hook(name.encode(), None)

    def _hook(self, name: str):
        method = getattr(self, "_" + name, None) or (lambda *args: self._answer(getattr(self.fake, name)(*args)))

        def hook(*args):
            try:
                return method(*args)
            except BaseException as e:  # noqa: BLE001 - kept for the test, never into ctypes
                self.errors.append(e)
                return 999

        return hook

    @staticmethod
    def _answer(result) -> int:
        return int(result[0] if isinstance(result, tuple) else result)

    def _cuDeviceGetCount(self, count):
        count[0] = self.fake.cuDeviceGetCount()[1]
        return 0

    def _cuDeviceGet(self, device, ordinal):
        device[0] = self.fake.cuDeviceGet(ordinal)[1]
        return 0

    def _cuDeviceGetName(self, name, length, device):
        text = self.fake.cuDeviceGetName(length, device)[1][: length - 1]
        ctypes.memmove(name, text + b"\0", len(text) + 1)
        return 0

    def _cuDevicePrimaryCtxRetain(self, context, device):
        context[0] = CONTEXT
        return 0

    def _cuCtxSetCurrent(self, context):
        self.contexts.append(context or 0)
        return self._answer(self.fake.cuCtxSetCurrent(context))

    def _cuModuleLoadData(self, module, image):
        err, text = self.fake.cuModuleLoadData(image + b"\0")
        self.modules.append(text)
        module[0] = len(self.modules)
        return err

    def _cuModuleGetFunction(self, function, module, name):
        err, handle = self.fake.cuModuleGetFunction(self.modules[module - 1], name)
        function[0] = handle
        return err

    def _cuMemAlloc(self, pointer, nbytes):
        err, pointer[0] = self.fake.cuMemAlloc(nbytes)
        return err

    def _cuMemcpy(self, dst, src, nbytes):
        return self.fake._copy(dst, src, nbytes)

    def _cuLaunchKernel(self, function, *rest):
        return self._answer(self.fake.cuLaunchKernel(function, *rest))

    def _cuEventCreate(self, event, flags):
        event[0] = EVENT
        return 0

    def _cuEventRecord(self, event, stream):
        return 0

    def _cuEventSynchronize(self, event):
        return 0

    def _cuEventElapsedTime(self, ms, start, end):
        ms[0] = 0.0
        return 0

    def _cuEventDestroy(self, event):
        return 0


@pytest.fixture(scope="module")
def stub_library(tmp_path_factory) -> ctypes.CDLL:
    """The stand-in, loaded globally: cuda-bindings' dlopen("libcuda.so.1") then finds it by soname."""
    target = tmp_path_factory.mktemp("stub_libcuda") / "libcuda.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-Wl,-soname,libcuda.so.1", "-o", str(target), str(STUB)],
                   check=True, capture_output=True)  # fmt: skip
    library = ctypes.CDLL(str(target), mode=ctypes.RTLD_GLOBAL)
    library.oi_stub_hook.argtypes = [ctypes.c_char_p, P]
    return library


@pytest.fixture
def stub(stub_library, monkeypatch) -> StubDriver:
    fake = emulating_driver(monkeypatch)
    for name in ("OI_GPU_EMULATE", "OI_CUDA_LAUNCHER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(__import__("sys").modules, "pycuda", None)  # the launcher is cuda-bindings
    monkeypatch.setitem(__import__("sys").modules, "pycuda.driver", None)
    op_launches._driver_library.cache_clear()
    cuda.reset()
    driver = StubDriver(stub_library, fake)
    yield driver
    gc.collect()  # executors freeing device memory through the hooks, before they go
    driver.unhook()
    op_launches._driver_library.cache_clear()
    cuda.reset()
    assert not driver.errors, driver.errors


def _pair(text, model, compile_after: str, monkeypatch):
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", compile_after)
    graph = oi.parse_graph(text) if "{" in text else oi.parse_graph((ROOT / text).read_text(), text)
    return [oi.Simulator(model, graph, device=d).make_executor() for d in ("cpu", "cuda")]


def test_the_launcher_is_the_real_cuda_bindings_over_the_stand_in(stub) -> None:
    from cuda.bindings import driver

    assert cuda.launcher_name() == "cuda-bindings" and cuda.launcher().driver is driver
    assert cuda.device_name() == "Emulating GPU"
    assert ctypes.CDLL("libcuda.so.1")._handle == stub.library._handle  # what the compiled launches call


@pytest.mark.parametrize("compile_after", ["0", "1"])
def test_kv_decode_matches_cpu(stub, monkeypatch, compile_after) -> None:
    cpu, gpu = _pair("examples/kv_decode.oi", _kv_model(), compile_after, monkeypatch)
    assert isinstance(gpu.memory, DriverDeviceMemory)
    kv_decode_steps(cpu, gpu)
    calls = stub.fake.calls
    assert calls["cuLaunchKernel"] == 30 and calls["cuMemcpyHtoD"] > 0 and calls["cuMemcpyDtoH"] > 0
    assert set(stub.contexts) == {CONTEXT}
    if compile_after == "1":
        assert gpu.launch_counts.compiled_calls > 0 and calls.get("compiled cuMemcpy", 0) > 0
    else:
        assert gpu.launch_counts.compiled_calls == 0


def test_bf16_operands(stub, monkeypatch) -> None:
    import ml_dtypes

    model = oi.Model(tensors={"w": np.linspace(-1, 1, 8).astype(ml_dtypes.bfloat16)})
    cpu, gpu = _pair(BF16, model, "1", monkeypatch)
    x = np.arange(16, dtype=np.float32).reshape(2, 8).astype(ml_dtypes.bfloat16)
    for _ in range(3):
        for exe in (cpu, gpu):
            exe.insert(x=x).step()
        np.testing.assert_array_equal(gpu.fetch("s"), cpu.fetch("s"))


def test_growth_rollback_and_checkpoints(stub, monkeypatch, tmp_path) -> None:
    """K grows past its first capacity (16) device to device; the step writing F[20] fails past
    @fixed after K[20]'s write, which the device-side undo log takes back."""
    text = """
    dynamic { x: f32[1, 4]; }
    volatile { keys: f32[T, 1, 4]; }
    persistent { t: i32 @init(0); K(pos): f32[1, 4] @table; F(pos): f32[1, 4] @table @fixed(pos = 20); }
    block entry {
        cache.write x >> K[t]; cache.write x >> F[t]; cache.increment t; cache.read K[0..t] >> keys;
        return;
    }
    """
    cpu, gpu = _pair(text, oi.Model(sizevars={"T": 4}), "1", monkeypatch)
    for step in range(22):
        x = np.full((1, 4), step, np.float32)
        outcomes = []
        for exe in (cpu, gpu):
            try:
                exe.insert(x=x).step()
                outcomes.append("ok")
            except oi.CacheError as e:
                outcomes.append(str(e))
        assert outcomes[0] == outcomes[1] and (outcomes[0] == "ok") == (step < 20), outcomes
    np.testing.assert_array_equal(gpu.fetch("keys"), cpu.fetch("keys"))
    for name in ("t", "K", "F"):
        np.testing.assert_array_equal(gpu.state(name), cpu.state(name), err_msg=name)
    assert stub.fake.calls["cuMemcpyDtoD"] >= 1
    gpu.save_state(tmp_path / "gpu.oistate")
    fresh = oi.Simulator(oi.Model(sizevars={"T": 4}), oi.parse_graph(text), device="cpu").make_executor()
    fresh.load_state(tmp_path / "gpu.oistate")
    np.testing.assert_array_equal(fresh.state("K"), cpu.state("K"))


def test_the_gpu_sessions_device_check(stub, monkeypatch, capsys) -> None:
    """benchmarks/gpu_device_check.py, the script a GPU session runs first, through the real package
    (`--quick`: all but the tiny decoder, ~7 s here)."""
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "16")  # the script sets it per check; put back after
    assert device_check().main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "device='cuda' on Emulating GPU through cuda-bindings" in out and "all checks passed" in out


def test_a_reset_refills_by_memset(stub, monkeypatch) -> None:
    reset_steps(*_pair(RESET, oi.Model(sizevars={"T": 4}), "1", monkeypatch), steps=3)
    assert stub.fake.calls["cuMemsetD32"] >= 3 and stub.fake.calls["cuMemsetD16"] >= 3
    assert stub.fake.calls["cuMemsetD2D32"] >= 6
