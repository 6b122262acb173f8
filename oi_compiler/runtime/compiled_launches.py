"""Op launches from compiled code: once an op's launches are known, the step runs them without Python.

The compiled step calls `@oi_launch_<signature>(id, fields...)` for each op statement
(`passes/launch_op_kernels.py`). Each such symbol is bound to a **dispatcher**, native code made here
once per C signature:

    i32 dispatch(i64 id, fields...) {
        table = *CURRENT                       // the running launcher's fast functions, SLOTS per launch id
        for k in 0..SLOTS:                     // (one per kernel set: a launch id called at several sizes)
            f = table ? table[id * SLOTS + k] : 0
            if (!f) break;
            status = f(fields...)
            if (status == 0) return 0;
            if (status == FAILED) return 1;    // else (1) f did not serve this call: the next
        return slow(id, fields...);            // the Python callback (`op_launches._callback`)
    }

The slow path prepares the op's kernels for the call's sizes (`OpLauncher.launch`); once the
kernel set has been called `OI_CUDA_COMPILE_AFTER` times, and when every operand is in device
memory and row-major, it also makes a **fast function** for them (`fast_function`, from a
`FastCall`) and puts it in the table (`fast_copy` for a copy). A fast function:

1. checks the call: each size one the kernels serve (exact, or attention's keys within the count
   range of its block size), row-major strides, each operand's first and last byte in a device
   allocation (a binary search of `DeviceRanges`), inputs apart from the output, and the settings
   the kernels were made for; any miss returns 1 and the slow path handles the call. An input
   that shared bytes with the output when the function was made (`op mul(x, w) >> x`) is copied
   to a device buffer of its own first, as the slow path does;
2. fills one `cuLaunchKernel` parameter block (an 8-byte slot per kernel parameter: data pointer,
   offset, sizes and strides per buffer, then the scalars and the scratch buffers' addresses) and
   launches each kernel of the op in order with its grid, block and function handle baked in;
3. counts the call and its launches in the launcher's counters, and returns 0. When the first
   launch fails it returns 1 (the slow path then tries, and raises the driver's error); when a
   later one does, `FAILED`: some kernels ran, possibly over a staged input, so the call is not
   retried: the dispatcher returns 1 and the step fails at the op's statement ("its GPU kernels
   failed"), the undo log putting the persistent state back.

Where `cuLaunchKernel` comes from is the runner's `compiled`: the driver library's own
(`libcuda.so.1`, with the cuda-bindings launcher), or in the emulation (`OI_GPU_EMULATE=1`) an
emulated one with the same signature, whose "function handle" is a trampoline per kernel that reads
the arguments back out of the parameter block and calls the emulated kernel: so the emulation runs
the same parameter packing and launch sequence a GPU would. **The driver half has never run on a
GPU** (none was available where it was written).

`CURRENT` is one cell for the process: `OpLauncher.active` sets it for the step it runs and holds
`STEP_LOCK` meanwhile, so steps of `device="cuda"` executors run one at a time in a process.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from oi_compiler.backend.jit import row_major

CURRENT = np.zeros(1, np.int64)  # the address of the running launcher's table of fast functions (0: none)
SLOTS = 4  # fast functions per launch id in a table
FAILED = 2  # a fast function's status when a launch failed after others ran: the op fails, no retry
STEP_LOCK = threading.RLock()

_LLVM_TYPES = {
    ctypes.c_void_p: "ptr", ctypes.c_int64: "i64", ctypes.c_uint64: "i64", ctypes.c_int32: "i32",
    ctypes.c_uint32: "i32", ctypes.c_int16: "i16", ctypes.c_uint16: "i16", ctypes.c_int8: "i8",
    ctypes.c_uint8: "i8", ctypes.c_float: "float", ctypes.c_double: "double",
}  # fmt: skip
_FLOAT_TYPES = ("float", "double")
_loaded: list = []  # the engines of the code every launcher shares (dispatchers, trampolines...), alive for the process
_lock = threading.Lock()


def llvm_type(c_type: type) -> str:
    return _LLVM_TYPES[c_type]


def compile_ir(text: str, *names: str, owner: list | None = None) -> list[int]:
    """Native code for LLVM IR `text`; the addresses of `names`. The code lives as long as `owner`
    (a list its engine joins: a launcher's, for the fast functions that bake its addresses in),
    else as long as the process. No IR optimisation pipeline: the functions made here are
    straight-line checks and calls, and code generation alone halves the time (~10 ms a function)."""
    import llvmlite.binding as llvm

    from oi_compiler.backend import compile_cache
    from oi_compiler.backend.jit import host_target, load_object

    host = host_target()
    module = llvm.parse_assembly(text)
    module.verify()
    code = load_object(compile_cache.CacheEntry(host.machine().emit_object(module), text), host)
    if owner is not None:
        owner.append(code)
    else:
        with _lock:
            _loaded.append(code)
    return [code.engine.get_function_address(name) for name in names]


class _Body:
    """Numbered SSA values and labels for the IR text of one function."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.n = 0

    def __call__(self, text: str) -> str:
        self.n += 1
        name = f"%v{self.n}"
        self.lines.append(f"  {name} = {text}")
        return name

    def emit(self, text: str) -> None:
        self.lines.append(f"  {text}" if not text.endswith(":") else text)

    def add_to(self, counters: int, index: int, amount: int) -> None:
        """`counters[index] += amount`, for an int64 array at a baked address."""
        at = self(f"getelementptr i64, ptr {self(f'inttoptr i64 {counters} to ptr')}, i64 {index}")
        value = self(f"load i64, ptr {at}")
        self.emit(f"store i64 {self(f'add i64 {value}, {amount}')}, ptr {at}")

    def fast_function(self, params: str, prelude: str = "") -> str:
        """The text of `i32 @fast(params)`: this body returning 0, the `miss` label returning 1 and
        the `failed` label `FAILED`."""
        self.emit("ret i32 0")
        self.emit("miss:")
        self.emit("ret i32 1")
        self.emit("failed:")
        self.emit(f"ret i32 {FAILED}")
        body = "\n".join(self.lines)
        return f"""{prelude}
define i32 @fast({params}) {{
entry:
{body}
}}
"""


def dispatchers(signatures: Sequence[tuple[str, Sequence[type], int]]) -> list[int]:
    """The addresses of the dispatchers of launch symbols, made together: per symbol, the C types
    of its fields (after the id) and the address of the Python callback taking (id, fields...)."""
    functions = []
    for n, (_, c_types, slow) in enumerate(signatures):
        types = [llvm_type(t) for t in c_types]
        params = "".join(f", {t} %a{i}" for i, t in enumerate(types))
        args = ", ".join(f"{t} %a{i}" for i, t in enumerate(types))
        tries = []
        for k in range(SLOTS):
            following = f"try{k + 1}" if k + 1 < SLOTS else "slow"
            tries.append(f"""try{k}:
  %ep{k} = getelementptr i64, ptr %tp, i64 %base{k}
  %f{k} = load i64, ptr %ep{k}
  %has{k} = icmp ne i64 %f{k}, 0
  br i1 %has{k}, label %call{k}, label %slow
call{k}:
  %fp{k} = inttoptr i64 %f{k} to ptr
  %r{k} = call i32 %fp{k}({args})
  %ok{k} = icmp eq i32 %r{k}, 0
  br i1 %ok{k}, label %done, label %other{k}
other{k}:
  %served{k} = icmp eq i32 %r{k}, {FAILED}
  br i1 %served{k}, label %failed, label %{following}""")
        bases = "\n".join(f"  %base{k} = add i64 %first, {k}" for k in range(SLOTS))
        body = "\n".join(tries)
        functions.append(f"""
define i32 @dispatch{n}(i64 %id{params}) {{
entry:
  %cell = inttoptr i64 {CURRENT.ctypes.data} to ptr
  %table = load volatile i64, ptr %cell
  %has_table = icmp ne i64 %table, 0
  br i1 %has_table, label %look, label %slow
look:
  %tp = inttoptr i64 %table to ptr
  %first = mul i64 %id, {SLOTS}
{bases}
  br label %try0
{body}
done:
  ret i32 0
failed:
  ret i32 1
slow:
  %sp = inttoptr i64 {slow} to ptr
  %s = call i32 %sp(i64 %id{params})
  ret i32 %s
}}""")
    return compile_ir("\n".join(functions), *(f"dispatch{n}" for n in range(len(signatures))))


# ----------------------------------------------------------------------------- fast functions


@dataclass(frozen=True)
class Operand:
    """A buffer argument of a launch call: its rank, element size and the sizes the kernels serve."""

    rank: int
    itemsize: int
    sizes: tuple[tuple[int, int], ...]  # per dim, the [low, high] it may take (high -1: any)
    stage: int = 0  # an input that may share bytes with the output: the device buffer it is copied to first
    may_be_output: bool = False  # an input the kernels may take as the output's very bytes (`OpKernel.in_place`)


@dataclass(frozen=True)
class KernelLaunch:
    """One kernel of the op: its handle for `cuLaunchKernel` (a CUfunction, or the emulation's
    trampoline), grid and block."""

    handle: int
    grid: tuple[int, int, int]
    block: tuple[int, int, int]


@dataclass(frozen=True)
class FastCall:
    """What a fast function serves and does (see the module docstring)."""

    c_types: tuple[type, ...]  # the call's fields after the id: the symbol's C signature
    operands: tuple[Operand, ...]  # inputs, then the output
    scalars: tuple[tuple[str, object, bool], ...]  # per run-time setting: (LLVM type, value baked or None, kernel argument)
    scratch: tuple[tuple[int, tuple[int, ...]], ...]  # (device address, sizes), after the operands and scalars
    launches: tuple[KernelLaunch, ...]
    launch_function: int  # cuLaunchKernel's address, or the emulation's
    copy_function: int  # cuMemcpy's address, or the emulation's (staged inputs)
    ranges_cell: int  # `DeviceRanges.cell`'s address
    counters: int  # int64[3]: op calls, launches, copies


def fast_function(call: FastCall, owner: list) -> int:
    """The address of the fast function for `call` (native code made now, alive as long as `owner`)."""
    b = _Body()
    types = [llvm_type(t) for t in call.c_types]
    params = ", ".join(f"{t} %a{i}" for i, t in enumerate(types))
    checks: list[str] = []
    slots: list[tuple[str, str]] = []  # each kernel parameter: (LLVM type, value)
    spans: list[tuple[str, str, bool]] = []  # each operand's [first byte, end), may it be the output's; not staged inputs'
    stages: list[tuple[int, str, str]] = []  # staged inputs: (stage buffer, first byte, bytes)
    n = 0
    for operand in call.operands:
        pointer, offset = f"%a{n}", f"%a{n + 1}"
        sizes = [f"%a{n + 2 + d}" for d in range(operand.rank)]
        strides = [f"%a{n + 2 + operand.rank + d}" for d in range(operand.rank)]
        n += 2 + 2 * operand.rank
        count = "1"
        expected = "1"
        for d in reversed(range(operand.rank)):
            low, high = operand.sizes[d]
            if high == low:
                checks.append(b(f"icmp eq i64 {sizes[d]}, {low}"))
            else:
                checks.append(b(f"icmp sge i64 {sizes[d]}, {low}"))
                if high >= 0:
                    checks.append(b(f"icmp sle i64 {sizes[d]}, {high}"))
            unit = b(f"icmp eq i64 {sizes[d]}, 1")
            same = b(f"icmp eq i64 {strides[d]}, {expected}")
            checks.append(b(f"or i1 {unit}, {same}"))
            expected = b(f"mul i64 {expected}, {sizes[d]}")
        count = expected
        checks.append(b(f"icmp sgt i64 {count}, 0"))
        base = b(f"ptrtoint ptr {pointer} to i64")
        start = b(f"add i64 {base}, {b(f'mul i64 {offset}, {operand.itemsize}')}")
        end = b(f"add i64 {start}, {b(f'mul i64 {count}, {operand.itemsize}')}")
        last = b(f"sub i64 {end}, 1")
        checks.append(b(f"call i1 @in_device(i64 {start})"))
        checks.append(b(f"call i1 @in_device(i64 {last})"))
        if operand.stage:
            stages.append((operand.stage, start, b(f"sub i64 {end}, {start}")))
        else:
            spans.append((start, end, operand.may_be_output))
        slots.append(("i64", str(operand.stage) if operand.stage else start))
        slots.append(("i64", "0"))
        slots += [("i64", s) for s in sizes]
        running = "1"
        row: list[str] = []
        for d in reversed(range(operand.rank)):
            row.insert(0, running)
            running = b(f"mul i64 {running}, {sizes[d]}")
        slots += [("i64", s) for s in row]
    out_start, out_end, _ = spans[-1]
    for start, end, may_be_output in spans[:-1]:
        before = b(f"icmp sle i64 {end}, {out_start}")
        after = b(f"icmp sle i64 {out_end}, {start}")
        apart = b(f"or i1 {before}, {after}")
        if may_be_output:  # (both row-major, of the same sizes: the same bytes are the same elements)
            same = b(f"and i1 {b(f'icmp eq i64 {start}, {out_start}')}, {b(f'icmp eq i64 {end}, {out_end}')}")
            apart = b(f"or i1 {apart}, {same}")
        checks.append(apart)
    kernel_scalars: list[tuple[str, str]] = []
    for ty, value, argument in call.scalars:
        arg = f"%a{n}"
        n += 1
        if argument:
            kernel_scalars.append((ty, arg))
        elif ty in _FLOAT_TYPES:
            checks.append(b(f"fcmp oeq {ty} {arg}, {_float_constant(ty, float(value))}"))
        else:
            checks.append(b(f"icmp eq {ty} {arg}, {int(value)}"))
    slots += kernel_scalars
    for address, sizes in call.scratch:
        slots += [("i64", str(address)), ("i64", "0"), *(("i64", str(s)) for s in sizes),
                  *(("i64", str(s)) for s in row_major(sizes))]  # fmt: skip
    ok = "true"
    for check in checks:
        ok = b(f"and i1 {ok}, {check}")
    b.emit(f"br i1 {ok}, label %launch, label %miss")
    b.emit("launch:")
    count = max(len(slots), 1)
    storage = b(f"alloca [{count} x i64], align 8")
    pointers = b(f"alloca [{count} x ptr], align 8")
    for i, (ty, value) in enumerate(slots):
        slot = b(f"getelementptr [{count} x i64], ptr {storage}, i64 0, i64 {i}")
        b.emit(f"store {ty} {value}, ptr {slot}")
        entry = b(f"getelementptr [{count} x ptr], ptr {pointers}, i64 0, i64 {i}")
        b.emit(f"store ptr {slot}, ptr {entry}")
    for stage, start, nbytes in stages:
        copied = b(f"call i32 {b(f'inttoptr i64 {call.copy_function} to ptr')}(i64 {stage}, i64 {start}, i64 {nbytes})")
        b.emit(f"br i1 {b(f'icmp ne i32 {copied}, 0')}, label %miss, label %staged{stage}")
        b.emit(f"staged{stage}:")
    launch = b(f"inttoptr i64 {call.launch_function} to ptr")
    for k, kernel in enumerate(call.launches):
        handle = b(f"inttoptr i64 {kernel.handle} to ptr")
        dims = ", ".join(f"i32 {v}" for v in (*kernel.grid, *kernel.block))
        status = b(f"call i32 {launch}(ptr {handle}, {dims}, i32 0, ptr null, ptr {pointers}, ptr null)")
        failed = b(f"icmp ne i32 {status}, 0")
        b.emit(f"br i1 {failed}, label %{'miss' if k == 0 else 'failed'}, label %next{k}")
        b.emit(f"next{k}:")
    b.add_to(call.counters, 0, 1)
    b.add_to(call.counters, 1, len(call.launches))
    return compile_ir(b.fast_function(params, _in_device(call.ranges_cell)), "fast", owner=owner)[0]


def fast_copy(rank: int, itemsize: int, copy_function: int, ranges_cell: int, counters: int, owner: list) -> int:
    """The address of a fast function for a copy (`oi.copy`) of rank-`rank` buffers of `itemsize`-byte
    elements, any sizes: when both sides are row-major and apart, one `copy_function(dst, src,
    nbytes)` (`cuMemcpy`: host or device, either side; or the emulation's), counted; else 1."""
    b = _Body()
    fields = ["ptr", "i64", *["i64"] * (2 * rank)] * 2
    params = ", ".join(f"{t} %a{i}" for i, t in enumerate(fields))
    checks, spans = [], []
    for side in range(2):
        n = side * (2 + 2 * rank)
        expected = "1"
        for d in reversed(range(rank)):
            size, stride = f"%a{n + 2 + d}", f"%a{n + 2 + rank + d}"
            unit = b(f"icmp eq i64 {size}, 1")
            same = b(f"icmp eq i64 {stride}, {expected}")
            checks.append(b(f"or i1 {unit}, {same}"))
            expected = b(f"mul i64 {expected}, {size}")
        nbytes = b(f"mul i64 {expected}, {itemsize}")
        start = b(f"add i64 {b(f'ptrtoint ptr %a{n} to i64')}, {b(f'mul i64 %a{n + 1}, {itemsize}')}")
        spans.append((start, b(f"add i64 {start}, {nbytes}")))
    (src, src_end), (dst, dst_end) = spans
    checks.append(b(f"or i1 {b(f'icmp sle i64 {src_end}, {dst}')}, {b(f'icmp sle i64 {dst_end}, {src}')}"))
    ok = "true"
    for check in checks:
        ok = b(f"and i1 {ok}, {check}")
    b.emit("br i1 %s, label %%copy, label %%miss" % ok)
    b.emit("copy:")
    count = b(f"sub i64 {src_end}, {src}")
    empty = b(f"icmp eq i64 {count}, 0")
    b.emit(f"br i1 {empty}, label %done, label %some")
    b.emit("some:")
    status = b(f"call i32 {b(f'inttoptr i64 {copy_function} to ptr')}(i64 {dst}, i64 {src}, i64 {count})")
    failed = b(f"icmp ne i32 {status}, 0")
    b.emit(f"br i1 {failed}, label %miss, label %done")
    b.emit("done:")
    b.add_to(counters, 2, 1)
    return compile_ir(b.fast_function(params), "fast", owner=owner)[0]


def _float_constant(ty: str, value: float) -> str:
    """An LLVM IR float constant, exact (the hex form of its double, rounded to float first for float)."""
    import struct

    if ty == "float":
        value = struct.unpack("<f", struct.pack("<f", value))[0]
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", value))[0]


def _in_device(cell: int) -> str:
    """`@in_device(i64 address) -> i1`: whether an allocation in `DeviceRanges` holds `address`."""
    return f"""
define internal i1 @in_device(i64 %a) {{
entry:
  %cell = inttoptr i64 {cell} to ptr
  %starts = load ptr, ptr %cell
  %ends_at = getelementptr i64, ptr %cell, i64 1
  %ends = load ptr, ptr %ends_at
  %count_at = getelementptr i64, ptr %cell, i64 2
  %count = load i64, ptr %count_at
  br label %loop
loop:
  %lo = phi i64 [0, %entry], [%lo2, %body]
  %hi = phi i64 [%count, %entry], [%hi2, %body]
  %more = icmp slt i64 %lo, %hi
  br i1 %more, label %body, label %done
body:
  %sum = add i64 %lo, %hi
  %mid = lshr i64 %sum, 1
  %start_at = getelementptr i64, ptr %starts, i64 %mid
  %start = load i64, ptr %start_at
  %le = icmp sle i64 %start, %a
  %mid1 = add i64 %mid, 1
  %lo2 = select i1 %le, i64 %mid1, i64 %lo
  %hi2 = select i1 %le, i64 %hi, i64 %mid
  br label %loop
done:
  %any = icmp sgt i64 %lo, 0
  br i1 %any, label %check, label %no
check:
  %at = sub i64 %lo, 1
  %end_at = getelementptr i64, ptr %ends, i64 %at
  %end = load i64, ptr %end_at
  %inside = icmp slt i64 %a, %end
  ret i1 %inside
no:
  ret i1 false
}}
"""


# ----------------------------------------------------------------------------- the emulation's launches


@cache
def emulated_launch() -> int:
    """`cuLaunchKernel`'s signature over the emulation: calls `f(params, grid, block)` (a trampoline)."""
    dims = ", ".join(f"i32 %d{i}" for i in range(6))
    text = f"""
define i32 @launch(ptr %f, {dims}, i32 %shared, ptr %stream, ptr %params, ptr %extra) {{
entry:
  %r = call i32 %f(ptr %params, {dims})
  ret i32 %r
}}
"""
    return compile_ir(text, "launch")[0]


@cache
def emulated_copy() -> int:
    """`cuMemcpy`'s signature over the emulation: a memmove of the host bytes behind either address."""
    from oi_compiler.runtime.device_memory import TAG

    text = f"""
declare void @llvm.memmove.p0.p0.i64(ptr, ptr, i64, i1)
define i32 @copy(i64 %dst, i64 %src, i64 %n) {{
entry:
  %d = and i64 %dst, {~TAG}
  %s = and i64 %src, {~TAG}
  %dp = inttoptr i64 %d to ptr
  %sp = inttoptr i64 %s to ptr
  call void @llvm.memmove.p0.p0.i64(ptr %dp, ptr %sp, i64 %n, i1 false)
  ret i32 0
}}
"""
    return compile_ir(text, "copy")[0]


@cache
def trampoline(kernel: int, c_types: tuple[type, ...]) -> int:
    """A trampoline for an emulated kernel at `kernel` taking `c_types` and then the six grid and
    block sizes (i64), made once per kernel: reads each argument from the parameter block's slots
    and calls it, each address the host address behind the emulated device's
    (`EmulatedDeviceMemory.host_address`)."""
    from oi_compiler.runtime.device_memory import TAG

    b = _Body()
    args = []
    for i, c_type in enumerate(c_types[:-6]):
        ty = llvm_type(c_type)
        entry = b(f"getelementptr ptr, ptr %params, i64 {i}")
        slot = b(f"load ptr, ptr {entry}")
        if ty == "ptr":
            address = b(f"and i64 {b(f'load i64, ptr {slot}')}, {~TAG}")
            args.append(f"ptr {b(f'inttoptr i64 {address} to ptr')}")
        else:
            args.append(f"{ty} {b(f'load {ty}, ptr {slot}')}")
    dims = [f"{llvm_type(c)} {b(f'sext i32 %d{i} to i64')}" for i, c in enumerate(c_types[-6:])]
    target = b(f"inttoptr i64 {kernel} to ptr")
    b.emit(f"call void {target}({', '.join(args + dims)})")
    b.emit("ret i32 0")
    body = "\n".join(b.lines)
    params = ", ".join(f"i32 %d{i}" for i in range(6))
    text = f"""
define i32 @trampoline(ptr %params, {params}) {{
entry:
{body}
}}
"""
    return compile_ir(text, "trampoline")[0]
