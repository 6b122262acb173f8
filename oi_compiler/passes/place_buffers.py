"""`--place-buffers`: which variables of a `device="cuda"` step keep their data in device memory.

At the table level every buffer the step touches is named (`oi_table.buffer @K "data"`, a prefix
table's entry `oi.state_view` through `@W "entries"`), so the split between the host and the device
is decided here, before `--lower-tables` turns names into state words:

- a variable's data may live on the device when every use the host functions make of it (through
  subviews and casts) is an argument of an op kernel call (`oi.gpu_op`: the op's GPU kernels read
  and write it there), either side of a `memref.copy`, or a `memref.dim`. One load or store, or any
  other use, keeps it in host memory. Eligible are a `buffer` or `resizable` (a read's copy) no
  `transfer` shares and that is not an `assign` temporary, a table's data box (a paged table's
  pool of entries), a view's gather buffer (where its slice of a paged table spans pages), an
  `@auto_dim` tensor and a constant prefix table's entries; the rest (sizes, present bytes, page
  tables and counts, address tables, the undo log's records, views' words) is the control plane's
  and stays on the host.
  The verdict is the layout's `device` flag on the variable (`#oi_table.var<..., device>`), which
  the host reads to allocate it (`runtime/native.py`).
- every `memref.copy` of the host functions that is not between two buffers known to be on the
  host becomes a call of a private function `@oi_copy_<n>(source, target) -> i32` marked
  `oi.gpu_op` with op `oi.copy`: `--launch-op-kernels` then hands it to the host like any op, and
  the host copies (`runtime/op_launches.py`: by run-time address, host or device, either side). The
  function's body is the copy itself, so the IR stays runnable on the host. A status other than 0
  leaves the step with that status (1): the step fails at the statement its last marker named, and
  the executor raises the host's own error there (`runtime/cuda_executor.py`).
- `@oi_log`, the undo log's helper, is rebuilt to choose by slot (`_split_log`): the old bytes of
  the device variables go to a second byte area, in device memory (header words `device_log*`; a
  device-to-device copy, an `@oi_copy_<n>` like the others), every other slot's (present bytes,
  `t`, sequences' lengths) to the host's by a host copy. A step that only appends to its KV
  tables then makes no copy from the host to the device, which the driver makes wait for the
  kernels queued before it.
- before that, each fill `step_values.fill` emitted over data that is not the control plane's (a
  reset's refill of a table's entries with `@init`; for an entry of no dims, its one store)
  becomes a call of `@oi_fill_<n>(target)` the same way (op `oi.fill`, the element's bytes in its
  settings), so it keeps nothing on the host.

The op kernels' functions themselves (`oi.gpu_op`) are not looked into: their bodies are replaced
by launches.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import (
    FloatAttr,
    FunctionType,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    UnitAttr,
    UnrealizedConversionCastOp,
    i32,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.backend.llvm import NOINLINE_ATTR
from oi_compiler.dialects.oi_lowered import GPU_OP_ATTR, StateViewOp, StepExitOp
from oi_compiler.dialects.oi_table import LAYOUT_ATTR, BufferOp
from oi_compiler.dtypes import dtype_name, numpy_dtype
from oi_compiler.ir_context import fresh_name
from oi_compiler.lowering import quick_ops
from oi_compiler.lowering.analysis import device_slots

COPY_OP = "oi.copy"  # the `oi.gpu_op` op of a copy the host makes (no registry op has a dot in its name)
FILL_OP = "oi.fill"  # ... and of a fill (settings: the element's bytes, hex)
SPLIT_LOG_ATTR = "oi.split_log"  # on `@oi_log` once it sends device data's bytes to the device's log
_VIEWS = (memref.SubviewOp, memref.CastOp, memref.ReinterpretCastOp, memref.CollapseShapeOp,
          memref.ExpandShapeOp, UnrealizedConversionCastOp)  # fmt: skip


@dataclass(frozen=True)
class PlaceBuffers(ModulePass):
    """Keep in device memory the data the host step only hands to kernels and copies; hand the step's copies to the host"""

    name = "place-buffers"

    def apply(self, ctx, module: ModuleOp) -> None:
        from oi_compiler.lowering.table_lowering import layout_of

        if LAYOUT_ATTR not in module.attributes:
            return
        kernels = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp) and GPU_OP_ATTR in op.attributes}
        hosts = [op for op in module.ops if isinstance(op, func.FuncOp) and not op.is_declaration
                 and op.sym_name.data not in kernels]  # fmt: skip
        taken = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)}  # (the pass may run again)
        layout = layout_of(module)
        kernels |= _replace_fills(module, hosts, layout, taken)
        device, copies = _place(layout, hosts, kernels)
        module.attributes[LAYOUT_ATTR] = layout.to_attr()
        copies = _split_log(module, layout, copies)
        _replace_copies(module, copies, device, taken)


