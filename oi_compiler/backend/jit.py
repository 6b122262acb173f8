"""Compile an xDSL module for the host CPU and call its functions on numpy arrays.

    compiled = compile_module(module)
    add = compiled.function("add")     # follows the C ABI in backend/llvm.py
    add(a, b, out)                     # numpy arrays (no copies) and Python scalars
    compiled.llvm_ir, compiled.asm     # optimised LLVM IR, host assembly
    compiled.source                    # "compiled", "memory" or "disk": where the code came from

The pipeline: `translate` -> key (compile_cache) -> [memory hit | disk hit | parse, O2 with the loop
and SLP vectorisers via llvmlite's new pass manager, emit an object file for the host CPU and its
features, store it] -> load the object file into its own MCJIT engine. libc and libm symbols
(`aligned_alloc`, `expf`...) resolve from the Python process.

A call checks every argument against the function's ABI (`llvm_abi.FunctionAbi`): arrays must
have the element dtype (`i8` accepts int8 and uint8, `bf16` is ml_dtypes.bfloat16), the rank and
the static sizes; identity-layout memrefs need C-contiguous arrays, strided ones get the array's
strides; written arrays must be writeable, and must not overlap another array argument (the
pointers are `noalias`). Anything else raises `ExecutionError` before native code runs.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import llvmlite.binding as llvm
import ml_dtypes
import numpy as np
from oi_compiler.backend import compile_cache
from oi_compiler.backend.llvm_runtime import RUNTIME_SYMBOLS, runtime_module
from oi_compiler.errors import ExecutionError, PassError, VectorWidthError

if TYPE_CHECKING:  # loaded on first call: a cached step needs neither xDSL's dialects nor the ABI
    from xdsl.dialects.builtin import ModuleOp

    from oi_compiler.backend.llvm_abi import FunctionAbi, MemRefParam, ScalarParam

# ----------------------------------------------------------------------------- the host target


@dataclass(frozen=True)
class HostTarget:
    triple: str
    cpu: str
    features: str

    def machine(self) -> llvm.TargetMachine:
        """A fresh target machine (an MCJIT engine takes ownership of the one it is given)."""
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                            codemodel="jitdefault", jit=True)  # fmt: skip

    def with_vector_bytes(self, vector_bytes: int | None) -> HostTarget:
        """This host with LLVM told to prefer `vector_bytes`-byte vectors (16, 32 or 64; None:
        LLVM's choice for the CPU, which is 32 on AVX-512 Intel CPUs: its `prefer-256-bit`
        tuning). The width becomes part of `features`, so of every compile-cache key.
        `VectorWidthError` where the host has no such vectors (64 needs AVX-512F, 32 AVX)."""
        if vector_bytes is None:
            return self
        if vector_bytes not in _VECTOR_WIDTHS:
            raise VectorWidthError(f"vector_bytes={vector_bytes!r}: the cpu target takes 16, 32 or 64 "
                                   "(128-, 256- or 512-bit vectors), or None for LLVM's choice")  # fmt: skip
        needs, tuning = _VECTOR_WIDTHS[vector_bytes]
        if not self.triple.startswith(("x86_64", "i386", "i686")) or needs not in self.features.split(","):
            raise VectorWidthError(f"vector_bytes={vector_bytes}: this host ({self.cpu}, {self.triple.split('-')[0]}) "
                                   f"has no {8 * vector_bytes}-bit vectors (they need {needs[1:].upper()})")  # fmt: skip
        return HostTarget(self.triple, self.cpu, f"{self.features},{tuning}")


#: vector_bytes -> (the host feature it needs, X86 tuning flags that make LLVM prefer it)
_VECTOR_WIDTHS = {16: ("+sse2", "+prefer-128-bit,-prefer-256-bit"),
                  32: ("+avx", "-prefer-128-bit,+prefer-256-bit"),
                  64: ("+avx512f", "-prefer-128-bit,-prefer-256-bit")}  # fmt: skip


_host: HostTarget | None = None
_host_lock = threading.Lock()
_runtime: list[LoadedCode] = []  # the engine holding llvm_runtime's helpers, alive for the process


def host_target() -> HostTarget:
    """The process's triple, CPU and features; LLVM's native target and the runtime helpers are
    set up once."""
    global _host
    with _host_lock:
        if _host is None:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            host = HostTarget(llvm.get_process_triple(), llvm.get_host_cpu_name(),
                              llvm.get_host_cpu_features().flatten())  # fmt: skip
            _install_runtime_helpers(host)
            _host = host
        return _host


def _install_runtime_helpers(host: HostTarget) -> None:
    """Compile `llvm_runtime` and make its functions process symbols MCJIT resolves."""
    machine = host.machine()
    module = llvm.parse_assembly(str(runtime_module()))
    code = load_object(compile_cache.CacheEntry(machine.emit_object(module), str(module)), host)
    _runtime.append(code)
    for name in RUNTIME_SYMBOLS:
        if llvm.address_of_symbol(name) is None:
            llvm.add_symbol(name, code.engine.get_function_address(name))


# ----------------------------------------------------------------------------- compiling


@dataclass
class LoadedCode:
    """Native code in an MCJIT engine, with the optimised IR it was generated from."""

    engine: llvm.ExecutionEngine
    optimized_ir: str
    object_code: bytes = b""


def compile_module(module: ModuleOp, target: HostTarget | None = None) -> CompiledModule:
    """Native code for `module`'s exported functions, from the cache when it has them. `target`:
    the host as `host_target()` gives it, or a variant of it (`with_vector_bytes`)."""
    from oi_compiler.gc_pause import paused_collection

    with paused_collection():
        return _compile_module(module, target)


def _compile_module(module: ModuleOp, target: HostTarget | None = None) -> CompiledModule:
    # the translator (and xDSL's dialects) load here, not with this module: loading cached code
    # (the CPU executor's step cache) needs only llvmlite
    from oi_compiler.backend.llvm import exported_symbols, translate
    from oi_compiler.backend.llvm_abi import exported_functions

    host = target or host_target()
    abis = exported_functions(module)
    symbols = exported_symbols(module)
    ir_module = translate(module, triple=host.triple)
    machine = host.machine()
    ir_module.data_layout = str(machine.target_data)
    ir_text = str(ir_module)
    key = compile_cache.cache_key(ir_text, host.triple, host.cpu, host.features)
    if (loaded := compile_cache.memory_get(key)) is not None:
        return CompiledModule(loaded, abis, "memory", host, symbols)
    source = "disk"
    entry = compile_cache.disk_get(key)
    if entry is None:
        source = "compiled"
        entry = generate_object(ir_text, machine)
        compile_cache.disk_put(key, entry)
    loaded = load_object(entry, host)
    compile_cache.memory_put(key, loaded)
    return CompiledModule(loaded, abis, source, host, symbols)


def optimize(module: llvm.ModuleRef, machine: llvm.TargetMachine) -> None:
    """LLVM's O2 pipeline for `machine`, with loop vectorisation, SLP and unrolling on.

    Not O3: on this project's code O3 gave no faster kernels (tiny decoder steps at contexts 128
    to 4096 and the scheduled GEMM at N = 256..1024 ran within noise of O2) but compiled up to 5x
    slower: the README's GEMM plan (boundary tiles, `ii` unrolled) took 10.2 s in O3 against
    2.1 s in O2, its IR tripled by O3's extra unrolling."""
    tuning = llvm.create_pipeline_tuning_options(speed_level=2)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)


