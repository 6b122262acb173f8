"""Launching PTX kernels on an NVIDIA GPU: PyCUDA when it imports, else the CUDA driver API
through `cuda-bindings` (`from cuda.bindings import driver`).

    from oi_compiler.runtime import cuda
    module = cuda.load_module(ptx)                               # PTX text (backend/ptx.py)
    saxpy = module.function("saxpy_exp", [("memref", "f32", (256,)),
                                          ("memref", "f32", (256,)), ("scalar", "f32", ())])
    saxpy(x, y, 2.0, grid=(1, 1, 1), block=(256, 1, 1))         # y is copied back after the launch
    times = saxpy.time(x_dev, y_dev, 2.0, grid=1, block=256)    # milliseconds per launch (events)

A kernel's entry point takes the C-ABI parameters of `backend/llvm.py`: for each memref its data
pointer (u64), its offset, one size per dim and one stride per dim (i64, in elements); for each
scalar its value (f32, f64, i32 as 32 bits, i64/index as 64 bits, i1 as a byte, f16/bf16 as
their 16-bit pattern). The signature (one entry per kernel argument) is what packs the
arguments: `(kind, dtype, shape)` tuples (`kind` "memref" or "scalar"; a shape's `None` is a
dynamic size), `Param`s, dicts with those keys, or `backend/llvm_abi.py`'s `MemRefParam` /
`ScalarParam` (`kernel_signature(module, name)` makes them from a gpu.module).

Arguments: numpy arrays (copied to the device, and back after the launch when the kernel may
write them, `Param.written`, True unless said otherwise), objects with
`__cuda_array_interface__` (CuPy, PyTorch, `DeviceArray`: used in place, so they must have
the dtype, shape and the row-major strides the signature asks for), or Python/numpy scalars.
Everything is checked before anything is launched; a mismatch is an `ExecutionError`, and so is
every error the driver returns (with its name and string: `CUDA_ERROR_INVALID_PTX: ...`).

Nothing here imports a GPU package before it is used: `import oi_compiler` never imports `cuda`
or `pycuda`. Without either launcher, or without a driver or device, the first use raises
`GpuUnavailableError` (an `ExecutionError`) saying what is missing and that `OI_GPU_EMULATE=1`
runs kernels on the CPU. `OI_CUDA_LAUNCHER=pycuda|cuda-bindings` picks one launcher;
`OI_CUDA_DEVICE=N` the device (0 by default).

The argument checks and packing (`check_arguments`, `kernel_parameters`, `ParamBlock`,
`launch_dims`) are pure functions of numpy and ctypes, testable without a GPU. This file imports
nothing of oi_compiler but its errors, so `benchmarks/gpu_check.py` can load it by path on a
machine that has numpy and a launcher and not the compiler.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import os
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if __name__ == "oi_compiler.runtime.cuda":
    from oi_compiler.errors import ExecutionError
else:  # loaded by file path (benchmarks/gpu_check.py): errors.py beside it, by path too

    def _load_errors():
        name = "_oi_standalone_errors"
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "errors.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return sys.modules[name]

    ExecutionError = _load_errors().ExecutionError  # noqa: N816


class GpuUnavailableError(ExecutionError):
    """No GPU to launch on: no launcher package, no CUDA driver, or no device."""


EMULATE_HINT = "set OI_GPU_EMULATE=1 to run GPU kernels in the CPU emulation instead"

# ----------------------------------------------------------------------------- element types


def _bfloat16() -> np.dtype | None:
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


#: element name -> (the numpy dtypes an array may have, the struct code of a scalar parameter)
_ELEMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "i1": (("bool",), "B"),
    "i8": (("int8", "uint8"), "B"),
    "i16": (("int16", "uint16"), "H"),
    "i32": (("int32", "uint32"), "I"),
    "i64": (("int64", "uint64"), "Q"),
    "index": (("int64", "uint64"), "Q"),
    "f16": (("float16",), "H"),  # its bit pattern, as the C ABI passes 16-bit floats
    "bf16": (("bfloat16",), "H"),
    "f32": (("float32",), "f"),
    "f64": (("float64",), "d"),
}
_INT_BITS = {"i1": 1, "i8": 8, "i16": 16, "i32": 32, "i64": 64, "index": 64}
_ALIASES = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16", "int8": "i8",
            "int16": "i16", "int32": "i32", "int64": "i64", "bool": "i1", "uint8": "i8", "uint16": "i16",
            "uint32": "i32", "uint64": "i64"}  # fmt: skip


def scalar_code(element: str) -> str:
    """The `struct` code of a scalar kernel argument of type `element` in its 8-byte parameter slot."""
    return _ELEMENTS[element][1]


def element_dtypes(element: str) -> tuple[np.dtype, ...]:
    """The numpy dtypes an array of memref elements `element` may have (signless ints take both)."""
    names = _ELEMENTS[element][0]
    if names == ("bfloat16",):
        bf16 = _bfloat16()
        return (bf16,) if bf16 is not None else ()
    return tuple(np.dtype(n) for n in names)


# ----------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class Param:
    """One kernel argument: a memref (`shape`, None for a dynamic size; `strides` None for the
    identity layout, else static strides in elements, None entries dynamic) or a scalar."""

    kind: str  # "memref" | "scalar"
    dtype: str  # element name: f32, i32, index...
    shape: tuple[int | None, ...] = ()
    written: bool = True  # memrefs: the kernel may write it (numpy arrays are copied back)
    strides: tuple[int | None, ...] | None = None
    offset: int = 0
    name: str = ""

    @property
    def rank(self) -> int:
        return len(self.shape)


def as_param(entry: Any, index: int = 0) -> Param:
    """A `Param` from a signature entry (see the module docstring); ExecutionError if malformed."""
    if isinstance(entry, Param):
        param = entry
    elif isinstance(entry, dict):
        fields = {k: entry[k] for k in ("kind", "dtype", "shape", "written", "strides", "offset", "name") if k in entry}
        param = Param(**fields)
    elif isinstance(entry, (tuple, list)) and len(entry) in (3, 4):
        param = Param(entry[0], entry[1], entry[2], *([bool(entry[3])] if len(entry) == 4 else []))
    elif hasattr(entry, "element"):  # backend/llvm_abi.py's MemRefParam / ScalarParam
        if hasattr(entry, "shape"):
            param = Param("memref", entry.element, tuple(entry.shape), bool(entry.written), entry.strides,
                          entry.offset if entry.offset is not None else 0, entry.name)  # fmt: skip
        else:
            param = Param("scalar", entry.element, (), False, name=entry.name)
    else:
        raise ExecutionError(f"GPU signature entry {index}: expected (kind, dtype, shape), got {entry!r}")
    dtype = _ALIASES.get(str(param.dtype), str(param.dtype))
    if param.kind not in ("memref", "scalar"):
        raise ExecutionError(f"GPU signature entry {index}: kind must be 'memref' or 'scalar', got {param.kind!r}")
    if dtype not in _ELEMENTS:
        raise ExecutionError(f"GPU signature entry {index}: unsupported element type {param.dtype!r} "
                             f"(known: {', '.join(_ELEMENTS)})")  # fmt: skip
    shape = tuple(None if d is None or (isinstance(d, int) and d < 0) else int(d) for d in (param.shape or ()))
    if param.kind == "scalar" and shape:
        raise ExecutionError(f"GPU signature entry {index}: a scalar has no shape, got {param.shape}")
    strides = None if param.strides is None else tuple(None if s is None else int(s) for s in param.strides)
    if strides is not None and len(strides) != len(shape):
        raise ExecutionError(f"GPU signature entry {index}: {len(strides)} strides for rank {len(shape)}")
    written = bool(param.written) if param.kind == "memref" else False
    return Param(param.kind, dtype, shape, written, strides, int(param.offset or 0), param.name or f"arg{index}")


def as_signature(signature: Sequence[Any]) -> tuple[Param, ...]:
    return tuple(as_param(entry, i) for i, entry in enumerate(signature))


def kernel_signature(module, name: str) -> tuple[Param, ...]:
    """The signature of kernel `name` of a gpu.module (xDSL `ModuleOp`), from the backend's ABI
    (which also knows which memrefs the kernel may write). Imports the compiler (xDSL)."""
    from xdsl.dialects import func

    from oi_compiler.backend.llvm_abi import function_abi
    from oi_compiler.backend.ptx import kernel_functions

    functions, kernels = kernel_functions(module)
    if name not in kernels:
        raise ExecutionError(f"no GPU kernel @{name} (kernels: {', '.join(kernels)})")
    op = next(op for op in functions.ops if isinstance(op, func.FuncOp) and op.sym_name.data == name)
    return as_signature(function_abi(op).params)


# ----------------------------------------------------------------------------- checking arguments


@dataclass
class Argument:
    """A checked argument: `kind` "host" (a numpy array to copy), "device" (used in place) or
    "scalar"; the C-ABI fields come from `kernel_parameters`."""

    param: Param
    kind: str
    value: Any  # the numpy array, the device object, or the scalar's packed value
    shape: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()  # elements
    pointer: int = 0  # device arrays: the data pointer
    nbytes: int = 0


def _row_major(shape: Sequence[int]) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(strides[::-1])


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.number, np.bool_)) and not isinstance(value, np.ndarray)


def scalar_value(param: Param, value: object, where: str) -> int | float:
    """What a scalar argument packs as (an int of the parameter's width, or a float); checked."""
    element = param.dtype
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not _is_number(value):
        raise ExecutionError(f"{where}: expected a {element} scalar, got {type(value).__name__}")
    if element in ("f32", "f64"):
        return float(value)
    if element in ("f16", "bf16"):
        dtype = element_dtypes(element)
        if not dtype:
            raise ExecutionError(f"{where}: bf16 scalars need ml_dtypes")
        return int(np.array(value, dtype=dtype[0]).view(np.uint16))
    if isinstance(value, (float, np.floating)):
        raise ExecutionError(f"{where}: expected an integer ({element}), got {value!r}")
    number, bits = int(value), _INT_BITS[element]
    if element == "i1":
        if number not in (0, 1):
            raise ExecutionError(f"{where}: expected a boolean (i1), got {value!r}")
        return number
    if not -(1 << (bits - 1)) <= number < (1 << bits):
        raise ExecutionError(f"{where}: {value!r} does not fit in {element}")
    return number & ((1 << bits) - 1)  # two's complement, as the unsigned parameter carries it


def device_array_info(obj: object, where: str) -> tuple[int, tuple[int, ...], np.dtype, tuple[int, ...] | None, bool]:
    """(pointer, shape, dtype, strides in bytes or None for C-contiguous, read-only) of an object
    with `__cuda_array_interface__`; ExecutionError when the interface is malformed or masked."""
    try:
        interface = obj.__cuda_array_interface__  # type: ignore[attr-defined]
        pointer, readonly = interface["data"]
        shape = tuple(int(d) for d in interface["shape"])
        dtype = np.dtype(interface["typestr"])
        strides = interface.get("strides")
    except (KeyError, TypeError, ValueError) as e:
        raise ExecutionError(f"{where}: malformed __cuda_array_interface__ ({e})") from None
    if interface.get("mask") is not None:
        raise ExecutionError(f"{where}: masked device arrays are not supported")
    strides = None if strides is None else tuple(int(s) for s in strides)
    return int(pointer or 0), shape, dtype, strides, bool(readonly)


def _check_shape(param: Param, shape: tuple[int, ...], where: str) -> None:
    if len(shape) != param.rank:
        raise ExecutionError(f"{where}: expected rank {param.rank}, got shape {shape}")
    if any(d is not None and d != n for d, n in zip(param.shape, shape)):
        wanted = "x".join("?" if d is None else str(d) for d in param.shape) or "()"
        raise ExecutionError(f"{where}: expected shape {wanted}, got {shape}")


def _check_strides(param: Param, shape: tuple[int, ...], strides: tuple[int, ...], where: str) -> None:
    expected = param.strides if param.strides is not None else _row_major(shape)
    for dim, (want, got) in enumerate(zip(expected, strides)):
        if want is not None and want != got and shape[dim] > 1:
            layout = "row-major (C-contiguous) strides" if param.strides is None else "strides"
            raise ExecutionError(f"{where}: expected {layout} {tuple(expected)} (elements), got {strides} in dim {dim}")


def _memref_argument(param: Param, arg: object, where: str) -> Argument:
    if isinstance(arg, np.ndarray):
        dtypes = element_dtypes(param.dtype)
        if arg.dtype not in dtypes:
            wanted = " or ".join(str(d) for d in dtypes) or "bfloat16 (ml_dtypes)"
            raise ExecutionError(f"{where}: expected dtype {wanted} ({param.dtype}), got {arg.dtype}")
        _check_shape(param, arg.shape, where)
        if param.written and not arg.flags.writeable:
            raise ExecutionError(f"{where}: the kernel may write it but the array is read-only")
        shape = tuple(arg.shape)
        strides = _row_major(shape)  # the device copy is C-contiguous
        _check_strides(param, shape, strides, where)
        return Argument(param, "host", arg, shape, strides, 0, int(arg.nbytes))
    if hasattr(arg, "__cuda_array_interface__"):
        pointer, shape, dtype, byte_strides, readonly = device_array_info(arg, where)
        dtypes = element_dtypes(param.dtype)
        if dtype not in dtypes:
            wanted = " or ".join(str(d) for d in dtypes) or "bfloat16"
            raise ExecutionError(f"{where}: expected dtype {wanted} ({param.dtype}), got device array of {dtype}")
        _check_shape(param, shape, where)
        if byte_strides is None:
            strides = _row_major(shape)
        else:
            if len(byte_strides) != len(shape) or any(s % dtype.itemsize for s in byte_strides):
                raise ExecutionError(f"{where}: strides {byte_strides} (bytes) are not whole elements of {dtype}")
            strides = tuple(s // dtype.itemsize for s in byte_strides)
        _check_strides(param, shape, strides, where)
        if param.written and readonly:
            raise ExecutionError(f"{where}: the kernel may write it but the device array is read-only")
        count = int(np.prod(shape)) if shape else 1
        if pointer == 0 and count:
            raise ExecutionError(f"{where}: the device array has a null data pointer")
        return Argument(param, "device", arg, shape, strides, pointer, count * dtype.itemsize)
    raise ExecutionError(f"{where}: expected a numpy array or a device array (__cuda_array_interface__), "
                         f"got {type(arg).__name__}")  # fmt: skip


def check_arguments(kernel: str, signature: Sequence[Any], args: Sequence[object]) -> list[Argument]:
    """Check `args` against the signature; ExecutionError naming the kernel and argument if not."""
    params = as_signature(signature)
    if len(args) != len(params):
        raise ExecutionError(f"GPU kernel @{kernel} takes {len(params)} arguments, got {len(args)}")
    checked = []
    for i, (param, arg) in enumerate(zip(params, args)):
        where = f"GPU kernel @{kernel} argument {i} (%{param.name})"
        if param.kind == "scalar":
            checked.append(Argument(param, "scalar", scalar_value(param, arg, where)))
        else:
            checked.append(_memref_argument(param, arg, where))
    _check_overlaps(kernel, checked)
    return checked


def _check_overlaps(kernel: str, args: list[Argument]) -> None:
    """Memref parameters are noalias: no written argument may share memory with another."""
    arrays = [(i, a) for i, a in enumerate(args) if a.kind != "scalar"]
    for n, (i, a) in enumerate(arrays):
        for j, b in arrays[n + 1 :]:
            if not (a.param.written or b.param.written) or a.kind != b.kind:
                continue
            if a.kind == "host":
                overlap = np.may_share_memory(a.value, b.value)
            else:
                overlap = a.pointer < b.pointer + b.nbytes and b.pointer < a.pointer + a.nbytes and a.nbytes and b.nbytes
            if overlap:
                raise ExecutionError(f"GPU kernel @{kernel} arguments {i} and {j} overlap and one is written "
                                     "(memref arguments are noalias)")  # fmt: skip


def kernel_parameters(args: Sequence[Argument], host_pointers: dict[int, int] | None = None) -> list[tuple[str, int | float]]:
    """The entry point's C-ABI parameters as (struct code, value) pairs: per memref its data
    pointer (`Q`), offset, sizes and strides (`q`, elements); per scalar its value. A host
    array's pointer is its device copy's, `host_pointers[argument index]`."""
    flat: list[tuple[str, int | float]] = []
    for i, arg in enumerate(args):
        if arg.kind == "scalar":
            flat.append((_ELEMENTS[arg.param.dtype][1], arg.value))
            continue
        pointer = (host_pointers or {}).get(i) if arg.kind == "host" else arg.pointer
        if pointer is None:
            raise ExecutionError(f"argument {i}: no device copy of the host array")
        offset = arg.param.offset
        itemsize = (element_dtypes(arg.param.dtype) or (np.dtype("uint16"),))[0].itemsize
        flat.append(("Q", pointer - offset * itemsize))
        flat.extend(("q", v) for v in (offset, *arg.shape, *arg.strides))
    return flat


class ParamBlock:
    """`cuLaunchKernel`'s kernelParams: one 8-byte slot per parameter holding its value, and an
    array of pointers to the slots (`address`). Keep the block alive until the launch returns."""

    SLOT = 8

    def __init__(self, flat: Sequence[tuple[str, int | float]]):
        self.flat = list(flat)
        count = max(len(self.flat), 1)
        self.storage = (ctypes.c_uint64 * count)()
        base = ctypes.addressof(self.storage)
        for i, (code, value) in enumerate(self.flat):
            struct.pack_into("<" + code, self.storage, i * self.SLOT, value)
        self.pointers = (ctypes.c_void_p * count)(*[base + i * self.SLOT for i in range(count)])

    @property
    def address(self) -> int:
        return ctypes.addressof(self.pointers)

    def values(self) -> list[int | float]:
        """Read back through the pointer array (what the driver copies from)."""
        out = []
        for i, (code, _) in enumerate(self.flat):
            raw = ctypes.string_at(self.pointers[i], struct.calcsize("<" + code))
            out.append(struct.unpack("<" + code, raw)[0])
        return out


_GRID_LIMITS = (2**31 - 1, 65535, 65535)
_BLOCK_LIMITS = (1024, 1024, 64)


def launch_dims(grid: object, block: object) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(grid, block) as three positive ints each (an int or a shorter tuple is padded with 1s);
    ExecutionError outside CUDA's limits."""

    def dims(value: object, what: str, limits: tuple[int, ...]) -> tuple[int, int, int]:
        items = (value,) if isinstance(value, (int, np.integer)) else tuple(value) if isinstance(value, (tuple, list)) else None
        if items is None or not 1 <= len(items) <= 3 or not all(isinstance(v, (int, np.integer)) for v in items):
            raise ExecutionError(f"GPU launch: {what} must be an int or 1 to 3 ints, got {value!r}")
        out = tuple(int(v) for v in items) + (1,) * (3 - len(items))
        for axis, (n, limit) in enumerate(zip(out, limits)):
            if not 1 <= n <= limit:
                raise ExecutionError(f"GPU launch: {what} {'xyz'[axis]} is {n}, must be in 1..{limit}")
        return out  # type: ignore[return-value]

    g, b = dims(grid, "grid", _GRID_LIMITS), dims(block, "block", _BLOCK_LIMITS)
    if b[0] * b[1] * b[2] > 1024:
        raise ExecutionError(f"GPU launch: a block of {b[0] * b[1] * b[2]} threads (most is 1024)")
    return g, b


# ----------------------------------------------------------------------------- launchers


MEMSETS = {1: "cuMemsetD8", 2: "cuMemsetD16", 4: "cuMemsetD32"}  # (asynchronous to the host on device memory)


class _DriverLauncher:
    """The CUDA driver API through cuda-bindings; every call's error tuple is checked."""

    name = "cuda-bindings"

    def __init__(self, driver) -> None:
        self.driver = driver
        try:
            self._call("cuInit", 0)
        except GpuUnavailableError:
            raise
        except ExecutionError as e:
            raise GpuUnavailableError(f"no usable CUDA device: {e.message}; {EMULATE_HINT}") from None
        except Exception as e:  # noqa: BLE001 - cuda-pathfinder: libcuda.so not found
            raise GpuUnavailableError(f"cuda-bindings is installed but the CUDA driver (libcuda.so.1) could not "
                                      f"be loaded: {e}; {EMULATE_HINT}") from None  # fmt: skip
        count = self._call("cuDeviceGetCount")
        index = int(os.environ.get("OI_CUDA_DEVICE", "0"))
        if not 0 <= index < int(count):
            raise GpuUnavailableError(f"no CUDA device {index} ({count} found); {EMULATE_HINT}")
        self.device = self._call("cuDeviceGet", index)
        self.context = self._call("cuDevicePrimaryCtxRetain", self.device)
        self._call("cuCtxSetCurrent", self.context)

    def _call(self, name: str, *args: object) -> Any:
        try:
            result = getattr(self.driver, name)(*args)
        except TypeError as e:
            raise ExecutionError(f"CUDA driver: {name}: {e}") from None
        err, rest = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if int(err) != 0:
            raise ExecutionError(f"CUDA driver: {name} failed: {self.error_text(err)}")
        return rest[0] if len(rest) == 1 else rest

    def error_text(self, err: object) -> str:
        name = string = None
        try:
            e1, name = self.driver.cuGetErrorName(err)
            e2, string = self.driver.cuGetErrorString(err)
        except Exception:  # noqa: BLE001
            pass
        name = name.decode() if isinstance(name, bytes) else (name or getattr(err, "name", f"error {int(err)}"))
        string = string.decode() if isinstance(string, bytes) else (string or "")
        return f"{name}: {string}" if string else str(name)

    def current(self) -> None:
        self._call("cuCtxSetCurrent", self.context)

    def _ptr(self, pointer: int) -> Any:
        return getattr(self.driver, "CUdeviceptr", int)(pointer)

    def _stream(self) -> Any:
        return getattr(self.driver, "CUstream", int)(0)  # the legacy default stream

    def device_name(self) -> str:
        raw = self._call("cuDeviceGetName", 256, self.device)
        return raw.split(b"\0", 1)[0].decode() if isinstance(raw, bytes) else str(raw)

    def load(self, ptx: str) -> Any:
        self.current()
        return self._call("cuModuleLoadData", ptx.encode() + b"\0")

    def get_function(self, module: Any, name: str) -> Any:
        return self._call("cuModuleGetFunction", module, name.encode())

    def alloc(self, nbytes: int) -> int:
        self.current()
        return int(self._call("cuMemAlloc", max(int(nbytes), 1)))

    def free(self, pointer: int) -> None:
        self._call("cuMemFree", self._ptr(pointer))

    def htod(self, pointer: int, array: np.ndarray) -> None:
        if array.nbytes:
            self._call("cuMemcpyHtoD", self._ptr(pointer), array.ctypes.data, array.nbytes)

    def dtoh(self, array: np.ndarray, pointer: int) -> None:
        if array.nbytes:
            self._call("cuMemcpyDtoH", array.ctypes.data, self._ptr(pointer), array.nbytes)

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        if nbytes:
            self._call("cuMemcpyDtoD", self._ptr(dst), self._ptr(src), nbytes)

    def memset(self, pointer: int, unit: int, value: int, count: int) -> None:
        """`count` units of `unit` bytes (1, 2, 4 or 8) from `pointer` become `value` (8: each half by
        a cuMemsetD2D32 of one 4-byte column, pitch 8)."""
        if not count:
            return
        if unit == 8:
            for half in (0, 1):
                word = (value >> 32 * half) & 0xFFFFFFFF
                self._call("cuMemsetD2D32", self._ptr(pointer + 4 * half), 8, word, 1, count)
        else:
            self._call(MEMSETS[unit], self._ptr(pointer), value, count)

    def launch(self, function: Any, grid: tuple[int, ...], block: tuple[int, ...], flat, shared: int) -> None:
        self.current()
        params = flat if isinstance(flat, ParamBlock) else ParamBlock(flat)  # alive until the call returns
        self._call("cuLaunchKernel", function, *grid, *block, shared, self._stream(), params.address, 0)

    def synchronize(self) -> None:
        self._call("cuCtxSynchronize")

    def event(self) -> Any:
        return self._call("cuEventCreate", 0)

    def record(self, event: Any) -> None:
        self._call("cuEventRecord", event, self._stream())

    def elapsed_ms(self, start: Any, end: Any) -> float:
        self._call("cuEventSynchronize", end)
        return float(self._call("cuEventElapsedTime", start, end))

    def destroy_event(self, event: Any) -> None:
        self._call("cuEventDestroy", event)


class _PyCudaLauncher:
    """PyCUDA (the `gpu` extra): the same operations through pycuda.driver."""

    name = "pycuda"

    def __init__(self, cuda) -> None:
        self.cuda = cuda
        try:
            cuda.init()
            index = int(os.environ.get("OI_CUDA_DEVICE", "0"))
            if not 0 <= index < cuda.Device.count():
                raise GpuUnavailableError(f"no CUDA device {index} ({cuda.Device.count()} found); {EMULATE_HINT}")
            self.dev = cuda.Device(index)
            self.context = self.dev.retain_primary_context()
            self.context.push()
            atexit.register(self._pop_context)
        except GpuUnavailableError:
            raise
        except Exception as e:  # noqa: BLE001 - pycuda.driver.Error, RuntimeError without a driver
            raise GpuUnavailableError(f"PyCUDA could not open a CUDA device: {e}; {EMULATE_HINT}") from None
        self._allocations: dict[int, Any] = {}

    def _pop_context(self) -> None:
        """At exit: PyCUDA aborts the process ("The context stack was not empty upon module
        cleanup") when a pushed context is still on its stack, so pop ours, as
        pycuda.autoprimaryctx does."""
        try:
            self.context.pop()
        except Exception:  # noqa: BLE001 - already popped, or the driver is gone
            pass

    def _wrap(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except self.cuda.Error as e:
            raise ExecutionError(f"CUDA driver (PyCUDA): {what} failed: {type(e).__name__}: {e}") from None

    def device_name(self) -> str:
        return self.dev.name()

    def load(self, ptx: str) -> Any:
        return self._wrap("module load", lambda: self.cuda.module_from_buffer(ptx.encode() + b"\0"))

    def get_function(self, module: Any, name: str) -> Any:
        return self._wrap(f"get_function({name})", lambda: module.get_function(name))

    def alloc(self, nbytes: int) -> int:
        allocation = self._wrap("mem_alloc", lambda: self.cuda.mem_alloc(max(int(nbytes), 1)))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, pointer: int) -> None:
        allocation = self._allocations.pop(pointer, None)
        if allocation is not None:
            self._wrap("free", allocation.free)

    def htod(self, pointer: int, array: np.ndarray) -> None:
        if array.nbytes:
            self._wrap("memcpy_htod", lambda: self.cuda.memcpy_htod(pointer, array))

    def dtoh(self, array: np.ndarray, pointer: int) -> None:
        if array.nbytes:
            self._wrap("memcpy_dtoh", lambda: self.cuda.memcpy_dtoh(array, pointer))

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        if nbytes:
            self._wrap("memcpy_dtod", lambda: self.cuda.memcpy_dtod(dst, src, nbytes))

    def memset(self, pointer: int, unit: int, value: int, count: int) -> None:
        if not count:
            return
        if unit == 8:
            for half in (0, 1):
                word = (value >> 32 * half) & 0xFFFFFFFF
                self._wrap("memset_d2d32", lambda: self.cuda.memset_d2d32(pointer + 4 * half, 8, word, 1, count))
        else:
            name = f"memset_d{8 * unit}"
            self._wrap(name, lambda: getattr(self.cuda, name)(pointer, value, count))

    def launch(self, function: Any, grid: tuple[int, ...], block: tuple[int, ...], flat, shared: int) -> None:
        flat = flat.flat if isinstance(flat, ParamBlock) else flat
        values = [np.dtype("<" + code).type(value) for code, value in flat]
        self._wrap("launch", lambda: function(*values, grid=grid, block=block, shared=shared))

    def synchronize(self) -> None:
        self._wrap("synchronize", self.cuda.Context.synchronize)

    def event(self) -> Any:
        return self.cuda.Event()

    def record(self, event: Any) -> None:
        self._wrap("event record", event.record)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        self._wrap("event synchronize", end.synchronize)
        return float(start.time_till(end))

    def destroy_event(self, event: Any) -> None:
        pass


_lock = threading.Lock()
_launcher: Any = None
_unavailable: str | None = None


def _select() -> Any:
    choice = os.environ.get("OI_CUDA_LAUNCHER", "").strip().lower()
    missing = []
    if choice in ("", "pycuda"):
        try:
            import pycuda.driver as pycuda_driver
        except ImportError as e:
            missing.append(f"PyCUDA ({e}; pip install 'oi_compiler[gpu]')")
        else:
            return _PyCudaLauncher(pycuda_driver)
    if choice in ("", "cuda-bindings", "cuda_bindings"):
        try:
            from cuda.bindings import driver
        except ImportError as e:
            try:  # cuda-python before 12.6 named the same module `cuda.cuda`
                from cuda import cuda as driver
            except ImportError:
                missing.append(f"cuda-bindings ({e}; pip install cuda-bindings)")
            else:
                return _DriverLauncher(driver)
        else:
            return _DriverLauncher(driver)
    if choice not in ("", "pycuda", "cuda-bindings", "cuda_bindings"):
        raise GpuUnavailableError(f"OI_CUDA_LAUNCHER={choice!r}: expected 'pycuda' or 'cuda-bindings'")
    raise GpuUnavailableError(f"no CUDA launcher: {' and '.join(missing)} cannot be imported; {EMULATE_HINT}")


def launcher() -> Any:
    """The launcher chosen at first use (PyCUDA, else cuda-bindings); GpuUnavailableError if none
    works. The outcome is kept: later calls answer at once (`reset()` forgets it)."""
    global _launcher, _unavailable
    with _lock:
        if _launcher is None and _unavailable is None:
            try:
                _launcher = _select()
            except GpuUnavailableError as e:
                _unavailable = e.message
        if _launcher is None:
            raise GpuUnavailableError(_unavailable or "no CUDA launcher")
        return _launcher


def reset() -> None:
    """Forget the chosen launcher (for tests, or after installing one)."""
    global _launcher, _unavailable
    with _lock:
        _launcher, _unavailable = None, None


def unavailable_reason() -> str | None:
    """None when a GPU can be launched on, else why not (for pytest skips)."""
    try:
        launcher()
    except GpuUnavailableError as e:
        return e.message
    return None


def available() -> bool:
    return unavailable_reason() is None


def launcher_name() -> str:
    return launcher().name


def device_name() -> str:
    return launcher().device_name()


def synchronize() -> None:
    launcher().synchronize()


# ----------------------------------------------------------------------------- device memory


class DeviceArray:
    """A C-contiguous array in device memory owned by this launcher (freed with the object).
    It has `__cuda_array_interface__`, so kernels (and CuPy, PyTorch) take it in place."""

    def __init__(self, shape: Sequence[int], dtype: Any, _launcher: Any = None):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize if self.shape else self.dtype.itemsize
        self._launcher = _launcher or launcher()
        self.pointer = self._launcher.alloc(self.nbytes)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.pointer, False), "version": 3,
                "strides": None}  # fmt: skip

    def get(self) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        self._launcher.dtoh(out, self.pointer)
        return out

    def set(self, array: np.ndarray) -> DeviceArray:
        array = np.ascontiguousarray(array, dtype=self.dtype)
        if array.shape != self.shape:
            raise ExecutionError(f"DeviceArray.set: shape {array.shape}, expected {self.shape}")
        self._launcher.htod(self.pointer, array)
        return self

    def free(self) -> None:
        if self.pointer:
            pointer, self.pointer = self.pointer, 0
            self._launcher.free(pointer)

    def __del__(self) -> None:
        try:
            self.free()
        except Exception:  # noqa: BLE001 - at interpreter exit the driver may be gone
            pass


