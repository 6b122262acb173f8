"""The GPU launcher (runtime/cuda.py) and the GPU check script (benchmarks/gpu_check.py).

Without a GPU: the argument checks and the C-ABI packing are pure functions, tested against the
parameter lists of real PTX; the launcher itself runs against a fake `cuda.bindings.driver` whose
"device memory" is host memory and whose launches decode the kernelParams pointer array and run
the kernel's numpy recipe, so allocation, copies, packing, launches, events and driver errors
are exercised end to end, and so is `gpu_check.py run`. On this machine (no PyCUDA, no
cuda-bindings, no libcuda) the launcher must raise a clear `OiError`. The tests that need a real
GPU skip with the reason when there is none.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import re
import struct
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.runtime import cuda
from oi_compiler.runtime.cuda import (
    ExecutionError,
    GpuUnavailableError,
    Param,
    ParamBlock,
    as_signature,
    check_arguments,
    kernel_parameters,
    launch_dims,
)

ROOT = Path(__file__).resolve().parents[2]


def _load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gpu_check = _load_gpu_check()

SAXPY = [("memref", "f32", (256,), False), ("memref", "f32", (256,)), ("scalar", "f32", ())]


class FakeDeviceArray:
    """What CuPy and PyTorch expose: `__cuda_array_interface__` (here over host memory)."""

    def __init__(self, shape, typestr="<f4", strides=None, pointer=0x10000, readonly=False, **extra):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (pointer, readonly),
                                         "version": 3, "strides": strides, **extra}  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_launcher():
    cuda.reset()
    yield
    cuda.reset()


# ----------------------------------------------------------------------------- signatures and checks


def test_signature_entries_of_every_form() -> None:
    params = as_signature([("memref", "f32", (4, None)), {"kind": "scalar", "dtype": "index", "shape": []},
                           Param("memref", "float64", (2,), written=False), ("scalar", "i32", (), False)])  # fmt: skip
    assert params[0] == Param("memref", "f32", (4, None), True, None, 0, "arg0")
    assert params[1].kind == "scalar" and params[1].dtype == "index" and not params[1].written
    assert params[2].dtype == "f64" and not params[2].written
    with pytest.raises(ExecutionError, match="unsupported element type 'f7'"):
        as_signature([("memref", "f7", (2,))])
    with pytest.raises(ExecutionError, match="kind must be 'memref' or 'scalar'"):
        as_signature([("tensor", "f32", (2,))])
    with pytest.raises(ExecutionError, match="a scalar has no shape"):
        as_signature([("scalar", "f32", (2,))])


def test_the_signature_of_a_gpu_module_comes_from_the_backend_abi() -> None:
    from oi_compiler.graph import parse_mlir

    params = cuda.kernel_signature(parse_mlir(gpu_check.saxpy_exp(256), "k.mlir"), "saxpy_exp")
    assert [(p.kind, p.dtype, p.shape, p.written, p.name) for p in params] == [
        ("memref", "f32", (256,), False, "x"), ("memref", "f32", (256,), True, "y"), ("scalar", "f32", (), False, "a")]
    with pytest.raises(ExecutionError, match="no GPU kernel @nope"):
        cuda.kernel_signature(parse_mlir(gpu_check.saxpy_exp(256), "k.mlir"), "nope")


def test_numpy_arrays_pack_as_pointer_offset_sizes_strides() -> None:
    x, y = np.zeros(256, np.float32), np.zeros(256, np.float32)
    args = check_arguments("saxpy_exp", SAXPY, [x, y, 2.5])
    assert [a.kind for a in args] == ["host", "host", "scalar"]
    flat = kernel_parameters(args, {0: 0x1000, 1: 0x2000})
    assert flat == [("Q", 0x1000), ("q", 0), ("q", 256), ("q", 1), ("Q", 0x2000), ("q", 0), ("q", 256), ("q", 1),
                    ("f", 2.5)]  # fmt: skip
    two_d = check_arguments("k", [("memref", "f32", (3, None))], [np.zeros((3, 5), np.float32)])
    assert kernel_parameters(two_d, {0: 64}) == [("Q", 64), ("q", 0), ("q", 3), ("q", 5), ("q", 5), ("q", 1)]
    with pytest.raises(ExecutionError, match="no device copy"):
        kernel_parameters(args, {})


def test_the_packing_matches_the_ptx_entry_parameters() -> None:
    """As many parameters as the entry point declares, each of its size (the driver copies that much)."""
    from oi_compiler.backend.ptx import emit_ptx
    from oi_compiler.graph import parse_mlir

    sizes = {"u64": "Q", "b64": "Q", "f32": "f", "u32": "I", "b32": "I", "f64": "d"}
    for text, name, args in [
        (gpu_check.saxpy_exp(256), "saxpy_exp", [np.zeros(256, np.float32), np.zeros(256, np.float32), 1.0]),
        (gpu_check.gemm_tiled16(32, 48, 16), "gemm_tiled16",
         [np.zeros((32, 16), np.float32), np.zeros((16, 48), np.float32), np.zeros((32, 48), np.float32)]),
    ]:  # fmt: skip
        module = parse_mlir(text, "k.mlir")
        ptx = emit_ptx(module)
        declared = re.findall(r"\.param\s+\.(\w+)", ptx.split(f".entry {name}(", 1)[1].split(")", 1)[0])
        checked = check_arguments(name, cuda.kernel_signature(module, name), args)
        flat = kernel_parameters(checked, {i: 0x1000 * (i + 1) for i in range(len(args))})
        assert [struct.calcsize(code) for code, _ in flat] == [struct.calcsize(sizes[t]) for t in declared]


@pytest.mark.parametrize(("arg", "message"), [
    (np.zeros(256, np.float64), r"expected dtype float32 \(f32\), got float64"),
    (np.zeros(255, np.float32), r"expected shape 256, got \(255,\)"),
    (np.zeros((16, 16), np.float32), r"expected rank 1, got shape \(16, 16\)"),
    ([0.0] * 256, "expected a numpy array or a device array"),
])  # fmt: skip
def test_array_mismatches_are_execution_errors_naming_the_argument(arg, message) -> None:
    with pytest.raises(ExecutionError, match=r"GPU kernel @saxpy_exp argument 1 \(%arg1\): " + message):
        check_arguments("saxpy_exp", SAXPY, [np.zeros(256, np.float32), arg, 1.0])


def test_argument_counts_read_only_outputs_and_overlaps() -> None:
    x = np.zeros(256, np.float32)
    with pytest.raises(ExecutionError, match="takes 3 arguments, got 2"):
        check_arguments("saxpy_exp", SAXPY, [x, x])
    frozen = np.zeros(256, np.float32)
    frozen.flags.writeable = False
    check_arguments("saxpy_exp", SAXPY, [frozen, x, 1.0])  # x is only read
    with pytest.raises(ExecutionError, match="may write it but the array is read-only"):
        check_arguments("saxpy_exp", SAXPY, [x, frozen, 1.0])
    with pytest.raises(ExecutionError, match="arguments 0 and 1 overlap and one is written"):
        check_arguments("saxpy_exp", SAXPY, [x, x, 1.0])


def test_non_contiguous_numpy_arrays_are_copied_contiguous() -> None:
    strided = np.zeros((256, 2), np.float32)[:, 0]
    args = check_arguments("saxpy_exp", SAXPY, [strided, np.zeros(256, np.float32), 1.0])
    assert args[0].strides == (1,) and args[0].nbytes == 1024


@pytest.mark.parametrize(("element", "value", "packed"), [
    ("f32", 2, 2.0), ("f64", np.float32(0.5), 0.5), ("i32", -1, 0xFFFFFFFF), ("i32", np.int64(7), 7),
    ("index", -2, 2**64 - 2), ("i64", 2**63 - 1, 2**63 - 1), ("i1", True, 1), ("f16", 1.0, 0x3C00),
    ("i8", 255, 255), ("f32", np.array(3.0, np.float32), 3.0),
])  # fmt: skip
def test_scalars_pack_as_the_entry_point_takes_them(element, value, packed) -> None:
    (arg,) = check_arguments("k", [("scalar", element, ())], [value])
    assert arg.value == packed
    block = ParamBlock(kernel_parameters([arg]))
    assert block.values() == [packed]


@pytest.mark.parametrize(("element", "value", "message"), [
    ("i32", 1.5, r"expected an integer \(i32\), got 1.5"), ("i32", 2**32, "does not fit in i32"),
    ("f32", "2", "expected a f32 scalar, got str"), ("i1", 2, r"expected a boolean \(i1\)"),
    ("f32", np.zeros(2), "expected a f32 scalar, got ndarray"),
])  # fmt: skip
def test_bad_scalars_are_refused(element, value, message) -> None:
    with pytest.raises(ExecutionError, match=message):
        check_arguments("k", [("scalar", element, ())], [value])


def test_device_arrays_are_used_in_place() -> None:
    sig = [("memref", "f32", (4, 8))]
    (arg,) = check_arguments("k", sig, [FakeDeviceArray((4, 8), pointer=0xABC00)])
    assert arg.kind == "device" and arg.pointer == 0xABC00 and arg.strides == (8, 1) and arg.nbytes == 128
    assert kernel_parameters([arg]) == [("Q", 0xABC00), ("q", 0), ("q", 4), ("q", 8), ("q", 8), ("q", 1)]
    # explicit C-contiguous strides (as PyTorch gives them) and a size-1 dimension's odd stride are fine
    check_arguments("k", sig, [FakeDeviceArray((4, 8), strides=(32, 4))])
    check_arguments("k", [("memref", "f32", (1, 8))], [FakeDeviceArray((1, 8), strides=(4, 4))])
    # a strided layout in the signature takes the device array's strides
    (strided,) = check_arguments("k", [Param("memref", "f32", (4, 8), strides=(16, 1))],
                                 [FakeDeviceArray((4, 8), strides=(64, 4))])  # fmt: skip
    assert strided.strides == (16, 1)


@pytest.mark.parametrize(("array", "message"), [
    (FakeDeviceArray((4, 8), typestr="<f8"), r"expected dtype float32 \(f32\), got device array of float64"),
    (FakeDeviceArray((8, 4)), r"expected shape 4x8, got \(8, 4\)"),
    (FakeDeviceArray((4, 8), strides=(4, 16)), r"expected row-major \(C-contiguous\) strides \(8, 1\)"),
    (FakeDeviceArray((4, 8), strides=(32, 2)), "not whole elements"),
    (FakeDeviceArray((4, 8), readonly=True), "may write it but the device array is read-only"),
    (FakeDeviceArray((4, 8), mask=object()), "masked device arrays"),
    (FakeDeviceArray((4, 8), pointer=0), "null data pointer"),
])  # fmt: skip
def test_device_array_mismatches(array, message) -> None:
    with pytest.raises(ExecutionError, match=message):
        check_arguments("k", [("memref", "f32", (4, 8))], [array])


def test_overlapping_device_arrays_are_refused_when_one_is_written() -> None:
    sig = [("memref", "f32", (8,), False), ("memref", "f32", (8,))]
    check_arguments("k", sig, [FakeDeviceArray((8,), pointer=0x1000), FakeDeviceArray((8,), pointer=0x1020)])
    with pytest.raises(ExecutionError, match="overlap"):
        check_arguments("k", sig, [FakeDeviceArray((8,), pointer=0x1000), FakeDeviceArray((8,), pointer=0x1010)])


def test_launch_dimensions() -> None:
    assert launch_dims(4, 256) == ((4, 1, 1), (256, 1, 1))
    assert launch_dims((2, 3), [16, 16]) == ((2, 3, 1), (16, 16, 1))
    for grid, block, message in [((0,), 1, "grid x is 0"), (1, (32, 33), "a block of 1056 threads"),
                                 (1, (1, 1, 65), "block z is 65"), ((1, 70000), 1, "grid y is 70000"),
                                 (1.5, 1, "grid must be an int"), (1, (1, 1, 1, 1), "block must be an int")]:  # fmt: skip
        with pytest.raises(ExecutionError, match=message):
            launch_dims(grid, block)


def test_the_param_block_is_an_array_of_pointers_to_the_values() -> None:
    flat = [("Q", 0xDEADBEEF00), ("q", -1), ("f", 1.5), ("I", 7), ("d", 0.25), ("H", 0x3C00), ("B", 1)]
    block = ParamBlock(flat)
    assert block.values() == [0xDEADBEEF00, -1, 1.5, 7, 0.25, 0x3C00, 1]
    pointers = (ctypes.c_void_p * len(flat)).from_address(block.address)
    assert [pointers[i] - pointers[0] for i in range(len(flat))] == [8 * i for i in range(len(flat))]


# ----------------------------------------------------------------------------- no GPU here


def test_importing_the_compiler_or_the_launcher_imports_no_gpu_package() -> None:
    code = ("import sys, oi_compiler, oi_compiler.runtime.cuda; "
            "print([m for m in sys.modules if m.split('.')[0] in ('cuda', 'pycuda', 'cupy', 'torch')])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _no_launcher_packages(monkeypatch) -> None:
    for name in ("pycuda", "pycuda.driver", "cuda", "cuda.bindings", "cuda.bindings.driver"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


def test_without_a_launcher_the_error_says_what_is_missing_and_how_to_emulate(monkeypatch) -> None:
    _no_launcher_packages(monkeypatch)
    with pytest.raises(oi.OiError) as info:
        cuda.load_module(".version 8.0\n")
    assert isinstance(info.value, GpuUnavailableError) and isinstance(info.value, oi.ExecutionError)
    message = str(info.value)
    assert "no CUDA launcher" in message and "PyCUDA" in message and "cuda-bindings" in message
    assert "OI_GPU_EMULATE=1" in message
    assert cuda.unavailable_reason() is not None and not cuda.available()
    with pytest.raises(GpuUnavailableError):
        cuda.empty((4,), np.float32)


def test_an_unknown_launcher_choice_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("OI_CUDA_LAUNCHER", "opencl")
    with pytest.raises(GpuUnavailableError, match="OI_CUDA_LAUNCHER='opencl'"):
        cuda.launcher()


# ----------------------------------------------------------------------------- a fake driver


class FakeDriver(types.ModuleType):
    """`cuda.bindings.driver` over host memory. A launch decodes the kernelParams pointer array
    with the PTX entry's declared parameter types, rebuilds each memref (pointer, offset, sizes,
    strides) as a numpy view and runs the kernel's recipe from `recipes` in place."""

    NAMES = {0: "CUDA_SUCCESS", 100: "CUDA_ERROR_NO_DEVICE", 218: "CUDA_ERROR_INVALID_PTX",
             500: "CUDA_ERROR_NOT_FOUND", 1: "CUDA_ERROR_INVALID_VALUE"}  # fmt: skip
    CODES = {"u64": "Q", "b64": "Q", "f32": "f", "u32": "I", "b32": "I", "f64": "d", "u16": "H", "b16": "H", "u8": "B"}

    def __init__(self, recipes=None, init_error=None):
        super().__init__("cuda.bindings.driver")
        self.recipes = recipes or {}
        self.init_error = init_error
        self.memory: dict[int, ctypes.Array] = {}
        self.launches: list[tuple] = []
        self.calls: list[str] = []

    def __getattr__(self, name):
        raise AttributeError(name)

    def cuGetErrorName(self, err):
        return 0, self.NAMES.get(int(err), "CUDA_ERROR_UNKNOWN").encode()

    def cuGetErrorString(self, err):
        return 0, {100: b"no CUDA-capable device is detected", 218: b"a PTX JIT compilation failed"}.get(int(err), b"")

    def cuInit(self, flags):
        if isinstance(self.init_error, Exception):
            raise self.init_error
        return (self.init_error or 0,)

    def cuDeviceGetCount(self):
        return 0, 1

    def cuDeviceGet(self, index):
        return 0, index

    def cuDeviceGetName(self, length, dev):
        return 0, b"Fake GPU".ljust(length, b"\0")

    def cuDevicePrimaryCtxRetain(self, dev):
        return 0, "ctx"

    def cuCtxSetCurrent(self, ctx):
        return (0,)

    def cuModuleLoadData(self, image):
        text = bytes(image)
        assert text.endswith(b"\0")
        if b".entry" not in text:
            return 218, None
        return 0, text[:-1].decode()

    def cuModuleGetFunction(self, module, name):
        if f".entry {name.decode()}(" not in module:
            return 500, None
        declared = module.split(f".entry {name.decode()}(", 1)[1].split(")", 1)[0]
        return 0, (name.decode(), re.findall(r"\.param\s+\.(\w+)", declared))

    def cuMemAlloc(self, nbytes):
        buffer = (ctypes.c_char * nbytes)()
        self.memory[ctypes.addressof(buffer)] = buffer
        return 0, ctypes.addressof(buffer)

    def cuMemFree(self, pointer):
        return (0 if self.memory.pop(int(pointer), None) is not None else 1,)

    def cuMemcpyHtoD(self, dst, src, nbytes):
        ctypes.memmove(dst, src, nbytes)
        return (0,)

    cuMemcpyDtoH = cuMemcpyHtoD
    cuMemcpyDtoD = cuMemcpyHtoD

    def cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        name, declared = function
        pointers = (ctypes.c_void_p * len(declared)).from_address(params)
        values = [struct.unpack("<" + self.CODES[t], ctypes.string_at(pointers[i], struct.calcsize(self.CODES[t])))[0]
                  for i, t in enumerate(declared)]  # fmt: skip
        self.launches.append((name, (gx, gy, gz), (bx, by, bz), values))
        if name in self.recipes:
            self.recipes[name](values)
        return (0,)

    def cuCtxSynchronize(self):
        return (0,)

    def cuEventCreate(self, flags):
        return 0, [0.0]

    def cuEventRecord(self, event, stream):
        event[0] = time.perf_counter()
        return (0,)

    def cuEventSynchronize(self, event):
        return (0,)

    def cuEventElapsedTime(self, start, end):
        return 0, (end[0] - start[0]) * 1e3

    def cuEventDestroy(self, event):
        return (0,)


