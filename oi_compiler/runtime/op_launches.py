"""The host side of `--launch-op-kernels`: the compiled step's calls that launch each op's GPU kernels.

`device="cuda"` compiles the step as the cpu does, except that each op's nest is a call of
`@oi_launch_<signature>(id, inputs..., output, settings...) -> i32` (`passes/launch_op_kernels.py`).
`bind_symbols` gives every such symbol a C callback before the step is loaded; the callback finds
the `OpLauncher` active on its thread (the executor running the step, `active`), which:

1. reads the arguments: each memref as the C ABI passes it (data pointer, offset, sizes, strides:
   a `HostBuffer`), each setting read at run time as its value;
2. takes the op's kernels for these sizes and settings (`loopnest/op_kernels.op_kernel`, made once
   per distinct sizes and kept, with their scratch buffers allocated once, `PreparedOp`);
3. launches them in order on (inputs..., output, scratch...): an input that is not row-major
   contiguous, or that overlaps the output, is first copied into a buffer of its own; an output
   that is not contiguous is computed into one and copied back;
4. returns 0, or 1 after keeping the error (`take_error`): the step then fails at that op's
   statement and its undo log puts the persistent state back, as for any failed check.

Where the kernels run is the `KernelRunner`: `EmulatedKernels` (`OI_GPU_EMULATE=1`) runs them in
the CPU emulation (`runtime/gpu_emulation.py`), called with the buffers' fields as they are (no
Python object per argument); `StagedDriverKernels` loads their PTX through `runtime/cuda.py` and
launches them on host buffers that the launcher copies to the device and back at each launch.
**The second has never run on a GPU** (none was available where it was written), and it keeps
tables in host memory: it is correct by construction of `runtime/cuda.py`'s launcher, not fast.
"""

from __future__ import annotations

import ctypes
import json
import math
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from oi_compiler.backend.jit import C_SCALARS, memref_field_types, row_major
from oi_compiler.dtypes import numpy_dtype
from oi_compiler.errors import ExecutionError
from oi_compiler.loopnest.op_kernels import RUNTIME_ARGUMENTS, kernel_sizes

_callbacks: dict[str, object] = {}  # symbol -> its ctypes callback, alive for the process
_lock = threading.Lock()
_thread = threading.local()


@dataclass(frozen=True)
class LaunchSpec:
    """One op kernel function of the step, as `--launch-op-kernels` describes it (`oi.gpu_launches`)."""

    op: str
    settings: dict[str, Any]
    in_dtypes: tuple[str, ...]
    out_dtype: str
    runtime: tuple[tuple[str, str], ...]  # (setting, its C type), after the memrefs
    symbol: str
    params: tuple[tuple, ...]  # ("memref", dtype, rank) or ("scalar", type)
    function: str

    @property
    def kernel_arguments(self) -> tuple[bool, ...]:
        """For each run-time setting: whether the op's kernels take it as an argument (rope's
        position: one set of kernels for every value), rather than made again for each value."""
        return tuple(kind in RUNTIME_ARGUMENTS.get((self.op, key), ()) for key, kind in self.runtime)

    @classmethod
    def from_json(cls, text: str) -> LaunchSpec:
        data = json.loads(text)
        return cls(data["op"], data["settings"], tuple(data["in_dtypes"]), data["out_dtype"],
                   tuple((k, t) for k, t in data["runtime"]), data["symbol"], tuple(tuple(p) for p in data["params"]),
                   data["function"])  # fmt: skip


def _c_types(params: Sequence[tuple]) -> list[type]:
    types: list[type] = []
    for param in params:
        if param[0] == "memref":
            types += memref_field_types(param[2])
        elif param[1] in C_SCALARS:
            types.append(C_SCALARS[param[1]])
        else:
            raise ExecutionError(f"device 'cuda': no C type for a launch argument of type {param[1]}")
    return types


def bind_symbols(specs: Sequence[LaunchSpec]) -> None:
    """Give each launch symbol of `specs` its callback (once per process), before the step is loaded."""
    import llvmlite.binding as llvm

    with _lock:
        for spec in specs:
            if spec.symbol in _callbacks:
                continue
            prototype = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64, *_c_types(spec.params))
            callback = prototype(_callback)
            _callbacks[spec.symbol] = callback
            llvm.add_symbol(spec.symbol, ctypes.cast(callback, ctypes.c_void_p).value)


def _callback(ident: int, *raw: object) -> int:
    launcher = getattr(_thread, "launcher", None)
    if launcher is None:  # a step run outside `active` (never by the executor)
        return 1
    try:
        launcher.launch(ident, raw)
        return 0
    except BaseException as e:  # noqa: BLE001 - kept for the step's caller, never lost in C
        launcher.error = e
        return 1