def to_device(array: np.ndarray) -> DeviceArray:
    array = np.ascontiguousarray(array)
    return DeviceArray(array.shape, array.dtype).set(array)


def empty(shape: Sequence[int], dtype: Any) -> DeviceArray:
    return DeviceArray(shape, dtype)


def copy(dst: object, src: object) -> None:
    """Device-to-device copy of `src` into `dst` (both `__cuda_array_interface__`, same bytes)."""
    d_ptr, d_shape, d_type, _, _ = device_array_info(dst, "copy destination")
    s_ptr, s_shape, s_type, _, _ = device_array_info(src, "copy source")
    nbytes = int(np.prod(s_shape)) * s_type.itemsize
    if int(np.prod(d_shape)) * d_type.itemsize != nbytes:
        raise ExecutionError(f"copy: {d_shape} {d_type} and {s_shape} {s_type} differ in size")
    launcher().dtod(d_ptr, s_ptr, nbytes)


def time_ms(run: Callable[[], object], repeat: int = 10, warmup: int = 2) -> list[float]:
    """GPU milliseconds of each of `repeat` calls of `run` (which enqueues work), between events."""
    current = launcher()
    for _ in range(warmup):
        run()
    start, end = current.event(), current.event()
    times = []
    try:
        for _ in range(repeat):
            current.record(start)
            run()
            current.record(end)
            times.append(current.elapsed_ms(start, end))
    finally:
        current.destroy_event(start)
        current.destroy_event(end)
    return times