def memref_views(values, ranks, dtype=np.float32):
    """Split a decoded parameter list into numpy views of device memory (memrefs) and scalars."""
    out, i = [], 0
    for rank in ranks:
        if rank is None:
            out.append(values[i])
            i += 1
            continue
        pointer, offset = values[i], values[i + 1]
        sizes, strides = values[i + 2 : i + 2 + rank], values[i + 2 + rank : i + 2 + 2 * rank]
        itemsize = np.dtype(dtype).itemsize
        span = (sum((s - 1) * t for s, t in zip(sizes, strides)) + 1) if rank else 1
        flat = np.frombuffer((ctypes.c_char * (span * itemsize)).from_address(pointer + offset * itemsize), dtype)
        out.append(np.lib.stride_tricks.as_strided(flat, sizes, [t * itemsize for t in strides]))
        i += 2 + 2 * rank
    assert i == len(values)
    return out


def saxpy_recipe(values):
    x, y, a = memref_views(values, [1, 1, None])
    y[...] = a * np.exp(x) + y


def install_fake(monkeypatch, driver: FakeDriver) -> FakeDriver:
    package, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    package.bindings, bindings.driver = bindings, driver
    monkeypatch.setitem(sys.modules, "cuda", package)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", driver)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    return driver


@pytest.fixture(scope="module")
def saxpy_ptx() -> str:
    from oi_compiler.backend.ptx import emit_ptx
    from oi_compiler.graph import parse_mlir

    return emit_ptx(parse_mlir(gpu_check.saxpy_exp(256), "k.mlir"))


