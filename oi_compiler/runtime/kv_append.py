"""The KV-cache append kernel (`oi.kv`): its IR, built here, and its native code from the backend.

    kernel = append_kernel(32, "error")     # compiled once per (element width, policy)
    fields = [kernel.fields(a.shape) for a in arrays]                # once per shape
    code = kernel([a.ctypes.data for a in arrays], fields)           # arrays checked by the caller

The kernel is one exported `func.func @kv_cache_append` over memrefs of signless integers of the
element's width (a pure copy moves bits: f16/bf16 as i16, f32 as i32, f64 as i64, so NaN payloads
and -0.0 survive), made of `scf.for` loops, `memref.load`/`memref.store` and `arith`:

    func @kv_cache_append(%k_new: memref<?x?x?x?xiW>, %v_new: memref<?x?x?x?xiW>,
                          %offsets: memref<?xi64>,
                          %k_cache: memref<?x?x?x?xiW>, %v_cache: memref<?x?x?x?xiW>) -> i64

The extents come from the memrefs: B, H, L_new and D_k from `k_new`, D_v from `v_new`, L_max
from `k_cache` (the caller has checked that the five shapes agree). First a loop over the samples
finds the first rejected one: a negative offset under both policies, and under policy "error" also
`offsets[b] + L_new > L_max`. If sample b is rejected the kernel returns b + 1 and has written
nothing. Otherwise it copies, for each b and h, rows `[0, n)` of `new[b, h]` to rows
`[offsets[b], offsets[b] + n)` of `cache[b, h]` with `n = clamp(L_max - offsets[b], 0, L_new)`
(all L_new rows under "error"; the rows past the cache's end are skipped under "skip"), and
returns 0. Each row block `[l, d]` of one (b, h) is contiguous in both arrays, so the copy is
one flat loop over `n * D` elements, which LLVM turns into a `memcpy`.

`AppendKernel` calls the exported C-ABI wrapper directly, as `native_step.py` calls the step: a
`JitFunction` would check the five arrays again on every call (about 15 µs), after the plan has.
The caller owns those checks: rank-4 (offsets rank-1) C-contiguous aligned arrays of the
kernel's element width (int64 offsets), the shapes agreeing, the caches writeable and sharing no
memory with another argument (the pointers are `noalias`).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from xdsl.builder import Builder
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    FunctionType,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    StridedLayoutAttr,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint

from oi_compiler.backend.jit import CompiledModule, compile_module

FUNCTION = "kv_cache_append"
PARAMS = ("k_new", "v_new", "offsets", "k_cache", "v_cache")
POLICIES = ("error", "skip")
WIDTHS = (16, 32, 64)

INDEX = IndexType()
I64 = IntegerType(64)
OpT = TypeVar("OpT", bound=Operation)

_kernels: dict[tuple[int, str], AppendKernel] = {}
_lock = threading.Lock()


class AppendKernel:
    """The compiled kernel's C entry point (`llvm.py`'s ABI: each memref as its pointer, offset,
    sizes and strides; the result an i64)."""

    def __init__(self, compiled: CompiledModule):
        self.compiled = compiled  # keeps the machine code alive; its LLVM IR and ABI for inspection
        abi = compiled.abis[FUNCTION]
        params = [t for p in abi.params for t in (ctypes.c_void_p, *[ctypes.c_int64] * (1 + 2 * p.rank))]
        address = compiled.loaded.engine.get_function_address(compiled.symbol(FUNCTION))
        self._native = ctypes.CFUNCTYPE(ctypes.c_int64, *params)(address)

    def __call__(self, pointers: Sequence[int], fields: Sequence[tuple[int, ...]]) -> int:
        """Run on the arrays at `pointers` (in `PARAMS` order) described by their `fields`: 0, or
        b + 1 when sample b's offset is rejected (then nothing is written)."""
        return self._native(*[v for pointer, rest in zip(pointers, fields) for v in (pointer, *rest)])

    @staticmethod
    def fields(shape: Sequence[int]) -> tuple[int, ...]:
        """What follows a C-contiguous array's pointer in the C ABI: offset 0, the sizes, and the
        row-major strides in elements."""
        strides, step = [], 1
        for size in reversed(shape):
            strides.append(step)
            step *= size
        return (0, *shape, *reversed(strides))