def _split_log(module: ModuleOp, layout, copies: list[memref.CopyOp]) -> list[memref.CopyOp]:
    """`@oi_log` rebuilt to send device data's bytes to the device's log and every other slot's
    to the host's (`Helpers.split_log`); the copies, its host copy left out (host to host)."""
    log = next((op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "oi_log"), None)
    slots = sorted(slot for slot, var in device_slots(layout.vars).items() if var.memory == "persistent")  # (only
    # persistent data is journaled: the same words the host allocates on the device)
    if log is None or not slots:
        return copies
    if SPLIT_LOG_ATTR in log.attributes:  # the pass ran before: its device copy is a call already
        return [copy for copy in copies if not log.is_ancestor(copy)]
    from oi_compiler.lowering.step_ir import Helpers

    kept = [copy for copy in copies if not log.is_ancestor(copy)]
    split, device_copy = Helpers.split_log(slots)
    split.attributes[SPLIT_LOG_ATTR] = UnitAttr()
    Rewriter.replace_op(log, split)
    return [*kept, device_copy]


def _replace_fills(module: ModuleOp, hosts: list[func.FuncOp], layout, taken: set[str]) -> set[str]:
    """Each fill nest over data that may live on the device a call of `@oi_fill_<n>`; their names.
    (A fill of the control plane's bytes, or of a variable that stays on the host whatever its
    uses, an `assign` temporary's, stays a loop: a call would only cost a trip to the host.)"""
    fills: dict[tuple, str] = {}
    for function in hosts:
        for op in [op for op in quick_ops.walk(function) if isinstance(op, scf.ForOp | memref.StoreOp)]:
            found = None if op.parent is None else _fill_nest(op) if isinstance(op, scf.ForOp) else _entry_fill(op)
            if found is None or not _may_be_device(found[0], layout):  # (no parent: inside one replaced)
                continue
            target, pattern, value = found
            key = (target.type, pattern)
            if key not in fills:
                fills[key] = _host_function(module, fresh_name("oi_fill", taken, first=0), [target.type], FILL_OP,
                                            {"pattern": pattern}, _fill_body(value))  # fmt: skip
            _call_host(op, fills[key], [target])
    return set(fills.values())


def _entry_fill(store: memref.StoreOp) -> tuple[SSAValue, str, SSAValue] | None:
    """What `step_values.fill` emits for a table entry of no dims (one store, no loop): (target,
    the element's bytes in hex, the value), when `store` stores a constant into a view of a table's
    entries; else None."""
    owner = _root(store.memref)
    if store.indices or not isinstance(owner, BufferOp) or owner.field.data != "data":
        return None
    pattern = _pattern(store.value, store.memref.type.element_type)
    return None if pattern is None else (store.memref, pattern, store.value)


def _place(layout, hosts: list[func.FuncOp], kernels: set[str]) -> tuple[set[str], list[memref.CopyOp]]:
    """Mark `device` in `layout` each eligible variable whose every use is a device use; the names
    of the device variables, and the host functions' copies."""
    kept_on_host: set[str] = set()
    seen: set[str] = set()
    copies: list[memref.CopyOp] = []
    for function in hosts:
        for op in quick_ops.walk(function):
            name = _data_of(op)
            if name is not None:
                seen.add(name)
                if not _device_uses(op.results[0], kernels):
                    kept_on_host.add(name)
            elif isinstance(op, memref.CopyOp):
                copies.append(op)
    for name in seen - kept_on_host:
        var = layout.vars.get(name)
        if var is not None and _eligible(var):
            layout.vars[name] = dataclasses.replace(var, device=True)
    return {name for name, var in layout.vars.items() if var.device}, copies