def test_a_launch_through_the_driver_api_copies_packs_and_copies_back(monkeypatch, saxpy_ptx) -> None:
    driver = install_fake(monkeypatch, FakeDriver({"saxpy_exp": saxpy_recipe}))
    assert cuda.launcher_name() == "cuda-bindings" and cuda.device_name() == "Fake GPU"
    x = np.linspace(-1, 1, 256, dtype=np.float32)
    y = np.ones(256, np.float32)
    frozen_x = x.copy()
    kernel = cuda.load_module(saxpy_ptx).function("saxpy_exp", SAXPY)
    kernel(x, y, 2.0, grid=1, block=(256, 1, 1))
    np.testing.assert_allclose(y, 2 * np.exp(frozen_x) + 1, rtol=1e-6)
    np.testing.assert_array_equal(x, frozen_x)
    (name, grid, block, values), = driver.launches
    assert (name, grid, block) == ("saxpy_exp", (1, 1, 1), (256, 1, 1))
    assert values[1:4] == [0, 256, 1] and values[5:8] == [0, 256, 1] and values[8] == 2.0
    assert driver.memory == {}  # the temporary device copies were freed


def test_device_arrays_in_place_and_timing(monkeypatch, saxpy_ptx) -> None:
    install_fake(monkeypatch, FakeDriver({"saxpy_exp": saxpy_recipe}))
    x = cuda.to_device(np.full(256, 0.0, np.float32))
    y = cuda.empty((256,), np.float32).set(np.full(256, 3.0, np.float32))
    kernel = cuda.load_module(saxpy_ptx).function("saxpy_exp", SAXPY)
    kernel(x, y, 0.5, grid=1, block=256)
    np.testing.assert_array_equal(y.get(), np.full(256, 3.5, np.float32))
    times = kernel.time(x, y, 0.5, grid=1, block=256, repeat=3)
    assert len(times) == 3 and all(t >= 0 for t in times)
    z = cuda.empty((256,), np.float32)
    cuda.copy(z, y)
    np.testing.assert_array_equal(z.get(), y.get())
    with pytest.raises(ExecutionError, match="time\\(\\) takes device arrays"):
        kernel.time(np.zeros(256, np.float32), y, 0.5, grid=1, block=256)
    with pytest.raises(ExecutionError, match="differ in size"):
        cuda.copy(cuda.empty((4,), np.float32), y)


