"""Memrefs as MLIR descriptors, and the `memref` dialect's emitters.

A memref value is a `MemRefDescriptor`: the allocated pointer (what `free` takes), the aligned
pointer (where element 0 lives, less the offset), the offset, the sizes and the strides, all in
elements. The fields are separate LLVM values, never one aggregate, and every field the memref's
type fixes (a static size, the identity layout's offset 0 and row-major strides, a strided
layout's static entries) is a constant, so LLVM sees unit strides and constant trip counts.

An element's address is `getelementptr inbounds elem, aligned, offset + sum(index_i * stride_i)`,
with `nsw` arithmetic: provenance stays with the pointer, which LLVM's alias analysis and
vectorisers need. `i1` elements are stored as bytes (0 or 1), as numpy stores `bool`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llvmlite import ir
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AffineMapAttr,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    MemRefType,
    NoneAttr,
    StridedLayoutAttr,
    UnitAttr,
    UnrealizedConversionCastOp,
)
from xdsl.ir import Attribute, Operation, SSAValue

from oi_compiler.backend.llvm_types import (
    I1,
    I8,
    INDEX,
    PTR,
    bit_width,
    constant,
    element_type,
    index_const,
    scalar_type,
)
from oi_compiler.errors import PassError

if TYPE_CHECKING:
    from oi_compiler.backend.llvm import FunctionEmitter

ALLOC_ALIGNMENT = 64


@dataclass(frozen=True)
class MemRefDescriptor:
    """A memref value: MLIR's descriptor fields as separate LLVM values."""

    type: MemRefType
    allocated: ir.Value
    aligned: ir.Value
    offset: ir.Value
    sizes: tuple[ir.Value, ...]
    strides: tuple[ir.Value, ...]


LoweredValue = ir.Value | MemRefDescriptor
Emitter = Callable[["FunctionEmitter", Operation], list[LoweredValue]]


# ----------------------------------------------------------------------------- layouts


def is_identity_layout(ty: MemRefType) -> bool:
    """Row-major and offset 0: the layout a memref type without layout attribute has."""
    layout = ty.layout
    if isinstance(layout, NoneAttr):
        return True
    if isinstance(layout, AffineMapAttr):
        return layout.data.is_identity()
    if isinstance(layout, StridedLayoutAttr):
        return False
    raise PassError(f"backend: unsupported memref layout {layout}")


def static_dims(values: Sequence[int]) -> list[int | None]:
    """xDSL's static index lists with `DYNAMIC_INDEX` as None."""
    return [None if v == DYNAMIC_INDEX else v for v in values]


def check_memref_type(ty: Attribute) -> MemRefType:
    """`ty` if it is a memref the backend can lower, else PassError."""
    if not isinstance(ty, MemRefType):
        raise PassError(f"backend: unsupported type {ty}")
    is_identity_layout(ty)
    scalar_type(ty.element_type)
    return ty


# ----------------------------------------------------------------------------- index arithmetic


