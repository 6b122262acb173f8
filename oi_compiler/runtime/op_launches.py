"""The host side of `--launch-op-kernels`: the compiled step's calls that launch each op's GPU kernels.

`device="cuda"` compiles the step as the cpu does, except that each op's nest is a call of
`@oi_launch_<signature>(id, inputs..., output, settings...) -> i32` (`passes/launch_op_kernels.py`).
`bind_symbols` binds every such symbol, before the step is loaded, to a native dispatcher
(`runtime/compiled_launches.py`) that runs the active launcher's fast function for the call when
it has one that serves it, else a C callback into Python. The callback finds the `OpLauncher`
active on its thread (the executor running the step, `active`), which:

1. reads the arguments: each memref as the C ABI passes it (data pointer, offset, sizes, strides:
   a `BufferView`), each setting read at run time as its value;
2. takes the op's kernels for these sizes and settings (`loopnest/op_kernels.op_kernel`, made once
   per distinct sizes and kept, with their scratch buffers allocated once, `PreparedOp`);
3. launches them in order on (inputs..., output, scratch...), all in device memory
   (`runtime/device_memory.py`): a buffer the layout keeps there (`--place-buffers`) is passed as it
   is; an input in host memory, not row-major contiguous or overlapping the output is first copied
   into a device buffer of its own (staged); an output in host memory or not contiguous is computed
   into one and copied back; the scratch buffers are device buffers made once;
4. once the kernel set has been called `compile_after` times and its operands are on the device,
   makes it a fast function (`_compile`) that later calls run without Python;
5. returns 0, or 1 after keeping the error (`take_error`): the step then fails at that op's
   statement and its undo log puts the persistent state back, as for any failed check.

A call of an `oi.copy` (`--place-buffers`: a `memref.copy` that may touch device memory) is a
`DeviceMemory.copy` of its source to its target, each side on the host or the device.

Where the kernels run is the `KernelRunner`: `EmulatedKernels` (`OI_GPU_EMULATE=1`) runs them in
the CPU emulation (`runtime/gpu_emulation.py`), called with the buffers' fields (the emulated
device's tagged addresses made host ones, no Python object per argument); `DriverKernels` loads
their PTX through `runtime/cuda.py` and launches them on the device addresses. **The second has
never run on a GPU** (none was available where it was written).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import struct
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
from oi_compiler.loopnest.op_kernels import RUNTIME_ARGUMENTS, kernel_size_ranges, kernel_sizes
from oi_compiler.passes.place_buffers import COPY_OP, FILL_OP
from oi_compiler.runtime import compiled_launches, cuda
from oi_compiler.runtime.device_memory import BufferView, DeviceBuffer, DeviceMemory, EmulatedDeviceMemory

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
    """Give each launch symbol of `specs` its dispatcher (`compiled_launches.dispatcher`, over the
    Python callback), once per process, before the step is loaded."""
    import llvmlite.binding as llvm

    with _lock:
        new: dict[str, tuple[str, list[type], int]] = {}
        for spec in specs:
            if spec.symbol in _callbacks or spec.symbol in new:
                continue
            c_types = _c_types(spec.params)
            callback = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64, *c_types)(_callback)
            _callbacks[spec.symbol] = callback
            new[spec.symbol] = (spec.symbol, c_types, ctypes.cast(callback, ctypes.c_void_p).value)
        if new:
            for symbol, address in zip(new, compiled_launches.dispatchers(list(new.values()))):
                llvm.add_symbol(symbol, address)


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


def decode(params: Sequence[tuple], raw: Sequence[object]) -> tuple[list[BufferView], list[object]]:
    """The call's memrefs and scalars from its C-ABI fields."""
    buffers, scalars, n = [], [], 0
    for param in params:
        if param[0] == "memref":
            rank = param[2]
            pointer = raw[n] or 0
            sizes = tuple(int(x) for x in raw[n + 2 : n + 2 + rank])
            strides = tuple(int(x) for x in raw[n + 2 + rank : n + 2 + 2 * rank])
            buffers.append(BufferView(pointer, int(raw[n + 1]), sizes, strides, _dtype(param[1])))
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
        """Launch `prepared` on `operands`: `BufferView`s of device memory, row-major contiguous, and
        (type, value) for scalar arguments."""
        raise NotImplementedError

    def compiled(self, functions: list) -> tuple[int, list[int]] | None:
        """For launches from compiled code (`runtime/compiled_launches.py`): the address of a
        function with `cuLaunchKernel`'s signature and each prepared function's handle for it;
        None where this runner has none."""
        return None

    def copy_function(self) -> int | None:
        """The address of a function with `cuMemcpy`'s signature for compiled copies, or None."""
        return None

    def enter(self) -> None:
        """Before a step: what compiled launches need on this thread (the CUDA context current)."""