def test_driver_errors_carry_the_driver_name_and_string(monkeypatch, saxpy_ptx) -> None:
    install_fake(monkeypatch, FakeDriver())
    with pytest.raises(ExecutionError, match="cuModuleLoadData failed: CUDA_ERROR_INVALID_PTX: a PTX JIT compilation failed"):
        cuda.load_module(".version 8.0\n.target sm_90\n")
    with pytest.raises(ExecutionError, match="cuModuleGetFunction failed: CUDA_ERROR_NOT_FOUND"):
        cuda.load_module(saxpy_ptx).function("missing", SAXPY)
    with pytest.raises(ExecutionError, match="load_module: expected PTX text"):
        cuda.load_module(b"bytes")


def test_checks_come_before_any_device_work(monkeypatch, saxpy_ptx) -> None:
    driver = install_fake(monkeypatch, FakeDriver({"saxpy_exp": saxpy_recipe}))
    kernel = cuda.load_module(saxpy_ptx).function("saxpy_exp", SAXPY)
    with pytest.raises(ExecutionError, match="expected dtype float32"):
        kernel(np.zeros(256, np.float32), np.zeros(256, np.float64), 1.0, grid=1, block=256)
    with pytest.raises(ExecutionError, match="block x is 2048"):
        kernel(np.zeros(256, np.float32), np.zeros(256, np.float32), 1.0, grid=1, block=2048)
    assert driver.launches == [] and driver.memory == {}