@dataclass
class HostBuffer:
    """A memref argument as the compiled step passed it: elements at `pointer[offset + sum(i*stride)]`."""

    pointer: int
    offset: int
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: np.dtype
    owner: np.ndarray | None = None  # the array whose memory this is, when the launcher made it

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

    def array(self) -> np.ndarray:
        """A numpy view of the buffer's elements (no copy)."""
        if self.count == 0:
            return np.empty(self.sizes, self.dtype)
        start, end = self.span()
        raw = np.frombuffer((ctypes.c_char * (end - start)).from_address(start), np.uint8)
        item = self.dtype.itemsize
        return np.lib.stride_tricks.as_strided(raw.view(self.dtype), self.sizes, [s * item for s in self.strides])

    def fields(self) -> list[int]:
        """The C-ABI fields of a row-major contiguous buffer with offset 0 (what an op kernel takes)."""
        return [self.pointer + self.offset * self.dtype.itemsize, 0, *self.sizes, *row_major(self.sizes)]

    @classmethod
    def of(cls, array: np.ndarray) -> HostBuffer:
        item = array.itemsize
        return cls(array.ctypes.data, 0, tuple(array.shape), tuple(s // item for s in array.strides), array.dtype,
                   array)  # fmt: skip


def decode(params: Sequence[tuple], raw: Sequence[object]) -> tuple[list[HostBuffer], list[object]]:
    """The call's memrefs and scalars from its C-ABI fields."""
    buffers, scalars, n = [], [], 0
    for param in params:
        if param[0] == "memref":
            rank = param[2]
            pointer = raw[n] or 0
            sizes = tuple(int(x) for x in raw[n + 2 : n + 2 + rank])
            strides = tuple(int(x) for x in raw[n + 2 + rank : n + 2 + 2 * rank])
            buffers.append(HostBuffer(pointer, int(raw[n + 1]), sizes, strides, _dtype(param[1])))
            n += 2 + 2 * rank
        else:
            scalars.append(raw[n])
            n += 1
    return buffers, scalars


@lru_cache(maxsize=None)
def _dtype(name: str) -> np.dtype:
    return np.dtype(numpy_dtype(name))


@lru_cache(maxsize=256)
def _op_kernel(op: str, settings: str, inputs: tuple, output: tuple, runtime: tuple):
    """`op_kernel` memoised by its arguments (settings as JSON): shared by executors and Simulators."""
    from oi_compiler.loopnest.op_kernels import op_kernel

    return op_kernel(op, json.loads(settings), inputs, output, runtime)


class KernelRunner:
    """Where an op's kernels run: `prepare` an `OpKernel`'s launches once, `run` one of them."""

    name = ""

    def prepare(self, kernel) -> list:
        raise NotImplementedError

    def run(self, prepared: Any, launch, operands: list) -> None:
        """Launch `prepared` on `operands`: `HostBuffer`s, and (type, value) for scalar arguments."""
        raise NotImplementedError


class EmulatedKernels(KernelRunner):
    """The CPU emulation of the kernels (`OI_GPU_EMULATE=1`): each launch one native call."""

    name = "emulated"

    def prepare(self, kernel) -> list:
        from oi_compiler.runtime.gpu_emulation import emulated_function

        return [emulated_function(kernel.module, launch.kernel).native for launch in kernel.launches]

    def run(self, prepared: Any, launch, operands: list) -> None:
        fields = [f for b in operands for f in (b.fields() if isinstance(b, HostBuffer) else b[1:])]
        prepared(*fields, *launch.grid, *launch.block)


class StagedDriverKernels(KernelRunner):
    """The kernels' PTX launched through `runtime/cuda.py` on host buffers, which its launcher copies
    to the device before each launch and back after it. Untested on a GPU (see the module docstring)."""

    name = "cuda (staged through host memory, untested on a GPU)"

    def prepare(self, kernel) -> list:
        from oi_compiler.backend.ptx import NvptxTarget, emit_ptx
        from oi_compiler.runtime import cuda

        module = cuda.load_module(emit_ptx(kernel.module, NvptxTarget()))
        return [module.function(launch.kernel, cuda.kernel_signature(kernel.module, launch.kernel))
                for launch in kernel.launches]  # fmt: skip

    def run(self, prepared: Any, launch, operands: list) -> None:
        arguments = [b.array() if isinstance(b, HostBuffer) else b[1] for b in operands]
        prepared(*arguments, grid=launch.grid, block=launch.block)


@dataclass
class PreparedOp:
    """An op's kernels for one set of sizes and settings, launched in order, and their scratch buffers
    (allocated once, here, for as long as the launcher lives)."""

    kernel: Any  # loopnest.op_kernels.OpKernel
    functions: list
    scratch: list[np.ndarray]
    scratch_buffers: list[HostBuffer]
    seconds: float  # to make them


@dataclass
class LaunchCounts:
    """What the launcher did: op calls and kernel launches, kernel sets prepared, seconds spent."""

    op_calls: int = 0
    launches: int = 0
    prepared: int = 0
    prepare_seconds: float = 0.0
    kernel_seconds: float = 0.0  # inside the kernels (the emulation's native calls)
    host_seconds: float = 0.0  # the rest of each call: reading arguments, finding kernels, copies


@dataclass
class OpLauncher:
    """Launches the op kernels of one executor's steps (see the module docstring)."""

    specs: tuple[LaunchSpec, ...]
    runner: KernelRunner
    prepared: dict[tuple, PreparedOp] = field(default_factory=dict)
    counts: LaunchCounts = field(default_factory=LaunchCounts)
    error: BaseException | None = None

    @contextmanager
    def active(self):
        """The launcher of the steps this thread runs inside the block."""
        previous = getattr(_thread, "launcher", None)
        _thread.launcher, self.error = self, None
        try:
            yield self
        finally:
            _thread.launcher = previous

    def take_error(self) -> BaseException | None:
        error, self.error = self.error, None
        return error

    def launch(self, ident: int, raw: Sequence[object]) -> None:
        began = time.perf_counter()
        spec = self.specs[ident]
        buffers, scalars = decode(spec.params, raw)
        *inputs, output = buffers
        values = tuple(float(v) if kind == "f64" else int(v) for (_, kind), v in zip(spec.runtime, scalars))
        arguments = spec.kernel_arguments
        sizes = kernel_sizes(spec.op, [b.sizes for b in inputs])
        key = (ident, sizes, output.sizes, tuple(v for v, a in zip(values, arguments) if not a))
        prepared = self.prepared.get(key)
        if prepared is None:
            prepared = self._prepare(spec, inputs, output, values)
            self.prepared[key] = prepared
            began += prepared.seconds  # counted apart, not as the call's host overhead
        self.counts.op_calls += 1
        if output.count == 0:  # nothing to write (an op on no element)
            self.counts.host_seconds += time.perf_counter() - began
            return
        inputs = [self._readable(b, output) for b in inputs]
        target = output if output.contiguous() else HostBuffer.of(np.empty(output.sizes, output.dtype))
        scalars = [(kind, v) for (_, kind), v, a in zip(spec.runtime, values, arguments) if a]
        operands = [*inputs, target, *scalars, *prepared.scratch_buffers]
        kernel_time = 0.0
        for function, launch in zip(prepared.functions, prepared.kernel.launches):
            start = time.perf_counter()
            self.runner.run(function, launch, operands)
            kernel_time += time.perf_counter() - start
            self.counts.launches += 1
        if target is not output:
            output.array()[...] = target.array()
        self.counts.kernel_seconds += kernel_time
        self.counts.host_seconds += time.perf_counter() - began - kernel_time

    def _readable(self, buffer: HostBuffer, output: HostBuffer) -> HostBuffer:
        """`buffer`, or a contiguous copy of it when it is strided or shares bytes with the output."""
        if buffer.count == 0:
            return buffer
        start, end = buffer.span()
        out_start, out_end = output.span()
        if buffer.contiguous() and (end <= out_start or out_end <= start):
            return buffer
        return HostBuffer.of(np.array(buffer.array(), order="C"))  # a copy, of the same rank (0 included)

    def _prepare(self, spec: LaunchSpec, inputs: list[HostBuffer], output: HostBuffer, values: tuple) -> PreparedOp:
        began = time.perf_counter()
        constant = {key: value for (key, _), value, a in zip(spec.runtime, values, spec.kernel_arguments) if not a}
        kernel = _op_kernel(spec.op, json.dumps({**spec.settings, **constant}, sort_keys=True),
                            tuple((d, b.sizes) for d, b in zip(spec.in_dtypes, inputs)),  # one of the sizes `key` stands for
                            (spec.out_dtype, output.sizes),
                            tuple(r for r, a in zip(spec.runtime, spec.kernel_arguments) if a))  # fmt: skip
        functions = self.runner.prepare(kernel)
        scratch = kernel.scratch_arrays()
        seconds = time.perf_counter() - began
        self.counts.prepared += 1
        self.counts.prepare_seconds += seconds
        return PreparedOp(kernel, functions, scratch, [HostBuffer.of(a) for a in scratch], seconds)


def kernel_runner() -> KernelRunner:
    """The emulation when `OI_GPU_EMULATE=1`, else the GPU through `runtime/cuda.py`; a
    `GpuUnavailableError` (an `oi.OiError`) saying what is missing when there is neither."""
    from oi_compiler.runtime.gpu_emulation import emulation_requested

    if emulation_requested():
        return EmulatedKernels()
    from oi_compiler.runtime import cuda

    cuda.launcher()  # GpuUnavailableError: no launcher package, driver or device (with the emulation hint)
    return StagedDriverKernels()
