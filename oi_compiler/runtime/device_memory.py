"""Device memory of `device="cuda"`: where the data the host step only hands to kernels and copies lives.

`--place-buffers` marks the variables whose data the compiled host step never loads or stores
element by element (`VarLayout.device`); `NativeState` allocates those here, the step's copies that
may touch them go through `copy` (`runtime/op_launches.py`), and the op kernels take their addresses
as they are. A `DeviceMemory` is one of:

- `EmulatedDeviceMemory` (`OI_GPU_EMULATE=1`): host memory behind *tagged* addresses. Every address
  it hands out has bit 52 set, which no user-space pointer has on x86-64 or AArch64 (48-bit address
  spaces, and AArch64's ignored top byte is bits 56-63), so a load or store of one by the compiled
  host code faults at once instead of working by accident: the emulation checks the split that a
  real GPU needs. The emulated kernels and this class reach the memory through `host_address`.
- `DriverDeviceMemory`: `cuMemAlloc`'d memory through `runtime/cuda.py`'s launcher; copies are
  `cuMemcpyHtoD`/`DtoH`/`DtoD` by which side is on the device. **Never run on a GPU** (none was
  available where it was written).

`DeviceBuffer` is what `NativeState` holds for such a variable instead of a numpy array: an
allocation with a shape and dtype, read with `get` and written with `set`, each an explicit copy.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from oi_compiler.backend.jit import row_major
from oi_compiler.runtime.compiled_launches import STEP_LOCK

TAG = 1 << 52
ALIGN = 256  # cuMemAlloc's alignment, kept by the emulation too


@dataclass
class BufferView:
    """A memref as the C ABI passes it (a call of the host from the compiled step, a copy's side):
    elements at `pointer[offset + sum(i*stride)]`, host or device memory."""

    pointer: int
    offset: int
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: np.dtype

    @property
    def count(self) -> int:
        return math.prod(self.sizes)

    def contiguous(self) -> bool:
        """Row-major contiguous (strides of size-1 dims do not matter)."""
        expected = 1
        for size, stride in zip(reversed(self.sizes), reversed(self.strides)):
            if size != 1 and stride != expected:
                return False
            expected *= size
        return True

    def span(self) -> tuple[int, int]:
        """The byte range [start, end) its elements lie in (empty for no element)."""
        if self.count == 0:
            return (0, 0)
        start = self.pointer + self.offset * self.dtype.itemsize
        last = sum((s - 1) * st for s, st in zip(self.sizes, self.strides))
        return (start, start + (last + 1) * self.dtype.itemsize)

    def fields(self) -> list[int]:
        """The C-ABI fields of a row-major contiguous buffer with offset 0 (what an op kernel takes)."""
        return [self.pointer + self.offset * self.dtype.itemsize, 0, *self.sizes, *row_major(self.sizes)]


class DeviceRanges:
    """The allocations of a `DeviceMemory` as sorted [start, end) address ranges, in arrays that
    compiled code searches too (`runtime/compiled_launches.py`): `cell` holds the address of the
    starts, of the ends, and their count. They change only under `STEP_LOCK`, which a step holds
    while its compiled code may search them (a buffer the garbage collector frees on another
    thread waits for the step's end)."""

    def __init__(self) -> None:
        self.starts = np.zeros(16, np.int64)
        self.ends = np.zeros(16, np.int64)
        self.count = 0
        self.cell = np.zeros(3, np.int64)
        self._publish()

    def _publish(self) -> None:
        self.cell[:] = (self.starts.ctypes.data, self.ends.ctypes.data, self.count)

    def add(self, start: int, end: int) -> None:
        with STEP_LOCK:
            self._add(start, end)

    def _add(self, start: int, end: int) -> None:
        n = self.count
        if n == len(self.starts):  # grow both; compiled code reads the new addresses from `cell`
            self.starts = np.concatenate([self.starts, np.zeros(n, np.int64)])
            self.ends = np.concatenate([self.ends, np.zeros(n, np.int64)])
        at = int(np.searchsorted(self.starts[:n], start))
        self.starts[at + 1 : n + 1] = self.starts[at:n].copy()
        self.ends[at + 1 : n + 1] = self.ends[at:n].copy()
        self.starts[at], self.ends[at] = start, end
        self.count = n + 1
        self._publish()

    def remove(self, start: int) -> bool:
        with STEP_LOCK:
            return self._remove(start)

    def _remove(self, start: int) -> bool:
        n = self.count
        at = int(np.searchsorted(self.starts[:n], start))
        if at == n or self.starts[at] != start:
            return False
        self.starts[at : n - 1] = self.starts[at + 1 : n].copy()
        self.ends[at : n - 1] = self.ends[at + 1 : n].copy()
        self.count = n - 1
        self._publish()
        return True

    def contains(self, address: int) -> bool:
        at = int(np.searchsorted(self.starts[: self.count], address, side="right")) - 1
        return at >= 0 and address < int(self.ends[at])


class DeviceMemory:
    """Allocations on the device, and copies between them and host memory (see the module docstring)."""

    name = ""
    ranges: DeviceRanges  # every live allocation
    def alloc(self, nbytes: int) -> int:
        raise NotImplementedError

    def free(self, address: int) -> None:
        raise NotImplementedError

    def is_device(self, address: int) -> bool:
        raise NotImplementedError

    def copy_bytes(self, dst: int, src: int, nbytes: int) -> None:
        """`nbytes` bytes from `src` to `dst`, each a host or a device address."""
        raise NotImplementedError

    # --- built on the four above ------------------------------------------------------------------
    def upload(self, address: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        self.copy_bytes(address, array.ctypes.data, array.nbytes)

    def download(self, address: int, array: np.ndarray) -> None:
        assert array.flags.c_contiguous and array.flags.writeable
        self.copy_bytes(array.ctypes.data, address, array.nbytes)

    def copy(self, dst: BufferView, src: BufferView) -> None:
        """`memref.copy`: every element of `src` to the same place in `dst` (of equal sizes), one
        `copy_bytes` per run of the trailing dims both lay out contiguously."""
        for (target, source), nbytes in _runs(dst, src):
            self.copy_bytes(target, source, nbytes)

    def fill(self, dst: BufferView, pattern: bytes) -> None:
        """Every element of `dst` becomes `pattern` (one element's bytes), one copy per run."""
        for (target,), nbytes in _runs(dst):
            block = np.frombuffer(pattern * (nbytes // len(pattern)), np.uint8)
            self.copy_bytes(target, block.ctypes.data, nbytes)


def _runs(*views: BufferView):
    """((address in each view, ...), bytes) for each run of elements contiguous in every view (views
    of equal sizes and element size), in row-major order."""
    first = views[0]
    if math.prod(first.sizes) == 0:
        return
    item = first.dtype.itemsize
    run, inner = 1, len(first.sizes)  # elements per run; dims [inner:] make one run
    while inner > 0:
        size = first.sizes[inner - 1]
        if size != 1 and any(v.strides[inner - 1] != run for v in views):
            break
        run *= size
        inner -= 1
    bases = [v.pointer + v.offset * item for v in views]
    for index in np.ndindex(*first.sizes[:inner]):
        yield tuple(b + sum(i * st for i, st in zip(index, v.strides)) * item for b, v in zip(bases, views)), run * item


class EmulatedDeviceMemory(DeviceMemory):
    """Host memory behind tagged addresses (see the module docstring)."""

    name = "emulated"

    def __init__(self) -> None:
        self._blocks: dict[int, np.ndarray] = {}  # tagged address -> its backing bytes
        self.ranges = DeviceRanges()

    def alloc(self, nbytes: int) -> int:
        nbytes = max(int(nbytes), 1)
        backing = np.zeros(nbytes + ALIGN, np.uint8)
        start = -backing.ctypes.data % ALIGN
        address = (backing.ctypes.data + start) | TAG
        self._blocks[address] = backing
        self.ranges.add(address, address + nbytes)
        return address

    def free(self, address: int) -> None:
        if self._blocks.pop(address, None) is not None:
            self.ranges.remove(address)

    def is_device(self, address: int) -> bool:
        return bool(address & TAG)

    @staticmethod
    def host_address(address: int) -> int:
        """Where the emulation keeps the bytes of `address` (the address itself when on the host)."""
        return address & ~TAG

    def copy_bytes(self, dst: int, src: int, nbytes: int) -> None:
        if nbytes > 0:
            ctypes.memmove(dst & ~TAG, src & ~TAG, nbytes)


class DriverDeviceMemory(DeviceMemory):
    """`cuMemAlloc`'d memory through `runtime/cuda.py`'s launcher. Untested on a GPU."""

    name = "cuda"

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher
        self.ranges = DeviceRanges()
        # the context current on the calling thread (cuda-bindings: `insert`, `fetch`, a free by the
        # garbage collector may run on a thread that never stepped); PyCUDA's is its launcher's own
        self._current = getattr(launcher, "current", lambda: None)

    def alloc(self, nbytes: int) -> int:
        nbytes = max(int(nbytes), 1)
        self._current()
        address = self.launcher.alloc(nbytes)
        self.ranges.add(address, address + nbytes)
        return address

    def free(self, address: int) -> None:
        if self.ranges.remove(address):
            self._current()
            self.launcher.free(address)

    def is_device(self, address: int) -> bool:
        return self.ranges.contains(address)

    def fill(self, dst: BufferView, pattern: bytes) -> None:
        """On the device, a pattern of repeated 1, 2, 4 or 8 bytes by cuMemsetD8/16/32 (8: two
        cuMemsetD2D32) per run, which does not wait for the kernels queued before it as a copy from
        the host would; else copies."""
        unit = next((u for u in (1, 2, 4, 8) if len(pattern) % u == 0 and pattern == pattern[:u] * (len(pattern) // u)),
                    None)  # fmt: skip
        memset = getattr(self.launcher, "memset", None)
        if unit is None or memset is None:
            return super().fill(dst, pattern)
        value = int.from_bytes(pattern[:unit], "little")
        for (target,), nbytes in _runs(dst):
            if self.is_device(target) and target % unit == 0:
                self._current()
                memset(target, unit, value, nbytes // unit)
            else:
                block = np.frombuffer(pattern * (nbytes // len(pattern)), np.uint8)
                self.copy_bytes(target, block.ctypes.data, nbytes)

    def copy_bytes(self, dst: int, src: int, nbytes: int) -> None:
        if nbytes <= 0:
            return
        on_device = self.is_device(dst), self.is_device(src)
        if any(on_device):
            self._current()
        if on_device == (True, True):
            self.launcher.dtod(dst, src, nbytes)
        elif on_device == (True, False):
            self.launcher.htod(dst, _host_bytes(src, nbytes))
        elif on_device == (False, True):
            self.launcher.dtoh(_host_bytes(dst, nbytes), src)
        else:
            ctypes.memmove(dst, src, nbytes)


def _host_bytes(address: int, nbytes: int) -> np.ndarray:
    return np.frombuffer((ctypes.c_char * nbytes).from_address(address), np.uint8)


class DeviceBuffer:
    """One allocation of `memory` holding a row-major array of `shape` and `dtype` (freed with it)."""

    def __init__(self, memory: DeviceMemory, shape: Sequence[int], dtype: Any):
        self.memory = memory
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.address = memory.alloc(self.nbytes)

    @classmethod
    def of(cls, memory: DeviceMemory, array: np.ndarray) -> DeviceBuffer:
        """A buffer holding a copy of `array`."""
        buffer = cls(memory, array.shape, array.dtype)
        memory.upload(buffer.address, array)
        return buffer

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def get(self, key: tuple = ()) -> np.ndarray:
        """A host copy of the buffer, or of `buffer[key]`; only the rows a leading index or unit-step
        slice of `key` selects are copied from the device."""
        lead = key[0] if key else None
        if not self.shape:
            whole = np.empty((), self.dtype)
            self.memory.download(self.address, whole)
            return whole[key] if key else whole
        if isinstance(lead, (int, np.integer)):
            start, stop, rest = int(lead), int(lead) + 1, (0, *key[1:])
        elif isinstance(lead, slice) and lead.step in (None, 1):
            start, stop, _ = lead.indices(self.shape[0])
            stop, rest = max(stop, start), (slice(None), *key[1:])
        else:
            start, stop, rest = 0, self.shape[0], key
        row = math.prod(self.shape[1:]) * self.dtype.itemsize
        part = np.empty((stop - start, *self.shape[1:]), self.dtype)
        self.memory.download(self.address + start * row, part)
        return np.array(part[rest]) if rest else part

    def set(self, value: Any) -> None:
        """Every element from `value` (broadcast to the buffer's shape)."""
        self.memory.upload(self.address, np.broadcast_to(np.asarray(value, self.dtype), self.shape))

    def set_entry(self, key: tuple[int, ...], value: Any) -> None:
        """`buffer[key] = value` for a key of leading indices (one contiguous entry)."""
        entry = self.shape[len(key):]
        offset = sum(k * math.prod(self.shape[d + 1:]) for d, k in enumerate(key)) * self.dtype.itemsize
        self.memory.upload(self.address + offset, np.broadcast_to(np.asarray(value, self.dtype), entry))

    def fill(self, element: bytes, rows: slice = slice(None)) -> None:
        """Every element (of the leading index's `rows`, a unit-step slice) becomes `element` (one
        element's bytes): a fill on the device (a memset where it can), not a copy from the host."""
        shape, address = self.shape, self.address
        if rows != slice(None):
            start, stop, _ = rows.indices(shape[0])
            address += start * math.prod(shape[1:]) * self.dtype.itemsize
            shape = (max(stop - start, 0), *shape[1:])
        self.memory.fill(BufferView(address, 0, shape, row_major(shape), self.dtype), element)

    def set_rows(self, start: int, rows: np.ndarray) -> None:
        """`buffer[start : start + len(rows)] = rows` (whole rows of the leading index)."""
        row = math.prod(self.shape[1:]) * self.dtype.itemsize
        self.memory.upload(self.address + start * row, np.ascontiguousarray(rows, self.dtype))

    def copy_box_from(self, other: DeviceBuffer) -> None:
        """`self[:a, :b, ...] = other` for `other` no larger in any dim (a table's growth)."""
        if other.size == 0:
            return
        self.memory.copy(BufferView(self.address, 0, other.shape, row_major(self.shape), self.dtype),
                         BufferView(other.address, 0, other.shape, row_major(other.shape), other.dtype))  # fmt: skip

    def __del__(self) -> None:
        try:
            self.memory.free(self.address)
        except Exception:  # noqa: BLE001 - at exit the driver may be gone
            pass


def device_memory() -> DeviceMemory:
    """The emulation's memory when `OI_GPU_EMULATE=1`, else the GPU's (a `GpuUnavailableError`, an
    `oi.OiError`, saying what is missing when there is none)."""
    from oi_compiler.runtime.gpu_emulation import emulation_requested

    if emulation_requested():
        return EmulatedDeviceMemory()
    from oi_compiler.runtime import cuda

    return DriverDeviceMemory(cuda.launcher())