def fold_add(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    """`a + b` (nsw), folded when both are constants or one is 0."""
    if isinstance(a, ir.Constant) and isinstance(b, ir.Constant):
        return index_const(a.constant + b.constant)
    if isinstance(a, ir.Constant) and a.constant == 0:
        return b
    if isinstance(b, ir.Constant) and b.constant == 0:
        return a
    return builder.add(a, b, flags=("nsw",))


def fold_mul(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    """`a * b` (nsw), folded when both are constants or one is 0 or 1."""
    if isinstance(a, ir.Constant):
        if isinstance(b, ir.Constant):
            return index_const(a.constant * b.constant)
        if a.constant in (0, 1):
            return b if a.constant == 1 else a
    elif isinstance(b, ir.Constant) and b.constant in (0, 1):
        return a if b.constant == 1 else b
    return builder.mul(a, b, flags=("nsw",))


def row_major_strides(builder: ir.IRBuilder, sizes: Sequence[ir.Value]) -> tuple[ir.Value, ...]:
    if not sizes:  # rank 0: no strides (a descriptor of three fields)
        return ()
    strides = [index_const(1)]
    for size in reversed(sizes[1:]):
        strides.append(fold_mul(builder, strides[-1], size))
    return tuple(reversed(strides))


def element_count(builder: ir.IRBuilder, sizes: Sequence[ir.Value]) -> ir.Value:
    count = index_const(1)
    for size in sizes:
        count = fold_mul(builder, count, size)
    return count


# ----------------------------------------------------------------------------- descriptors


def make_descriptor(
    builder: ir.IRBuilder,
    ty: MemRefType,
    allocated: ir.Value,
    aligned: ir.Value,
    offset: ir.Value,
    sizes: Sequence[ir.Value],
    strides: Sequence[ir.Value],
) -> MemRefDescriptor:
    """A descriptor of type `ty`, each field the type fixes replaced by its constant."""
    sizes = tuple(
        index_const(d) if d is not None else s for d, s in zip(static_dims(ty.get_shape()), sizes)
    )
    if is_identity_layout(ty):
        return MemRefDescriptor(ty, allocated, aligned, index_const(0), sizes,
                                row_major_strides(builder, sizes))  # fmt: skip
    layout = ty.layout
    assert isinstance(layout, StridedLayoutAttr)
    strides = tuple(
        index_const(s) if s is not None else given for s, given in zip(layout.get_strides(), strides)
    )
    static_offset = layout.get_offset()
    offset = index_const(static_offset) if static_offset is not None else offset
    return MemRefDescriptor(ty, allocated, aligned, offset, sizes, strides)


def flat_types(ty: Attribute) -> list[ir.Type]:
    """The LLVM values a value of type `ty` travels as through phis, calls and returns."""
    if isinstance(ty, MemRefType):
        rank = check_memref_type(ty).get_num_dims()
        return [PTR, PTR, INDEX] + [INDEX] * (2 * rank)
    return [scalar_type(ty)]


def flatten(value: LoweredValue) -> list[ir.Value]:
    if isinstance(value, MemRefDescriptor):
        return [value.allocated, value.aligned, value.offset, *value.sizes, *value.strides]
    return [value]


def unflatten(builder: ir.IRBuilder, ty: Attribute, values: Sequence[ir.Value]) -> LoweredValue:
    """The inverse of `flatten` for a value of type `ty`."""
    if not isinstance(ty, MemRefType):
        return values[0]
    rank = ty.get_num_dims()
    allocated, aligned, offset = values[:3]
    sizes, strides = values[3 : 3 + rank], values[3 + rank :]
    return make_descriptor(builder, ty, allocated, aligned, offset, sizes, strides)


def element_pointer(builder: ir.IRBuilder, desc: MemRefDescriptor, indices: Sequence[ir.Value]) -> ir.Value:
    """The address of element `indices`, as one inbounds GEP off the aligned pointer (the
    pointer itself at a constant linear index 0: the GEP would only make work for LLVM)."""
    linear = desc.offset
    for index, stride in zip(indices, desc.strides):
        linear = fold_add(builder, linear, fold_mul(builder, index, stride))
    if isinstance(linear, ir.Constant) and linear.constant == 0:
        return desc.aligned
    return builder.gep(desc.aligned, [linear], inbounds=True, source_etype=storage_type(desc.type))


def storage_type(ty: MemRefType) -> ir.Type:
    """The LLVM type an element occupies in memory: `i1` and `i4` take a byte holding their bit
    pattern zero-extended, as numpy's bool and ml_dtypes' int4/uint4 do."""
    elem = element_type(ty)
    return I8 if isinstance(elem, ir.IntType) and elem.width < 8 else elem


def storage_bytes(ty: MemRefType) -> int:
    return bit_width(storage_type(ty)) // 8


def load_element(builder: ir.IRBuilder, desc: MemRefDescriptor, indices: Sequence[ir.Value]) -> ir.Value:
    pointer = element_pointer(builder, desc, indices)
    value = builder.load(pointer, typ=storage_type(desc.type), align=storage_bytes(desc.type))
    elem = element_type(desc.type)
    return builder.trunc(value, elem) if elem != value.type else value


def store_element(
    builder: ir.IRBuilder, desc: MemRefDescriptor, indices: Sequence[ir.Value], value: ir.Value
) -> None:
    pointer = element_pointer(builder, desc, indices)
    if value.type != storage_type(desc.type):
        value = builder.zext(value, I8)
    builder.store(value, pointer, align=storage_bytes(desc.type))


def mixed_values(static: Sequence[int], dynamic: Sequence[ir.Value]) -> list[ir.Value]:
    """An op's offsets, sizes or strides: static entries as constants, `?` from the operands."""
    pending = iter(dynamic)
    return [next(pending) if v == DYNAMIC_INDEX else index_const(v) for v in static]


# ----------------------------------------------------------------------------- emitters


def _result_type(op: Operation) -> MemRefType:
    return check_memref_type(op.results[0].type)


def _allocation_sizes(fx: FunctionEmitter, op: memref.AllocOp | memref.AllocaOp) -> list[ir.Value]:
    ty = _result_type(op)
    if not is_identity_layout(ty):
        raise PassError(f"backend: {op.name} of a non-identity layout is not supported")
    dynamic = [fx.value(v) for v in op.dynamic_sizes]
    return mixed_values(ty.get_shape(), dynamic)


def _alignment(op: memref.AllocOp | memref.AllocaOp) -> int:
    requested = op.alignment.value.data if isinstance(op.alignment, IntegerAttr) else 1
    return max(ALLOC_ALIGNMENT, requested)


#: The largest buffer `memref.alloc` places in the stack frame (MLIR's promote-buffers-to-stack,
#: `max-alloc-size-in-bytes`): a kernel's small temporaries (attention's per-chunk scores and
#: sums, rope's tables) then cost no allocator call per call, and a frame holding a few of them
#: stays far below the stacks of the threads that run kernels (8 MiB by default on Linux,
#: Python's threads included).
STACK_BUFFER_BYTES = 16 * 1024


def emit_alloc(fx: FunctionEmitter, op: memref.AllocOp) -> list[LoweredValue]:
    """`aligned_alloc(64, bytes rounded up to 64)`: allocated and aligned pointers coincide. A
    buffer of a static size up to `STACK_BUFFER_BYTES` that never leaves the function (see
    `stays_local`) is a stack buffer in the entry block instead, as a static `memref.alloca`
    is, and its `memref.dealloc` does nothing."""
    b, ty = fx.builder, _result_type(op)
    sizes = _allocation_sizes(fx, op)
    align = _alignment(op)
    if _fits_the_stack(ty, sizes) and stays_local(op.memref):
        with b.goto_entry_block():
            pointer = b.alloca(storage_type(ty), size=element_count(b, sizes))
        pointer.align = align
        return [make_descriptor(b, ty, pointer, pointer, index_const(0), sizes, ())]
    nbytes = fold_mul(b, element_count(b, sizes), index_const(storage_bytes(ty)))
    rounded = b.and_(b.add(nbytes, index_const(align - 1)), index_const(-align))
    aligned_alloc = fx.declare("aligned_alloc", PTR, [INDEX, INDEX])
    pointer = b.call(aligned_alloc, [index_const(align), rounded])
    return [make_descriptor(b, ty, pointer, pointer, index_const(0), sizes, ())]


VIEW_OPS = (memref.SubviewOp, memref.CastOp, memref.ReinterpretCastOp)
_LOCAL_USES = (memref.LoadOp, memref.StoreOp, memref.DimOp, memref.CopyOp)


_FORWARDING = (*VIEW_OPS, arith.SelectOp, UnrealizedConversionCastOp, func.CallOp)


def escapes(value: SSAValue) -> bool:
    """Whether the buffer may leave the region that allocated it: yielded out of a loop
    iteration or returned, directly or through views, `select`s, casts, `scf.if` results or a
    call's memref results (conservatively: any use this does not know)."""
    for use in value.uses:
        user = use.operation
        if isinstance(user, _LOCAL_USES):
            continue
        if isinstance(user, _FORWARDING):
            if any(isinstance(r.type, MemRefType) and escapes(r) for r in user.results):
                return True
            continue
        if isinstance(user, scf.YieldOp) and isinstance(user.parent_op(), scf.IfOp):
            if escapes(user.parent_op().results[use.index]):
                return True
            continue
        return True
    return False


def _fits_the_stack(ty: MemRefType, sizes: Sequence[ir.Value]) -> bool:
    if not all(isinstance(s, ir.Constant) for s in sizes):
        return False
    return math.prod(s.constant for s in sizes) * storage_bytes(ty) <= STACK_BUFFER_BYTES


_ELEMENT_USES = (*_LOCAL_USES, memref.DeallocOp)  # what `stays_local` allows: element access, or the dealloc


def stays_local(value: SSAValue) -> bool:
    """Whether every use of the buffer, directly or through views, reads or writes its elements or
    deallocates it: no call, `select`, yield or return takes it, so it dies with the function
    (or with its loop iteration, where an entry-block buffer may be reused), and no `free`
    can be reached with a pointer that another use has merged with it."""
    for use in value.uses:
        user = use.operation
        if isinstance(user, VIEW_OPS):
            if not stays_local(user.results[0]):
                return False
        elif not isinstance(user, _ELEMENT_USES):
            return False
    return True


def emit_alloca(fx: FunctionEmitter, op: memref.AllocaOp) -> list[LoweredValue]:
    """A stack buffer. A static one goes to the entry block (one allocation per call) when it is
    at the function's top level or does not escape its region (scf loop bodies are automatic
    allocation scopes, as in MLIR: the buffer is dead after the iteration); a later iteration
    then reuses it, which MLIR's semantics allow (its contents start undefined). Any other one is
    allocated in place, and the enclosing loop iteration releases it (`allocation_scope`)
    unless it escapes."""
    ty = _result_type(op)
    sizes = _allocation_sizes(fx, op)
    b = fx.builder
    static = all(isinstance(s, ir.Constant) for s in sizes)
    top_level = fx.is_top_level(op)
    escaping = not top_level and escapes(op.memref)
    if static and not escaping:
        with b.goto_entry_block():
            pointer = b.alloca(storage_type(ty), size=element_count(b, sizes))
    else:
        pointer = b.alloca(storage_type(ty), size=element_count(b, sizes))
        if escaping:
            fx.alloca_scope.escaping += 1
        elif not top_level:
            fx.alloca_scope.restorable += 1
    pointer.align = _alignment(op)
    return [make_descriptor(b, ty, pointer, pointer, index_const(0), sizes, ())]


def emit_dealloc(fx: FunctionEmitter, op: memref.DeallocOp) -> list[LoweredValue]:
    """`free`; nothing for a buffer `emit_alloc` placed on the stack."""
    allocated = fx.value(op.memref).allocated
    if not isinstance(allocated, ir.AllocaInstr):
        fx.builder.call(fx.declare("free", ir.VoidType(), [PTR]), [allocated])
    return []


def emit_load(fx: FunctionEmitter, op: memref.LoadOp) -> list[LoweredValue]:
    indices = [fx.value(v) for v in op.indices]
    return [load_element(fx.builder, fx.value(op.memref), indices)]


def emit_store(fx: FunctionEmitter, op: memref.StoreOp) -> list[LoweredValue]:
    indices = [fx.value(v) for v in op.indices]
    store_element(fx.builder, fx.value(op.memref), indices, fx.value(op.value))
    return []


def emit_dim(fx: FunctionEmitter, op: memref.DimOp) -> list[LoweredValue]:
    """A size; a dimension not known at compile time selects among the sizes."""
    desc, index = fx.value(op.source), fx.value(op.index)
    if isinstance(index, ir.Constant):
        if not 0 <= index.constant < len(desc.sizes):
            raise PassError(f"backend: memref.dim index {index.constant} is out of range for "
                            f"{desc.type} (rank {len(desc.sizes)})")  # fmt: skip
        return [desc.sizes[index.constant]]
    result: ir.Value = ir.Constant(INDEX, ir.Undefined)
    for dim, size in enumerate(desc.sizes):
        is_dim = fx.builder.icmp_signed("==", index, index_const(dim))
        result = fx.builder.select(is_dim, size, result)
    return [result]


def _kept_dims(op: memref.SubviewOp, sizes: Sequence[int]) -> list[int]:
    """The source dims a rank-reducing subview keeps: unit dims dropped where the result lacks them."""
    result_shape = static_dims(_result_type(op).get_shape())
    kept: list[int] = []
    for dim, size in enumerate(static_dims(sizes)):
        if len(kept) < len(result_shape) and result_shape[len(kept)] == size:
            kept.append(dim)
        elif size != 1:
            raise PassError(f"backend: cannot match subview sizes {list(sizes)} to {op.result.type}")
    if len(kept) != len(result_shape):
        raise PassError(f"backend: cannot match subview sizes {list(sizes)} to {op.result.type}")
    return kept


def emit_subview(fx: FunctionEmitter, op: memref.SubviewOp) -> list[LoweredValue]:
    b, src = fx.builder, fx.value(op.source)
    offsets = mixed_values(op.static_offsets.get_values(), [fx.value(v) for v in op.offsets])
    sizes = mixed_values(op.static_sizes.get_values(), [fx.value(v) for v in op.sizes])
    steps = mixed_values(op.static_strides.get_values(), [fx.value(v) for v in op.strides])
    offset = src.offset
    for start, stride in zip(offsets, src.strides):
        offset = fold_add(b, offset, fold_mul(b, start, stride))
    strides = [fold_mul(b, step, stride) for step, stride in zip(steps, src.strides)]
    kept = _kept_dims(op, op.static_sizes.get_values())
    return [make_descriptor(b, _result_type(op), src.allocated, src.aligned, offset,
                            [sizes[d] for d in kept], [strides[d] for d in kept])]  # fmt: skip


def emit_cast(fx: FunctionEmitter, op: memref.CastOp) -> list[LoweredValue]:
    src = fx.value(op.source)
    return [make_descriptor(fx.builder, _result_type(op), src.allocated, src.aligned, src.offset,
                            src.sizes, src.strides)]  # fmt: skip


def emit_reinterpret_cast(fx: FunctionEmitter, op: memref.ReinterpretCastOp) -> list[LoweredValue]:
    src = fx.value(op.source)
    offset = mixed_values(op.static_offsets.get_values(), [fx.value(v) for v in op.offsets])[0]
    sizes = mixed_values(op.static_sizes.get_values(), [fx.value(v) for v in op.sizes])
    strides = mixed_values(op.static_strides.get_values(), [fx.value(v) for v in op.strides])
    return [make_descriptor(fx.builder, _result_type(op), src.allocated, src.aligned, offset,
                            sizes, strides)]  # fmt: skip


def emit_copy(fx: FunctionEmitter, op: memref.CopyOp) -> list[LoweredValue]:
    """`llvm.memcpy` of the trailing dims both sides keep contiguous (all of them between identity
    layouts, an entry's between strided views of tables), in a loop over the others."""
    src, dst = fx.value(op.source), fx.value(op.destination)
    rank = len(src.sizes)
    block = min(contiguous_suffix(src.type), contiguous_suffix(dst.type))
    if block == 0:
        _copy_elements(fx, src, dst, [])
        return []
    memcpy = fx.declare("llvm.memcpy.p0.p0.i64", ir.VoidType(), [PTR, PTR, INDEX, I1])
    nbytes = fold_mul(fx.builder, element_count(fx.builder, src.sizes[rank - block :]),
                      index_const(storage_bytes(src.type)))  # fmt: skip

    def copy(indices: list[ir.Value]) -> None:
        if len(indices) < rank - block:
            def body(iv: ir.Value, carried: list[LoweredValue]) -> list[LoweredValue]:
                copy([*indices, iv])
                return carried

            fx.counted_loop(index_const(0), src.sizes[len(indices)], index_const(1), [], [], body)
            return
        zeros = [index_const(0)] * block
        source = element_pointer(fx.builder, src, [*indices, *zeros])
        target = element_pointer(fx.builder, dst, [*indices, *zeros])
        fx.builder.call(memcpy, [target, source, nbytes, ir.Constant(I1, 0)])

    copy([])
    return []


def contiguous_suffix(ty: MemRefType) -> int:
    """How many trailing dims of `ty` are one contiguous block whatever the run-time sizes and
    strides (from the type alone): every dim for an identity layout; for a strided one, the dims
    whose static strides are the row-major ones of the static sizes after them."""
    shape = ty.get_shape()
    if is_identity_layout(ty):
        return len(shape)
    strides = ty.layout.get_strides()
    count, expected = 0, 1
    for size, stride in zip(reversed(shape), reversed(strides)):
        if stride != expected:
            break
        count += 1
        if size < 0:  # a dynamic extent: nothing before it has a stride known here
            break
        expected *= size
    return count


def _copy_elements(
    fx: FunctionEmitter, src: MemRefDescriptor, dst: MemRefDescriptor, indices: list[ir.Value]
) -> None:
    """Copy every element whose leading indices are `indices`, one loop per remaining dim."""
    if len(indices) == len(src.sizes):
        store_element(fx.builder, dst, indices, load_element(fx.builder, src, indices))
        return

    def body(iv: ir.Value, carried: list[LoweredValue]) -> list[LoweredValue]:
        _copy_elements(fx, src, dst, [*indices, iv])
        return carried

    fx.counted_loop(index_const(0), src.sizes[len(indices)], index_const(1), [], [], body)


def emit_get_global(fx: FunctionEmitter, op: memref.GetGlobalOp) -> list[LoweredValue]:
    ty = _result_type(op)
    pointer = fx.module.globals[op.name_.string_value()]
    sizes = [index_const(d) for d in ty.get_shape()]
    return [make_descriptor(fx.builder, ty, pointer, pointer, index_const(0), sizes, ())]


def emit_global(module: ir.Module, op: memref.GlobalOp) -> None:
    """An LLVM global array holding the memref's elements (zeroed when uninitialised)."""
    ty = check_memref_type(op.type)
    elem = storage_type(ty)
    count = 1
    for d in ty.get_shape():
        count *= d
    array = ir.ArrayType(elem, count)
    gv = ir.GlobalVariable(module, array, op.sym_name.data)
    gv.type = PTR  # llvmlite would type uses as `[N x T]*`; LLVM's pointers are opaque
    gv.align = op.alignment.value.data if op.alignment is not None else ALLOC_ALIGNMENT
    gv.global_constant = op.constant is not None
    if op.sym_visibility is not None and op.sym_visibility.data == "private":
        gv.linkage = "internal"
    initial = op.initial_value
    if isinstance(initial, UnitAttr):
        gv.initializer = ir.Constant(array, None)
        return
    assert isinstance(initial, DenseIntOrFPElementsAttr)
    values = list(initial.get_values())
    values = values * count if len(values) == 1 else values
    gv.initializer = ir.Constant(array, [_stored_constant(ty, v) for v in values])


def _stored_constant(ty: MemRefType, value: int | float) -> ir.Constant:
    """An element as memory holds it (i1/i4: a byte with the zero-extended bit pattern)."""
    elem = element_type(ty)
    if isinstance(elem, ir.IntType) and elem.width < 8:
        return ir.Constant(I8, int(value) & ((1 << elem.width) - 1))
    return constant(ty.element_type, value)


MEMREF_EMITTERS: dict[type[Operation], Emitter] = {
    memref.AllocOp: emit_alloc,
    memref.AllocaOp: emit_alloca,
    memref.DeallocOp: emit_dealloc,
    memref.LoadOp: emit_load,
    memref.StoreOp: emit_store,
    memref.DimOp: emit_dim,
    memref.SubviewOp: emit_subview,
    memref.CastOp: emit_cast,
    memref.ReinterpretCastOp: emit_reinterpret_cast,
    memref.CopyOp: emit_copy,
    memref.GetGlobalOp: emit_get_global,
}