@pytest.mark.parametrize(("init_error", "message"), [
    (RuntimeError('"cuda" is an NVIDIA driver library and can only be found via system search'),
     "cuda-bindings is installed but the CUDA driver \\(libcuda.so.1\\) could not be loaded"),
    (100, "no usable CUDA device: CUDA driver: cuInit failed: CUDA_ERROR_NO_DEVICE"),
])  # fmt: skip
def test_cuda_bindings_without_a_driver_or_device(monkeypatch, init_error, message) -> None:
    install_fake(monkeypatch, FakeDriver(init_error=init_error))
    with pytest.raises(GpuUnavailableError, match=message) as info:
        cuda.load_module(".entry k(")
    assert "OI_GPU_EMULATE=1" in str(info.value)


def test_timing_checks_and_packs_once_so_only_launches_lie_between_the_events(monkeypatch, saxpy_ptx) -> None:
    driver = install_fake(monkeypatch, FakeDriver({"saxpy_exp": saxpy_recipe}))
    x, y = cuda.to_device(np.zeros(256, np.float32)), cuda.to_device(np.zeros(256, np.float32))
    kernel = cuda.load_module(saxpy_ptx).function("saxpy_exp", SAXPY)
    checks = []
    real_check = cuda.check_arguments
    monkeypatch.setattr(cuda, "check_arguments", lambda *a: checks.append(a) or real_check(*a))
    assert len(kernel.time(x, y, 1.0, grid=1, block=256, repeat=3, warmup=2)) == 3
    assert len(checks) == 1 and len(driver.launches) == 5
    assert all(values == driver.launches[0][3] for *_, values in driver.launches)
    np.testing.assert_array_equal(y.get(), np.full(256, 5.0, np.float32))  # 5 launches of y += exp(0)