class EmulatedKernels(KernelRunner):
    """The CPU emulation of the kernels (`OI_GPU_EMULATE=1`): each launch one native call, on the
    host addresses behind the emulated device's."""

    name = "emulated"

    def prepare(self, kernel) -> list:
        from oi_compiler.runtime.gpu_emulation import emulated_function

        return [emulated_function(kernel.module, launch.kernel).native for launch in kernel.launches]

    def run(self, prepared: Any, launch, operands: list) -> None:
        fields: list = []
        for b in operands:
            if isinstance(b, BufferView):
                pointer, *rest = b.fields()
                fields += [EmulatedDeviceMemory.host_address(pointer), *rest]
            else:
                fields += b[1:]
        prepared(*fields, *launch.grid, *launch.block)

    def compiled(self, functions: list) -> tuple[int, list[int]]:
        """The emulation's `cuLaunchKernel` and a trampoline per kernel, which hands the kernel the
        host addresses behind the emulated device's (`host_address`)."""
        handles = [compiled_launches.trampoline(ctypes.cast(f, ctypes.c_void_p).value, f.argtypes) for f in functions]
        return compiled_launches.emulated_launch(), handles

    def copy_function(self) -> int:
        return compiled_launches.emulated_copy()


class DriverKernels(KernelRunner):
    """The kernels' PTX launched through `runtime/cuda.py` on device addresses. Untested on a GPU
    (see the module docstring)."""

    name = "cuda (untested on a GPU)"

    def prepare(self, kernel) -> list:
        from oi_compiler.backend.ptx import NvptxTarget, emit_ptx

        module = cuda.load_module(emit_ptx(kernel.module, NvptxTarget()))
        return [module.function(launch.kernel, cuda.kernel_signature(kernel.module, launch.kernel))
                for launch in kernel.launches]  # fmt: skip

    def run(self, prepared: Any, launch, operands: list) -> None:
        """One `cuLaunchKernel` on the operands' C-ABI fields (per buffer: data pointer, offset 0,
        sizes, row-major strides; per scalar its bits), as `cuda.kernel_parameters` packs them."""
        flat: list[tuple[str, int | float]] = []
        for b in operands:
            if isinstance(b, BufferView):
                flat += [("Q", b.fields()[0]), ("q", 0), *(("q", n) for n in b.sizes),
                         *(("q", s) for s in row_major(b.sizes))]  # fmt: skip
            else:
                kind, value = b
                code = cuda.scalar_code(kind)
                flat.append((code, value if code in "fd" else int(value) % (1 << (8 * struct.calcsize(code)))))
        grid, block = cuda.launch_dims(launch.grid, launch.block)
        prepared.module._launcher.launch(prepared._handle, grid, block, cuda.ParamBlock(flat), 0)

    def compiled(self, functions: list) -> tuple[int, list[int]] | None:
        driver = _driver_library()
        if driver is None:
            return None
        return ctypes.cast(driver.cuLaunchKernel, ctypes.c_void_p).value, [int(f._handle) for f in functions]

    def copy_function(self) -> int | None:
        driver = _driver_library()
        return None if driver is None else ctypes.cast(driver.cuMemcpy, ctypes.c_void_p).value

    def enter(self) -> None:
        current = getattr(cuda.launcher(), "current", None)
        if current is not None:
            current()


@lru_cache(maxsize=1)
def _driver_library():
    """libcuda.so.1, when `runtime/cuda.py` launches through cuda-bindings (whose handles are the
    driver's own); None with PyCUDA."""
    if cuda.launcher_name() != "cuda-bindings":
        return None
    return ctypes.CDLL("libcuda.so.1")


@dataclass
class PreparedOp:
    """An op's kernels for one set of sizes and settings, launched in order, and their scratch buffers
    (allocated once, here, for as long as the launcher lives)."""

    kernel: Any  # loopnest.op_kernels.OpKernel
    functions: list
    scratch: list[DeviceBuffer]
    scratch_buffers: list[BufferView]
    seconds: float  # to make them
    fast: int = 0  # the fast function made for them (`compiled_launches`), 0 until one is
    calls: int = 0  # through Python
    stages: list[DeviceBuffer] = field(default_factory=list)  # the fast function's copies of inputs sharing the output's bytes