# ----------------------------------------------------------------------------- modules and kernels


class GpuFunction:
    """A kernel of a loaded module with its signature; call it with grid=, block=."""

    def __init__(self, module: GpuModule, name: str, signature: Sequence[Any]):
        self.module = module
        self.name = name
        self.signature = as_signature(signature)
        self._handle = module._launcher.get_function(module._handle, name)

    def __call__(self, *args: object, grid: object, block: object, shared: int = 0, sync: bool = True) -> None:
        """Launch. numpy arrays are copied in (and back when written), which synchronizes;
        with device arrays only, `sync=False` returns once the launch is queued."""
        dims = launch_dims(grid, block)
        checked = check_arguments(self.name, self.signature, args)
        current = self.module._launcher
        copies: dict[int, int] = {}
        try:
            for i, arg in enumerate(checked):
                if arg.kind == "host":
                    copies[i] = current.alloc(arg.nbytes)
                    current.htod(copies[i], np.ascontiguousarray(arg.value))
            current.launch(self._handle, *dims, kernel_parameters(checked, copies), int(shared))
            if sync or copies:
                current.synchronize()
            for i, arg in enumerate(checked):
                if arg.kind == "host" and arg.param.written:
                    out = np.empty(arg.shape, arg.value.dtype)
                    current.dtoh(out, copies[i])
                    arg.value[...] = out
        except BaseException:
            # after a failed launch (a sticky error such as CUDA_ERROR_ILLEGAL_ADDRESS) cuMemFree
            # fails too: free what can be freed and report the first error, not the free's
            for pointer in copies.values():
                try:
                    current.free(pointer)
                except ExecutionError:
                    pass
            raise
        for pointer in copies.values():
            current.free(pointer)

    def time(self, *args: object, grid: object, block: object, repeat: int = 10, warmup: int = 2,
             shared: int = 0) -> list[float]:  # fmt: skip
        """GPU milliseconds of each of `repeat` launches (device arrays, so nothing is copied)."""
        if any(isinstance(a, np.ndarray) for a in args):
            raise ExecutionError(f"GPU kernel @{self.name}: time() takes device arrays (to_device), not numpy arrays")
        # checked and packed once: between a launch's two events only the launch itself runs on
        # the host (the events time the stream, so host work there would count as GPU time)
        dims = launch_dims(grid, block)
        params = ParamBlock(kernel_parameters(check_arguments(self.name, self.signature, args)))
        current, handle = self.module._launcher, self._handle
        return time_ms(lambda: current.launch(handle, *dims, params, int(shared)), repeat, warmup)


class GpuModule:
    """PTX loaded into the current device's primary context."""

    def __init__(self, ptx: str):
        self._launcher = launcher()
        self.ptx = ptx
        self._handle = self._launcher.load(ptx)

    def function(self, name: str, signature: Sequence[Any]) -> GpuFunction:
        return GpuFunction(self, name, signature)


def load_module(ptx: str) -> GpuModule:
    """Load PTX text (JIT-compiled by the driver for the device); GpuUnavailableError without a GPU."""
    if not isinstance(ptx, str):
        raise ExecutionError(f"load_module: expected PTX text, got {type(ptx).__name__}")
    return GpuModule(ptx)