def _replace_copies(module: ModuleOp, copies: list[memref.CopyOp], device: set[str], taken: set[str]) -> None:
    """Each copy not between two host buffers a call of `@oi_copy_<n>` (one per pair of types)."""
    functions: dict[tuple, str] = {}
    for copy in copies:
        if _on_host(copy.source, device) and _on_host(copy.destination, device):
            continue
        key = (copy.source.type, copy.destination.type)
        if key not in functions:
            functions[key] = _host_function(module, fresh_name("oi_copy", taken, first=0), list(key), COPY_OP, {},
                                            lambda block: block.add_op(memref.CopyOp(*block.args)))  # fmt: skip
        _call_host(copy, functions[key], [copy.source, copy.destination])


_DATA_FIELDS = ("buffer", "data", "gather")  # a buffer's, a table's entries (a pool's), a view's gather buffer


def _data_of(op: Operation) -> str | None:
    """The variable whose data `op` is a view of: a buffer, a table's data box (a paged table's
    pool), a view's gather buffer, a prefix table's entry."""
    if isinstance(op, BufferOp) and op.field.data in _DATA_FIELDS:
        return op.var.string_value()
    if isinstance(op, StateViewOp) and op.var is None:  # an entry, through its prefix table's addresses
        words = op.words.owner
        if isinstance(words, BufferOp) and words.field.data == "entries":
            return words.var.string_value()
    return None


def _eligible(var) -> bool:
    if var.kind in ("buffer", "resizable"):  # (a resizable: a `cache.read` destination the read copies into)
        return not var.aliases and not var.temp
    if var.kind in ("table", "view", "auto"):  # (a view: its gather buffer, where a slice of a paged table spans
        return True  # pages; auto: an @auto_dim tensor, which the host reallocates as its counts grow)
    return var.kind == "prefix" and var.memory == "constant"  # (a volatile one's entries are made on first use)


def _device_uses(value: SSAValue, kernels: set[str]) -> bool:
    """Every use of `value` (through views of it) is a kernel's argument, a copy's side or a dim."""
    for use in value.uses:
        op = use.operation
        if isinstance(op, _VIEWS):
            if not _device_uses(op.results[0], kernels):
                return False
        elif isinstance(op, func.CallOp):
            if op.callee.string_value() not in kernels:
                return False
        elif isinstance(op, scf.YieldOp) and isinstance(op.parent_op(), scf.IfOp):  # (`StepIR.choose`'s result)
            if not _device_uses(op.parent_op().results[use.index], kernels):
                return False
        elif not isinstance(op, (memref.CopyOp, memref.DimOp)):
            return False
    return True


def _root(value: SSAValue) -> Operation | None:
    """What `value` is a view of (through subviews and casts): its defining op."""
    while isinstance(value.owner, _VIEWS):
        value = value.owner.operands[0]
    return value.owner if isinstance(value.owner, Operation) else None


def _on_host(value: SSAValue, device: set[str]) -> bool:
    """Whether `value` is known to be host memory: a view of a named buffer that stays there."""
    owner = _root(value)
    if isinstance(owner, BufferOp):
        return owner.field.data not in _DATA_FIELDS or owner.var.string_value() not in device
    return False  # an entry, a view from a word (the undo log's bytes), an argument, a choice: either, at run time


def _may_be_device(value: SSAValue, layout) -> bool:
    """Whether `value` may view device memory: not the control plane's bytes (present bytes,
    address tables...) nor a variable that is not eligible (`_eligible`)."""
    owner = _root(value)
    if not isinstance(owner, BufferOp):
        return True  # an entry, a view from a word: known at run time only
    var = layout.vars.get(owner.var.string_value())
    return owner.field.data in _DATA_FIELDS and var is not None and _eligible(var)