class StickyErrorDriver(FakeDriver):
    """A launch that faults: the error shows at the synchronize, and every later call fails too."""

    NAMES = {**FakeDriver.NAMES, 700: "CUDA_ERROR_ILLEGAL_ADDRESS"}

    def cuCtxSynchronize(self):
        return (700,)

    def cuMemFree(self, pointer):
        self.memory.pop(int(pointer), None)
        return (700,)


def test_a_failed_launch_is_reported_not_the_failing_frees_after_it(monkeypatch, saxpy_ptx) -> None:
    driver = install_fake(monkeypatch, StickyErrorDriver())
    kernel = cuda.load_module(saxpy_ptx).function("saxpy_exp", SAXPY)
    with pytest.raises(ExecutionError, match="cuCtxSynchronize failed: CUDA_ERROR_ILLEGAL_ADDRESS"):
        kernel(np.zeros(256, np.float32), np.zeros(256, np.float32), 1.0, grid=1, block=256)
    assert driver.memory == {}  # both temporaries were still freed


class FakePyCuda(types.ModuleType):
    """`pycuda.driver` over host memory: a launch gets the arguments as numpy scalars, as
    PyCUDA's Function.__call__ packs them, and runs the kernel's recipe on them."""

    class Error(Exception):
        pass

    def __init__(self, recipes):
        super().__init__("pycuda.driver")
        self.recipes, self.launches, self.stack, self.memory = recipes, [], [], {}
        fake = self

        class Context:
            def push(self):
                fake.stack.append(self)

            def pop(self):
                fake.stack.pop()

            @staticmethod
            def synchronize():
                pass

        class Device:
            @staticmethod
            def count():
                return 1

            def __init__(self, index):
                self.index = index

            def name(self):
                return "Fake PyCUDA GPU"

            def retain_primary_context(self):
                return Context()

        self.Context, self.Device = Context, Device

    def init(self):
        pass

    def module_from_buffer(self, buffer):
        assert isinstance(buffer, bytes) and buffer.endswith(b"\0")
        fake = self

        class Module:
            def get_function(self, name):
                def function(*args, grid, block, shared=0):
                    assert all(isinstance(a, np.number) for a in args)
                    fake.launches.append((name, grid, block, args))
                    fake.recipes[name]([a.item() for a in args])

                return function

        return Module()

    def mem_alloc(self, nbytes):
        fake = self

        class Allocation:
            def __init__(self):
                self.buffer = (ctypes.c_char * nbytes)()
                fake.memory[ctypes.addressof(self.buffer)] = self

            def __int__(self):
                return ctypes.addressof(self.buffer)

            def free(self):
                fake.memory.pop(int(self))

        return Allocation()

    def memcpy_htod(self, dst, src):
        ctypes.memmove(dst, src.ctypes.data, src.nbytes)

    def memcpy_dtoh(self, dst, src):
        ctypes.memmove(dst.ctypes.data, src, dst.nbytes)


def test_the_pycuda_launcher_and_its_context_popped_at_exit(monkeypatch, saxpy_ptx) -> None:
    fake = FakePyCuda({"saxpy_exp": saxpy_recipe})
    package = types.ModuleType("pycuda")
    package.driver = fake
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", fake)
    at_exit = []
    monkeypatch.setattr(cuda.atexit, "register", at_exit.append)
    assert cuda.launcher_name() == "pycuda" and cuda.device_name() == "Fake PyCUDA GPU"
    assert len(fake.stack) == 1
    x, y = np.linspace(-1, 1, 256, dtype=np.float32), np.ones(256, np.float32)
    cuda.load_module(saxpy_ptx).function("saxpy_exp", SAXPY)(x, y, 2.0, grid=1, block=256)
    np.testing.assert_allclose(y, 2 * np.exp(x) + 1, rtol=1e-6)
    (_, grid, block, args), = fake.launches
    assert (grid, block) == ((1, 1, 1), (256, 1, 1)) and [a.itemsize for a in args] == [8] * 8 + [4]
    assert fake.memory == {}
    (pop,) = at_exit  # PyCUDA aborts at exit when a pushed context is left on its stack
    pop()
    assert fake.stack == []


# ----------------------------------------------------------------------------- gpu_check.py


@pytest.fixture(scope="module")
def emitted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu_kernels")
    gpu_check.emit(out, "sm_90", "small")
    return out


def test_emit_writes_ptx_that_ptxas_assembles_and_a_manifest(emitted) -> None:
    from oi_compiler.backend.ptx import assemble, ptxas_path

    manifest = json.loads((emitted / "manifest.json").read_text())
    names = [k["name"] for k in manifest["kernels"]]
    assert names == ["saxpy_exp", "reverse_blocks", "copy", "gemm_naive", "gemm_tiled16", "gemm_plan_72"]
    for kernel in manifest["kernels"]:
        ptx = (emitted / kernel["ptx"]).read_text()
        assert f".visible .entry {kernel['entry']}(" in ptx and ".target sm_90" in ptx
        if ptxas_path() is not None:
            assert kernel["ptxas"] == "sm_90"
            assemble(ptx, "sm_90")
        as_signature(gpu_check.signature(kernel))  # a valid launcher signature
    tiled = (emitted / "gemm_tiled16.ptx").read_text()
    assert "bar.sync" in tiled and "ld.shared" in tiled
    written = {k["name"]: [p["name"] for p in k["params"] if p["written"]] for k in manifest["kernels"]}
    assert written == {"saxpy_exp": ["y"], "reverse_blocks": ["x"], "copy": ["y"], "gemm_naive": ["C"],
                       "gemm_tiled16": ["C"], "gemm_plan_72": ["C"]}  # fmt: skip
    planned = (emitted / "gemm_plan_72.ptx").read_text()  # the compiler's own mapping of a GPU plan
    assert "bar.sync" in planned and "st.shared" in planned