def append_kernel(width: int, policy: str) -> AppendKernel:
    """The kernel for elements of `width` bits under `policy` ("error" or "skip"), compiled once
    per process (the backend's compile cache also keeps it on disk across processes)."""
    key = (width, policy)
    with _lock:
        found = _kernels.get(key)
        if found is None:
            found = _kernels[key] = AppendKernel(compile_module(build_module(width, policy)))
        return found


def build_module(width: int, policy: str) -> ModuleOp:
    """The kernel's IR: one exported function, as the module docstring describes."""
    if width not in WIDTHS or policy not in POLICIES:
        raise ValueError(f"kv_append: no kernel for width {width!r}, policy {policy!r}")
    tensor = MemRefType(IntegerType(width), [DYNAMIC_INDEX] * 4)
    offsets = MemRefType(I64, [DYNAMIC_INDEX])
    params = [tensor, tensor, offsets, tensor, tensor]
    block = Block(arg_types=params)
    for arg, name in zip(block.args, PARAMS):
        arg.name_hint = name
    _KernelBuilder(Builder(InsertPoint.at_end(block)), *block.args).emit(policy)
    function = func.FuncOp(FUNCTION, FunctionType.from_lists(params, [I64]), Region(block))
    return ModuleOp([function])


class _KernelBuilder:
    """Emits the kernel's body at a builder's insertion point: the extents first, then `emit`."""

    def __init__(self, b: Builder, k_new: SSAValue, v_new: SSAValue, offsets: SSAValue,
                 k_cache: SSAValue, v_cache: SSAValue):  # fmt: skip
        self.b = b
        self.k_new, self.v_new, self.offsets, self.k_cache, self.v_cache = k_new, v_new, offsets, k_cache, v_cache
        self.zero, self.one = self.const(0), self.const(1)
        self.batch, self.heads = self.dim(k_new, 0), self.dim(k_new, 1)
        self.new_len, self.max_len = self.dim(k_new, 2), self.dim(k_cache, 2)
        self.d_k, self.d_v = self.dim(k_new, 3), self.dim(v_new, 3)

    def emit(self, policy: str) -> None:
        """`return rejected == 0 ? (copy; 0) : rejected`, with `rejected` from `first_rejected`."""
        rejected = self.first_rejected(policy)
        is_ok = self.op(arith.CmpiOp(rejected, self.const(0, I64), "eq")).result
        copy, refuse = Block(), Block()
        branch = self.op(scf.IfOp(is_ok, [I64], Region(copy), Region(refuse)))
        outer = self.b
        self.b = Builder(InsertPoint.at_end(copy))
        self.copy_all()
        self.b.insert(scf.YieldOp(self.const(0, I64)))
        Builder(InsertPoint.at_end(refuse)).insert(scf.YieldOp(rejected))
        self.b = outer
        self.b.insert(func.ReturnOp(branch.results[0]))

    # ------------------------------------------------------------------ helpers

    def op(self, op: OpT) -> OpT:
        return self.b.insert(op)

    def const(self, value: int, ty=INDEX) -> SSAValue:
        return self.op(arith.ConstantOp(IntegerAttr(value, ty))).result

    def dim(self, source: SSAValue, index: int) -> SSAValue:
        return self.op(memref.DimOp(source, self.const(index))).result

    def loop(self, upper: SSAValue, body: Callable[..., SSAValue | None],
             carried: SSAValue | None = None) -> SSAValue | None:  # fmt: skip
        """`scf.for %i = 0 to upper`; `body(i[, carried])` emits the body and returns what it yields."""
        types = [INDEX] if carried is None else [INDEX, carried.type]
        block = Block(arg_types=types)
        loop = self.op(scf.ForOp(self.zero, upper, self.one, [] if carried is None else [carried], Region(block)))
        outer, self.b = self.b, Builder(InsertPoint.at_end(block))
        yielded = body(*block.args)
        self.b.insert(scf.YieldOp(*([] if yielded is None else [yielded])))
        self.b = outer
        return loop.results[0] if carried is not None else None

    # ------------------------------------------------------------------ the two phases

    def first_rejected(self, policy: str) -> SSAValue:
        """b + 1 (i64) for the first sample whose offset `policy` rejects, else 0."""
        slack = self.op(arith.IndexCastOp(self.op(arith.SubiOp(self.max_len, self.new_len)).result, I64)).result

        def body(b: SSAValue, found: SSAValue) -> SSAValue:
            offset = self.op(memref.LoadOp.get(self.offsets, [b])).res
            bad = self.op(arith.CmpiOp(offset, self.const(0, I64), "slt")).result
            if policy == "error":  # offset + L_new > L_max, without overflow
                past_end = self.op(arith.CmpiOp(offset, slack, "sgt")).result
                bad = self.op(arith.OrIOp(bad, past_end)).result
            code = self.op(arith.IndexCastOp(self.op(arith.AddiOp(b, self.one)).result, I64)).result
            is_new = self.op(arith.CmpiOp(found, self.const(0, I64), "eq")).result
            take = self.op(arith.AndIOp(is_new, bad)).result
            return self.op(arith.SelectOp(take, code, found)).result

        return self.loop(self.batch, body, self.const(0, I64))

    def copy_all(self) -> None:
        """For each sample and head, K's and V's rows that fit (all of them once `first_rejected`
        has passed policy "error")."""

        def sample(b: SSAValue) -> None:
            offset = self.op(arith.IndexCastOp(self.op(memref.LoadOp.get(self.offsets, [b])).res, INDEX)).result
            room = self.op(arith.MaxSIOp(self.op(arith.SubiOp(self.max_len, offset)).result, self.zero)).result
            rows = self.op(arith.MinSIOp(room, self.new_len)).result

            def head(h: SSAValue) -> None:
                self.copy_rows(self.k_new, self.k_cache, b, h, offset, rows, self.d_k)
                self.copy_rows(self.v_new, self.v_cache, b, h, offset, rows, self.d_v)

            self.loop(self.heads, head)

        self.loop(self.batch, sample)

    def copy_rows(self, new: SSAValue, cache: SSAValue, b: SSAValue, h: SSAValue, offset: SSAValue,
                  rows: SSAValue, width: SSAValue) -> None:  # fmt: skip
        """`cache[b, h, offset + l, :] = new[b, h, l, :]` for l < rows: one flat loop over the
        `rows * width` contiguous elements, through 1-D views of both arrays."""
        count = self.op(arith.MuliOp(rows, width)).result
        source = self.flat_view(new, self.row_start(b, h, self.new_len, self.zero, width), count)
        target = self.flat_view(cache, self.row_start(b, h, self.max_len, offset, width), count)

        def element(i: SSAValue) -> None:
            value = self.op(memref.LoadOp.get(source, [i])).res
            self.op(memref.StoreOp.get(value, target, [i]))

        self.loop(count, element)

    def row_start(self, b: SSAValue, h: SSAValue, length: SSAValue, row: SSAValue, width: SSAValue) -> SSAValue:
        """The linear index of `[b, h, row, 0]` in a row-major `[B, H, length, width]` array."""
        bh = self.op(arith.AddiOp(self.op(arith.MuliOp(b, self.heads)).result, h)).result
        rows = self.op(arith.AddiOp(self.op(arith.MuliOp(bh, length)).result, row)).result
        return self.op(arith.MuliOp(rows, width)).result

    def flat_view(self, array: SSAValue, start: SSAValue, count: SSAValue) -> SSAValue:
        """`count` elements of `array` from linear index `start`, as a unit-stride 1-D memref."""
        element = array.type.element_type
        ty = MemRefType(element, [DYNAMIC_INDEX], StridedLayoutAttr([1], None))
        view = memref.ReinterpretCastOp(array, [start], [count], [], [DYNAMIC_INDEX], [DYNAMIC_INDEX], [1], ty)
        return self.op(view).result