def _fill_nest(loop: scf.ForOp) -> tuple[SSAValue, str, SSAValue] | None:
    """(target, the element's bytes in hex, the value stored) when `loop` is what `step_values.fill`
    emits: a perfect nest over `[0, dim)` of every dim of a memref defined outside it, storing one
    constant at the loops' indices; else None."""
    ivs, uppers, op = [], [], loop
    while True:
        if not isinstance(op, scf.ForOp) or _constant(op.lb) != 0 or _constant(op.step) != 1:
            return None
        ivs.append(op.body.block.args[0])
        uppers.append(op.ub)
        body = list(op.body.block.ops)
        if len(body) != 2 or not isinstance(body[1], scf.YieldOp):
            return None
        op = body[0]
        if isinstance(op, memref.StoreOp):
            break
    target = op.memref
    if list(op.indices) != ivs or target.type.get_num_dims() != len(ivs) or loop.is_ancestor(target.owner):
        return None
    for d, (upper, size) in enumerate(zip(uppers, target.type.get_shape())):
        dim = upper.owner
        if _constant(upper) != size and not (isinstance(dim, memref.DimOp) and dim.source == target
                                             and _constant(dim.index) == d):  # fmt: skip
            return None
    pattern = _pattern(op.value, target.type.element_type)
    return None if pattern is None else (target, pattern, op.value)


def _constant(value: SSAValue) -> int | float | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, (IntegerAttr, FloatAttr)):
        return owner.value.value.data
    return None


def _pattern(value: SSAValue, element) -> str | None:
    """The bytes of one element holding `value` (a constant, or a constant truncated to f16/bf16), hex."""
    owner = value.owner
    if isinstance(owner, arith.TruncFOp):
        owner = owner.input.owner
    if not isinstance(owner, arith.ConstantOp) or not isinstance(owner.value, (IntegerAttr, FloatAttr)):
        return None
    number = owner.value.value.data
    dtype = np.dtype(numpy_dtype(dtype_name(element)))
    if dtype == np.bool_:
        number = number != 0
    elif dtype.kind in "iu":
        number = int(number) % (1 << (8 * dtype.itemsize))
        dtype = np.dtype(f"u{dtype.itemsize}")
    return np.array(number).astype(dtype).tobytes().hex()


def _fill_body(value: SSAValue):
    """The fill function's body: the same nest over its argument, storing a copy of `value`."""
    def body(block: Block) -> None:
        from oi_compiler.lowering.step_ir import StepIR

        ir = StepIR(block, None)
        chain = [value.owner] if isinstance(value.owner, arith.ConstantOp) else [value.owner.input.owner, value.owner]
        mapping: dict = {}
        for op in chain:
            clone = op.clone(value_mapper=mapping)
            mapping.update(zip(op.results, clone.results))
            ir.emit(clone)
        target, stored = block.args[0], mapping[value]
        sizes = [ir.const(d) if d >= 0 else ir.emit(memref.DimOp(target, ir.const(i)))
                 for i, d in enumerate(target.type.get_shape())]  # fmt: skip
        with ir.for_each(sizes) as ivs:
            ir.emit(memref.StoreOp.get(stored, target, ivs))
    return body


def _host_function(module: ModuleOp, name: str, types: list, op: str, settings: dict, body) -> str:
    """A private function `@name(types...) -> i32` marked `oi.gpu_op` with `op` (the host's), whose
    body (`body(block)` adds it) does the same on the host, then returns 0."""
    dtype = dtype_name(types[-1].element_type)
    info = {"op": op, "settings": settings, "in_dtypes": [dtype] * (len(types) - 1), "out_dtype": dtype,
            "runtime": []}  # fmt: skip
    block = Block(arg_types=types)
    body(block)
    zero = arith.ConstantOp.from_int_and_width(0, 32)
    block.add_ops([zero, func.ReturnOp(zero.result)])
    function = func.FuncOp(name, FunctionType.from_lists(types, [i32]), Region(block), visibility="private")
    function.attributes[GPU_OP_ATTR] = StringAttr(json.dumps(info))
    function.attributes[NOINLINE_ATTR] = UnitAttr()
    module.body.block.add_op(function)
    return name


def _call_host(op: Operation, callee: str, args: list[SSAValue]) -> None:
    """`op` replaced by a call of `callee`; a non-zero status leaves the step with it (the host's error)."""
    call = quick_ops.call(callee, args, [i32])
    zero = quick_ops.constant(0, i32)
    failed = quick_ops.cmpi("ne", call.res[0], zero.result)
    leave = Block()
    leave.add_ops([StepExitOp(call.res[0]), scf.YieldOp()])
    check = scf.IfOp(failed.result, [], Region(leave), Region(Block([scf.YieldOp()])))
    Rewriter.insert_op([call, zero, failed, check], InsertPoint.before(op))
    Rewriter.erase_op(op)