def test_the_numpy_references(emitted) -> None:
    manifest = json.loads((emitted / "manifest.json").read_text())
    kernels = {k["name"]: k for k in manifest["kernels"]}
    inputs = gpu_check.make_inputs(kernels["reverse_blocks"])
    (out,) = gpu_check.expected_outputs(kernels["reverse_blocks"], inputs).values()
    assert out[0] == inputs["x"][255] and out[256] == inputs["x"][511] and out[255] == inputs["x"][0]
    inputs = gpu_check.make_inputs(kernels["gemm_tiled16"])
    assert inputs["A"].dtype == np.float32 and inputs["A"].shape == (64, 64) and not inputs["C"].any()
    want = gpu_check.expected_outputs(kernels["gemm_tiled16"], inputs)
    assert gpu_check.check_outputs(kernels["gemm_tiled16"], {"C": inputs["A"] @ inputs["B"]}, want)[0]
    bad = (inputs["A"] @ inputs["B"]).copy()
    bad[3, 5] += 0.01
    ok, err = gpu_check.check_outputs(kernels["gemm_tiled16"], {"C": bad}, want)
    assert not ok and err > 1e-4
    inputs = gpu_check.make_inputs(kernels["saxpy_exp"])
    assert isinstance(inputs["a"], np.float32)
    (y,) = gpu_check.expected_outputs(kernels["saxpy_exp"], inputs).values()
    np.testing.assert_allclose(y, 2 * np.exp(inputs["x"]) + inputs["y"], rtol=1e-6, atol=1e-6)
    assert gpu_check.relative_error(np.zeros(3), np.zeros(4)) == float("inf")
    assert gpu_check.relative_error(np.array([np.nan]), np.zeros(1)) == float("inf")


def _recipe_fake(manifest) -> FakeDriver:
    """A fake driver that runs each manifest kernel's numpy recipe on the decoded memrefs."""

    def make(kernel):
        ranks = [None if p["kind"] == "scalar" else len(p["shape"]) for p in kernel["params"]]

        def run(values):
            views = dict(zip([p["name"] for p in kernel["params"]], memref_views(values, ranks)))
            inputs = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in views.items()}
            for name, value in gpu_check.expected_outputs(kernel, inputs).items():
                views[name][...] = value

        return run

    return FakeDriver({k["entry"]: make(k) for k in manifest["kernels"]})


def test_the_run_half_end_to_end_on_a_fake_driver(monkeypatch, emitted, capsys) -> None:
    manifest = json.loads((emitted / "manifest.json").read_text())
    install_fake(monkeypatch, _recipe_fake(manifest))
    monkeypatch.delitem(sys.modules, "oi_gpu_launcher", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert gpu_check.run(emitted, rounds=2, repeat=2) == 0
    printed = capsys.readouterr().out
    assert "launcher cuda-bindings, device Fake GPU" in printed
    assert "6 passed, 0 failed" in printed
    for label in ("copy", "cuMemcpyDtoD", "gemm_tiled16", "GB/s", "TFLOP/s", "x cuMemcpyDtoD's"):
        assert label in printed
    results = json.loads((emitted / "results.json").read_text())
    assert results["kernels"]["gemm_naive"]["numpy"]["ok"]
    # the launcher was loaded by path, apart from the package's module
    assert sys.modules["oi_gpu_launcher"].__file__.endswith("oi_compiler/runtime/cuda.py")
    assert sys.modules["oi_gpu_launcher"].ExecutionError is not oi.ExecutionError


def test_the_run_half_reports_a_wrong_kernel(monkeypatch, emitted, capsys) -> None:
    manifest = json.loads((emitted / "manifest.json").read_text())
    fake = _recipe_fake(manifest)
    fake.recipes["copy"] = lambda values: None  # the copy kernel does nothing
    install_fake(monkeypatch, fake)
    monkeypatch.delitem(sys.modules, "oi_gpu_launcher", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert gpu_check.run(emitted, rounds=1, repeat=1) == 1
    assert "5 passed, 1 failed" in capsys.readouterr().out


def test_the_run_half_goes_on_past_a_kernel_the_driver_refuses(monkeypatch, emitted, capsys) -> None:
    manifest = json.loads((emitted / "manifest.json").read_text())
    fake = _recipe_fake(manifest)
    load = fake.cuModuleLoadData
    fake.cuModuleLoadData = lambda image: (218, None) if b"gemm_tiled16" in bytes(image) else load(image)
    install_fake(monkeypatch, fake)
    monkeypatch.delitem(sys.modules, "oi_gpu_launcher", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert gpu_check.run(emitted, rounds=1, repeat=1) == 1
    printed = capsys.readouterr().out
    assert "gemm_tiled16    FAIL: CUDA driver: cuModuleLoadData failed: CUDA_ERROR_INVALID_PTX" in printed
    assert "5 passed, 1 failed" in printed
    timed = [t["name"] for t in json.loads((emitted / "results.json").read_text())["timings"]]
    assert "gemm_tiled16" not in timed and "gemm_plan_72" in timed and "copy" in timed


class FakeTensor:
    """A PyTorch CUDA tensor over host memory (the fake driver's device memory)."""

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype, self.device = array.shape, array.dtype, "cuda"

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.array.ctypes.data, False),
                "version": 2, "strides": None}  # fmt: skip

    def cuda(self):
        return FakeTensor(self.array.copy())

    def cpu(self):
        return self

    def numpy(self):
        return self.array


def _fake_torch():
    torch = types.ModuleType("torch")
    torch.backends = types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=types.SimpleNamespace()),
                                           cudnn=types.SimpleNamespace())  # fmt: skip
    torch.cuda = types.SimpleNamespace(is_available=lambda: True)
    torch.from_numpy = FakeTensor
    torch.empty = lambda shape, dtype, device: FakeTensor(np.empty(shape, dtype))
    torch.matmul = lambda a, b, out: np.matmul(a.array, b.array, out=out.array)
    return torch