def generate_object(ir_text: str, machine: llvm.TargetMachine) -> compile_cache.CacheEntry:
    module = llvm.parse_assembly(ir_text)
    module.verify()
    optimize(module, machine)
    return compile_cache.CacheEntry(machine.emit_object(module), str(module))


def load_object(entry: compile_cache.CacheEntry, host: HostTarget) -> LoadedCode:
    """An MCJIT engine holding just this object file, relocated and ready to call.

    Every symbol the object needs must resolve in the process first: MCJIT would otherwise
    leave the call pointing at address 0.
    """
    missing = [name for name in undefined_symbols(entry.object_code) if llvm.address_of_symbol(name) is None]
    if missing:
        raise PassError(f"backend: the native code needs {', '.join(missing)}, "
                        "which this process does not provide")  # fmt: skip
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), host.machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(entry.object_code))
    engine.finalize_object()
    return LoadedCode(engine, entry.optimized_ir, entry.object_code)


def undefined_symbols(object_code: bytes) -> list[str]:
    """The symbols a 64-bit little-endian ELF object refers to but does not define ([] otherwise)."""
    if not object_code.startswith(b"\x7fELF\x02\x01"):
        return []
    sections = {s.name(): s.data() for s in llvm.ObjectFileRef.from_data(object_code).sections()}
    symbols, names = sections.get(b".symtab", b""), sections.get(b".strtab", b"")
    undefined = []
    for name_offset, _info, _other, section, _value, _size in struct.iter_unpack("<IBBHQQ", symbols):
        if section == 0 and name_offset:
            undefined.append(names[name_offset : names.index(b"\0", name_offset)].decode())
    return undefined