@dataclass
class LaunchCounts:
    """What the launcher did: op calls and kernel launches, kernel sets prepared, seconds spent."""

    op_calls: int = 0
    launches: int = 0
    copies: int = 0  # `oi.copy` and `oi.fill` calls (each one or more `DeviceMemory.copy_bytes`)
    compiled_calls: int = 0  # of the op calls and copies, those compiled code ran without Python
    staged: int = 0  # operands copied into a device buffer of their own for a launch (host, strided, aliased)
    prepared: int = 0
    prepare_seconds: float = 0.0
    kernel_seconds: float = 0.0  # inside the kernels (the emulation's native calls)
    host_seconds: float = 0.0  # the rest of each call: reading arguments, finding kernels, copies


@dataclass
class OpLauncher:
    """Launches the op kernels of one executor's steps (see the module docstring)."""

    specs: tuple[LaunchSpec, ...]
    runner: KernelRunner
    memory: DeviceMemory
    prepared: dict[tuple, PreparedOp] = field(default_factory=dict)
    python_counts: LaunchCounts = field(default_factory=LaunchCounts)  # what the Python path did
    error: BaseException | None = None
    #: fast functions (`compiled_launches`) for kernel sets (or copies) called this many times
    #: through Python (`OI_CUDA_COMPILE_AFTER`, default 16; 0: never): making one costs ~20 ms, a call
    #: through Python ~30 us, so short runs (most tests) keep to Python and decode loops compile
    compile_after: int = field(default_factory=lambda: compile_after())

    def __post_init__(self) -> None:
        # fast functions, `compiled_launches.SLOTS` per launch id (0: none), and the next to replace
        self.table = np.zeros(max(len(self.specs), 1) * compiled_launches.SLOTS, np.int64)
        self._victims = np.zeros(max(len(self.specs), 1), np.int64)
        self.counters = np.zeros(3, np.int64)  # what they did: op calls, launches, copies
        self._copies: dict[tuple[int, int], int] = {}  # (rank, itemsize) -> fast copy function
        self._copy_calls: dict[int, int] = {}  # launch id of an `oi.copy` -> its calls through Python
        self._code: list = []  # the engines of the fast functions, which bake this launcher's addresses in

    @property
    def compiled(self) -> bool:
        return self.compile_after > 0

    @property
    def counts(self) -> LaunchCounts:
        """What the launcher did, through Python and compiled code together."""
        fast_calls, fast_launches, fast_copies = (int(x) for x in self.counters)
        python = self.python_counts
        return dataclasses.replace(python, op_calls=python.op_calls + fast_calls,
                                   launches=python.launches + fast_launches, copies=python.copies + fast_copies,
                                   compiled_calls=fast_calls + fast_copies)  # fmt: skip

    @contextmanager
    def active(self):
        """The launcher of the steps this thread runs inside the block: its Python callbacks' and,
        holding `compiled_launches.STEP_LOCK`, the compiled dispatchers' (`CURRENT`)."""
        previous = getattr(_thread, "launcher", None)
        with compiled_launches.STEP_LOCK:
            outer = int(compiled_launches.CURRENT[0])
            _thread.launcher, self.error = self, None
            compiled_launches.CURRENT[0] = self.table.ctypes.data
            try:
                self.runner.enter()
                yield self
            finally:
                _thread.launcher = previous
                compiled_launches.CURRENT[0] = outer

    def take_error(self) -> BaseException | None:
        error, self.error = self.error, None
        return error

    def launch(self, ident: int, raw: Sequence[object]) -> None:
        began = time.perf_counter()
        spec = self.specs[ident]
        buffers, scalars = decode(spec.params, raw)
        *inputs, output = buffers
        if spec.op == COPY_OP:
            self.memory.copy(output, inputs[0])
            self.python_counts.copies += 1
            self._compile_copy(ident, output)
            self.python_counts.host_seconds += time.perf_counter() - began
            return
        if spec.op == FILL_OP:  # (a table's reset: rare, kept to Python)
            self.memory.fill(output, bytes.fromhex(spec.settings["pattern"]))
            self.python_counts.copies += 1
            self.python_counts.host_seconds += time.perf_counter() - began
            return
        values = tuple(float(v) if kind == "f64" else int(v) for (_, kind), v in zip(spec.runtime, scalars))
        arguments = spec.kernel_arguments
        sizes = kernel_sizes(spec.op, [b.sizes for b in inputs])
        key = (ident, sizes, output.sizes, tuple(v for v, a in zip(values, arguments) if not a))
        prepared = self.prepared.get(key)
        if prepared is None:
            prepared = self._prepare(spec, inputs, output, values)
            self.prepared[key] = prepared
            began += prepared.seconds  # counted apart, not as the call's host overhead
        self.python_counts.op_calls += 1
        if output.count == 0:  # nothing to write (an op on no element)
            self.python_counts.host_seconds += time.perf_counter() - began
            return
        keep: list[DeviceBuffer] = []  # the staged copies, alive until the launches are done
        prepared.calls += 1
        if self.compiled and prepared.calls >= self.compile_after and \
                (not prepared.fast or prepared.fast not in self._slots(ident)):  # fmt: skip
            began += self._compile(ident, spec, prepared, inputs, output, values)  # (made once, installed again)
        inputs = [self._readable(b, output, keep, n in prepared.kernel.in_place) for n, b in enumerate(inputs)]
        target = output if self._in_place(output, None) else self._stage(output, keep, copy=False)
        scalars = [(kind, v) for (_, kind), v, a in zip(spec.runtime, values, arguments) if a]
        operands = [*inputs, target, *scalars, *prepared.scratch_buffers]
        kernel_time = 0.0
        for function, launch in zip(prepared.functions, prepared.kernel.launches):
            start = time.perf_counter()
            self.runner.run(function, launch, operands)
            kernel_time += time.perf_counter() - start
            self.python_counts.launches += 1
        if target is not output:
            self.memory.copy(output, target)
        self.python_counts.kernel_seconds += kernel_time
        self.python_counts.host_seconds += time.perf_counter() - began - kernel_time

    def _compile(self, ident: int, spec: LaunchSpec, prepared: PreparedOp, inputs: list[BufferView],
                 output: BufferView, values: tuple) -> float:  # fmt: skip
        """Install a fast function for calls like this one, when its launches need nothing of Python:
        every operand on the device and row-major; an input sharing bytes with the output is copied
        to a stage buffer of its own first. The seconds it took (counted as preparation)."""
        if not all(self._in_place(b, None) for b in [*inputs, output]):
            return 0.0
        ranges = kernel_size_ranges(spec.op, [b.sizes for b in inputs])
        in_place = prepared.kernel.in_place  # (inputs the output may be exactly: checked at each call)
        staged = [not self._in_place(b, output, n in in_place) for n, b in enumerate(inputs)]  # sharing bytes with it
        if any(s and any(low != high for low, high in r) for s, r in zip(staged, ranges)):
            return 0.0  # (a stage buffer needs exact sizes)
        began = time.perf_counter()
        if not prepared.fast:
            compiled = self.runner.compiled(prepared.functions)
            if compiled is None:
                self.compile_after = 0
                return 0.0
            launch_function, handles = compiled
            operands = []
            for n, (b, r, s) in enumerate(zip(inputs, ranges, staged)):
                stage = 0
                if s:  # copied to a stage buffer first
                    prepared.stages.append(DeviceBuffer(self.memory, b.sizes, b.dtype))
                    stage = prepared.stages[-1].address
                operands.append(compiled_launches.Operand(len(b.sizes), b.dtype.itemsize, r, stage,
                                                          not s and n in in_place))  # fmt: skip
            operands.append(compiled_launches.Operand(len(output.sizes), output.dtype.itemsize,
                                                      tuple((n, n) for n in output.sizes)))  # fmt: skip
            scalars = tuple((compiled_launches.llvm_type(C_SCALARS[kind]), value, argument)
                            for (_, kind), value, argument in zip(spec.runtime, values, spec.kernel_arguments))  # fmt: skip
            prepared.fast = compiled_launches.fast_function(compiled_launches.FastCall(
                tuple(_c_types(spec.params)), tuple(operands), scalars,
                tuple((b.address, b.shape) for b in prepared.scratch),
                tuple(compiled_launches.KernelLaunch(h, launch.grid, launch.block)
                      for h, launch in zip(handles, prepared.kernel.launches)),
                launch_function, self.runner.copy_function(), self.memory.ranges.cell.ctypes.data,
                self.counters.ctypes.data), self._code)  # fmt: skip
        self._install(ident, prepared.fast)
        seconds = time.perf_counter() - began
        self.python_counts.prepare_seconds += seconds
        return seconds

    def _compile_copy(self, ident: int, output: BufferView) -> None:
        """Install the fast copy function for an `oi.copy`'s rank and element size once it is hot."""
        calls = self._copy_calls[ident] = self._copy_calls.get(ident, 0) + 1
        if not self.compiled or self._slots(ident).any() or calls < self.compile_after:
            return
        key = (len(output.sizes), output.dtype.itemsize)
        if key not in self._copies:
            copy_function = self.runner.copy_function()
            if copy_function is None:
                return
            self._copies[key] = compiled_launches.fast_copy(*key, copy_function, self.memory.ranges.cell.ctypes.data,
                                                            self.counters.ctypes.data, self._code)  # fmt: skip
        self._install(ident, self._copies[key])

    def _slots(self, ident: int) -> np.ndarray:
        return self.table[ident * compiled_launches.SLOTS : (ident + 1) * compiled_launches.SLOTS]

    def _install(self, ident: int, fast: int) -> None:
        """`fast` in a free slot of launch `ident`, else in place of the slot filled longest ago."""
        slots = self._slots(ident)
        free = np.flatnonzero(slots == 0)
        if len(free):
            slots[free[0]] = fast
            return
        slots[self._victims[ident]] = fast
        self._victims[ident] = (self._victims[ident] + 1) % len(slots)

    def _in_place(self, buffer: BufferView, output: BufferView | None, may_be_output: bool = False) -> bool:
        """Whether a kernel can take `buffer` as it is: empty, or on the device, row-major contiguous
        and apart from `output` (an input's), or exactly `output` when the kernel allows it (an
        input in `OpKernel.in_place`: both row-major, so the same bytes are the same elements)."""
        if buffer.count == 0:
            return True
        if not (buffer.contiguous() and self.memory.is_device(buffer.pointer)):
            return False
        if output is None:
            return True
        start, end = buffer.span()
        out_start, out_end = output.span()
        same = may_be_output and (start, end) == (out_start, out_end) and output.contiguous()
        return end <= out_start or out_end <= start or same

    def _readable(self, buffer: BufferView, output: BufferView, keep: list[DeviceBuffer],
                  may_be_output: bool) -> BufferView:  # fmt: skip
        """`buffer`, or a contiguous device copy of it when a kernel cannot take it in place."""
        return buffer if self._in_place(buffer, output, may_be_output) else self._stage(buffer, keep, copy=True)

    def _stage(self, buffer: BufferView, keep: list[DeviceBuffer], *, copy: bool) -> BufferView:
        """A row-major device buffer of `buffer`'s sizes, holding a copy of it if `copy`."""
        staged = DeviceBuffer(self.memory, buffer.sizes, buffer.dtype)
        keep.append(staged)
        view = BufferView(staged.address, 0, buffer.sizes, row_major(buffer.sizes), buffer.dtype)
        if copy:
            self.memory.copy(view, buffer)
        self.python_counts.staged += 1
        return view

    def _prepare(self, spec: LaunchSpec, inputs: list[BufferView], output: BufferView, values: tuple) -> PreparedOp:
        began = time.perf_counter()
        constant = {key: value for (key, _), value, a in zip(spec.runtime, values, spec.kernel_arguments) if not a}
        kernel = _op_kernel(spec.op, json.dumps({**spec.settings, **constant}, sort_keys=True),
                            tuple((d, b.sizes) for d, b in zip(spec.in_dtypes, inputs)),  # one of the sizes `key` stands for
                            (spec.out_dtype, output.sizes),
                            tuple(r for r, a in zip(spec.runtime, spec.kernel_arguments) if a))  # fmt: skip
        functions = self.runner.prepare(kernel)
        scratch = [DeviceBuffer(self.memory, a.shape, a.dtype) for a in kernel.scratch_arrays()]
        views = [BufferView(b.address, 0, b.shape, row_major(b.shape), b.dtype) for b in scratch]
        seconds = time.perf_counter() - began
        self.python_counts.prepared += 1
        self.python_counts.prepare_seconds += seconds
        return PreparedOp(kernel, functions, scratch, views, seconds)


def compile_after() -> int:
    """`OI_CUDA_COMPILE_AFTER` (the calls through Python before a fast function is made; 0: never)."""
    text = os.environ.get("OI_CUDA_COMPILE_AFTER", "16").strip()
    try:
        value = int(text)
    except ValueError:
        raise ExecutionError(f"OI_CUDA_COMPILE_AFTER must be a whole number of calls, got {text!r}") from None
    if value < 0:
        raise ExecutionError(f"OI_CUDA_COMPILE_AFTER must not be negative, got {value}")
    return value


def kernel_runner(memory: DeviceMemory) -> KernelRunner:
    """The runner for kernels on `memory` (`device_memory.device_memory()`): the emulation's or the GPU's."""
    return EmulatedKernels() if isinstance(memory, EmulatedDeviceMemory) else DriverKernels()