def test_each_gemm_is_timed_against_torch_matmul_of_its_own_shape(monkeypatch, emitted, capsys) -> None:
    manifest = json.loads((emitted / "manifest.json").read_text())
    install_fake(monkeypatch, _recipe_fake(manifest))
    monkeypatch.delitem(sys.modules, "oi_gpu_launcher", raising=False)
    monkeypatch.setitem(sys.modules, "torch", _fake_torch())
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert gpu_check.run(emitted, rounds=1, repeat=1) == 0
    printed = capsys.readouterr().out
    assert printed.count("torch tensors in place ok") == 3
    rows = {line.split()[0]: line for line in printed.splitlines() if line.startswith("gemm_")}
    assert "x torch.matmul 64x64x64's" in rows["gemm_naive"] and "x torch.matmul 64x64x64's" in rows["gemm_tiled16"]
    assert "x torch.matmul 72x72x72's" in rows["gemm_plan_72"]  # not the 64x64x64 product's time
    timed = [t["name"] for t in json.loads((emitted / "results.json").read_text())["timings"]]
    assert timed.count("torch.matmul 64x64x64") == 1 and timed.count("torch.matmul 72x72x72") == 1


def test_the_run_half_imports_neither_xdsl_nor_llvmlite(emitted) -> None:
    code = ("import runpy, sys; script = sys.argv[2]; sys.argv = ['gpu_check.py', 'run', sys.argv[1]]; "
            "sys.modules.update({'cuda': None, 'pycuda': None});\n"
            "try: runpy.run_path(script, run_name='__main__')\n"
            "except SystemExit as e: print('exit', e.code)\n"
            "print(sorted(m for m in ('xdsl', 'llvmlite', 'oi_compiler') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(emitted), str(ROOT / "benchmarks" / "gpu_check.py")],
                          capture_output=True, text=True, timeout=120, cwd="/")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "gpu_check: no GPU: no CUDA launcher" in done.stdout and "exit 2" in done.stdout
    assert done.stdout.strip().endswith("[]")


# ----------------------------------------------------------------------------- on a real GPU

def _gpu_reason() -> str | None:
    cuda.reset()
    reason = cuda.unavailable_reason()
    cuda.reset()
    return reason


_reason = _gpu_reason()
needs_gpu = pytest.mark.skipif(_reason is not None, reason=f"no GPU: {_reason}")


@needs_gpu
def test_saxpy_exp_on_the_gpu_matches_numpy(saxpy_ptx) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 256).astype(np.float32)
    y = rng.standard_normal(256).astype(np.float32)
    want = (2.0 * np.exp(x.astype(np.float64)) + y).astype(np.float32)
    kernel = cuda.load_module(saxpy_ptx).function("saxpy_exp", SAXPY)
    kernel(x, y, 2.0, grid=1, block=256)
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-6)
    dx, dy = cuda.to_device(x), cuda.to_device(np.zeros(256, np.float32))
    kernel(dx, dy, 1.0, grid=1, block=256)
    np.testing.assert_allclose(dy.get(), np.exp(x), rtol=2e-6)
    assert len(kernel.time(dx, dy, 1.0, grid=1, block=256, repeat=3)) == 3


@needs_gpu
def test_a_bad_launch_is_a_driver_error(saxpy_ptx) -> None:
    with pytest.raises(ExecutionError, match="CUDA_ERROR_INVALID_PTX|CUDA_ERROR_INVALID_IMAGE"):
        cuda.load_module(".version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k() { bogus; }\n")


@needs_gpu
def test_gpu_check_runs_the_small_manifest(emitted, capsys) -> None:
    sys.modules.pop("oi_gpu_launcher", None)
    assert gpu_check.run(emitted, rounds=1, repeat=2) == 0
    assert "6 passed, 0 failed" in capsys.readouterr().out