class CompiledModule:
    """A compiled module: its exported functions as Python callables, its IR and assembly."""

    def __init__(self, code: LoadedCode, abis: dict[str, FunctionAbi], source: str, host: HostTarget,
                 symbols: dict[str, str] | None = None):  # fmt: skip
        self._code = code
        self._host = host
        self._symbols = symbols or {}  # exported name -> wrapper symbol, where they differ
        self.abis = abis
        self.source = source

    @property
    def llvm_ir(self) -> str:
        """The optimised LLVM IR the native code was generated from."""
        return self._code.optimized_ir

    @cached_property
    def asm(self) -> str:
        """Host assembly for `llvm_ir` (generated on first access)."""
        return self._host.machine().emit_assembly(llvm.parse_assembly(self._code.optimized_ir))

    @property
    def loaded(self) -> LoadedCode:
        """The engine, object file and optimised IR (what the CPU executor's step cache keeps)."""
        return self._code

    def symbol(self, name: str) -> str:
        """The native symbol of exported function `name`'s C-ABI wrapper."""
        if name not in self.abis:
            raise ExecutionError(f"no exported function @{name}")
        return self._symbols.get(name, name)

    def function(self, name: str) -> JitFunction:
        abi = self.abis.get(name)
        if abi is None:
            exported = ", ".join(f"@{n}" for n in self.abis) or "nothing"
            raise ExecutionError(f"no exported function @{name} (the module exports {exported})")
        address = self._code.engine.get_function_address(self._symbols.get(name, name))
        return JitFunction(abi, address, self._code)


# ----------------------------------------------------------------------------- calling

#: the C type of a scalar argument or result, by element name (16- and 8-bit floats cross as their bits)
C_SCALARS: dict[str, type] = {
    "i1": ctypes.c_uint8, "i8": ctypes.c_int8, "si8": ctypes.c_int8, "ui8": ctypes.c_uint8,
    "i16": ctypes.c_int16, "si16": ctypes.c_int16, "ui16": ctypes.c_uint16,
    "i32": ctypes.c_int32, "si32": ctypes.c_int32, "ui32": ctypes.c_uint32,
    "i64": ctypes.c_int64, "si64": ctypes.c_int64, "ui64": ctypes.c_uint64, "index": ctypes.c_int64,
    "f8E5M2": ctypes.c_uint8, "f16": ctypes.c_uint16, "bf16": ctypes.c_uint16, "f32": ctypes.c_float,
    "f64": ctypes.c_double,
}  # fmt: skip
_DTYPES: dict[str, tuple[np.dtype, ...]] = {
    "i1": (np.dtype(np.bool_),), "f8E5M2": (np.dtype(ml_dtypes.float8_e5m2),), "f16": (np.dtype(np.float16),),
    "bf16": (np.dtype(ml_dtypes.bfloat16),), "f32": (np.dtype(np.float32),),
    "f64": (np.dtype(np.float64),), "index": (np.dtype(np.int64),),
    "i4": (np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)),
    "si4": (np.dtype(ml_dtypes.int4),), "ui4": (np.dtype(ml_dtypes.uint4),),
    **{f"i{w}": (np.dtype(f"int{w}"), np.dtype(f"uint{w}")) for w in (8, 16, 32, 64)},
    **{f"si{w}": (np.dtype(f"int{w}"),) for w in (8, 16, 32, 64)},
    **{f"ui{w}": (np.dtype(f"uint{w}"),) for w in (8, 16, 32, 64)},
}  # fmt: skip

#: floats that cross the C ABI as their bit pattern
_BIT_PATTERNS = {"f8E5M2": np.uint8, "f16": np.uint16, "bf16": np.uint16}


def dtypes_of(element: str) -> tuple[np.dtype, ...]:
    """The numpy dtypes an array for memrefs of `element` may have (signless ints take both)."""
    return _DTYPES[element]


class JitFunction:
    """A native function behind its ABI: checks and converts arguments, calls, converts the result."""

    def __init__(self, abi: FunctionAbi, address: int, code: LoadedCode):
        self.abi = abi
        self._code = code  # keeps the engine (and so the machine code) alive
        params = [t for p in abi.params for t in _c_param_types(p)]
        result = C_SCALARS[abi.result.element] if abi.result is not None else None
        self._native: Callable[..., object] = ctypes.CFUNCTYPE(result, *params)(address)

    @property
    def native(self) -> Callable[..., object]:
        """The ctypes function itself: the C-ABI fields (per memref: pointer, offset, sizes,
        strides; scalars as the C ABI passes them) as they are, unchecked. For callers that already
        hold such fields (the `device="cuda"` launcher, `runtime/op_launches.py`)."""
        return self._native

    def __call__(self, *args: object) -> object:
        from oi_compiler.backend.llvm_abi import MemRefParam
        abi = self.abi
        if len(args) != len(abi.params):
            raise self._error(f"takes {len(abi.params)} arguments, got {len(args)}")
        raw: list[object] = []
        for param, arg in zip(abi.params, args):
            if isinstance(param, MemRefParam):
                raw.extend(self._memref_fields(param, arg))
            else:
                raw.append(self._scalar(param, arg))
        self._check_overlaps(args)
        return self._result(self._native(*raw))

    def _error(self, message: str) -> ExecutionError:
        return ExecutionError(f"@{self.abi.name} {message}")

    def _memref_fields(self, param: MemRefParam, arg: object) -> list[int]:
        where = f"argument %{param.name}"
        if not isinstance(arg, np.ndarray):
            raise self._error(f"{where}: expected a numpy array, got {type(arg).__name__}")
        if arg.dtype not in dtypes_of(param.element):
            wanted = " or ".join(str(d) for d in dtypes_of(param.element))
            raise self._error(f"{where}: expected dtype {wanted} ({param.element}), got {arg.dtype}")
        if arg.ndim != param.rank:
            raise self._error(f"{where}: expected rank {param.rank}, got shape {arg.shape}")
        if any(d is not None and d != n for d, n in zip(param.shape, arg.shape)):
            shape = "x".join("?" if d is None else str(d) for d in param.shape)
            raise self._error(f"{where}: expected shape {shape}, got {arg.shape}")
        if not arg.flags.aligned:
            raise self._error(f"{where}: the array is not aligned to its element size")
        if param.written and not arg.flags.writeable:
            raise self._error(f"{where}: the function writes it but the array is read-only")
        strides = self._element_strides(param, arg, where)
        pointer = arg.ctypes.data
        offset = param.offset or 0
        return [pointer - offset * arg.itemsize, offset, *arg.shape, *strides]

    def _element_strides(self, param: MemRefParam, arg: np.ndarray, where: str) -> list[int]:
        if param.strides is None:
            if not arg.flags.c_contiguous:
                raise self._error(f"{where}: expected a C-contiguous array, got strides {arg.strides}")
            return row_major(arg.shape)
        if any(s % arg.itemsize for s in arg.strides):
            raise self._error(f"{where}: strides {arg.strides} are not a multiple of the element size")
        strides = [s // arg.itemsize for s in arg.strides]
        for dim, (static, actual) in enumerate(zip(param.strides, strides)):
            if static is not None and static != actual and arg.shape[dim] > 1:
                raise self._error(f"{where}: expected stride {static} in dim {dim}, got {actual}")
        return strides

    def _scalar(self, param: ScalarParam, arg: object) -> object:
        element = param.element
        if not _is_number(arg):
            got = type(arg).__name__
            raise self._error(f"argument %{param.name}: expected a {element} scalar, got {got}")
        if element in _BIT_PATTERNS:
            return int(np.array(arg, dtype=dtypes_of(element)[0]).view(_BIT_PATTERNS[element]))
        if element.startswith("f"):
            return float(arg)
        if _is_float(arg):
            raise self._error(f"argument %{param.name}: expected an integer ({element}), got {arg!r}")
        return _wrap_integer(int(arg), element)

    def _check_overlaps(self, args: Sequence[object]) -> None:
        from oi_compiler.backend.llvm_abi import MemRefParam
        arrays = [(p, a) for p, a in zip(self.abi.params, args) if isinstance(p, MemRefParam)]
        for i, (p, a) in enumerate(arrays):
            for q, b in arrays[i + 1 :]:
                if (p.written or q.written) and not (p.may_alias and q.may_alias) and _overlap(a, b):
                    raise self._error(f"arguments %{p.name} and %{q.name} overlap and one is written "
                                      "(memref arguments are noalias)")  # fmt: skip

    def _result(self, value: object) -> object:
        result = self.abi.result
        if result is None:
            return None
        element = result.element
        if element == "i1":
            return np.bool_(value)
        if element in _BIT_PATTERNS:
            return np.array(value, dtype=_BIT_PATTERNS[element]).view(dtypes_of(element)[0])[()]
        return dtypes_of(element)[0].type(value)


def _c_param_types(param: MemRefParam | ScalarParam) -> list[type]:
    from oi_compiler.backend.llvm_abi import MemRefParam
    if isinstance(param, MemRefParam):
        return memref_field_types(param.rank)
    return [C_SCALARS[param.element]]


def memref_field_types(rank: int) -> list[type]:
    """The C-ABI fields of a memref argument: data pointer, offset, one size and one stride per dim."""
    return [ctypes.c_void_p] + [ctypes.c_int64] * (1 + 2 * rank)


def row_major(shape: Sequence[int]) -> list[int]:
    """The element strides of a C-contiguous array of `shape`."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return strides[::-1]


#: ml_dtypes' scalar types (not `np.number`): floats (bfloat16, float8_*) and 4-bit integers
_ML_FLOATS = (ml_dtypes.bfloat16, ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3b11fnuz,
              ml_dtypes.float8_e5m2fnuz, ml_dtypes.float8_e4m3fnuz)  # fmt: skip
_ML_INTS = (ml_dtypes.int4, ml_dtypes.uint4)


def _is_float(arg: object) -> bool:
    return isinstance(arg, (float, np.floating, *_ML_FLOATS))


def _is_number(arg: object) -> bool:
    """A Python or numpy number (ml_dtypes' included), not an array."""
    return isinstance(arg, (int, float, np.number, np.bool_, *_ML_FLOATS, *_ML_INTS))


def _wrap_integer(value: int, element: str) -> int:
    """`value` as the C argument of an integer type: a signless `iN` (and `index`) takes any value
    in [-2^(N-1), 2^N) as two's complement, `siN` only [-2^(N-1), 2^(N-1)), `uiN` only [0, 2^N)."""
    width = 64 if element == "index" else 1 if element == "i1" else int(element.lstrip("sui"))
    low = 0 if element.startswith("ui") else -(1 << (width - 1 if width > 1 else 0))
    high = 1 << (width - 1 if element.startswith("si") else width)
    if not low <= value < high:
        raise ExecutionError(f"integer {value} does not fit in {element}")
    if element.startswith("ui") or element == "i1":
        return value & ((1 << width) - 1)
    value &= (1 << width) - 1
    return value - (1 << width) if value >= 1 << (width - 1) else value


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    if a.size == 0 or b.size == 0 or not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except np.exceptions.TooHardError:
        return True
