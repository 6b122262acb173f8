"""`--place-buffers`: which variables of a `device="cuda"` step keep their data in device memory.

At the table level every buffer the step touches is named (`oi_table.buffer @K "data"`, a prefix
table's entry `oi.state_view` through `@W "entries"`), so the split between the host and the device
is decided here, before `--lower-tables` turns names into state words:

- a variable's data may live on the device when every use the host functions make of it (through
  subviews and casts) is an argument of an op kernel call (`oi.gpu_op`: the op's GPU kernels read
  and write it there), either side of a `memref.copy`, or a `memref.dim`. One load or store, or any
  other use, keeps it in host memory. Eligible are a `buffer` no `transfer` shares and that is not
  an `assign` temporary, a dense table's data box and a prefix table's entries; the rest (sizes,
  present bytes, address tables, the undo log's records, paged pools, views' words) is the
  control plane's and stays on the host. The verdict is the layout's `device` flag on the variable
  (`#oi_table.var<..., device>`), which the host reads to allocate it (`runtime/native.py`).
- every `memref.copy` of the host functions that is not between two buffers known to be on the
  host becomes a call of a private function `@oi_copy_<n>(source, target) -> i32` marked
  `oi.gpu_op` with op `oi.copy`: `--launch-op-kernels` then hands it to the host like any op, and
  the host copies (`runtime/op_launches.py`: by run-time address, host or device, either side). The
  function's body is the copy itself, so the IR stays runnable on the host. A status other than 0
  leaves the step with code 2: the host's error is raised at the statement.
  The undo log's byte area is a device buffer too (`runtime/native.py`), so `@oi_log`'s copy is one.

The op kernels' functions themselves (`oi.gpu_op`) are not looked into: their bodies are replaced
by launches.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import FunctionType, ModuleOp, StringAttr, UnitAttr, i32
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.backend.llvm import NOINLINE_ATTR
from oi_compiler.dialects.oi_lowered import GPU_OP_ATTR, StateViewOp, StepExitOp
from oi_compiler.dialects.oi_table import LAYOUT_ATTR, BufferOp
from oi_compiler.dtypes import dtype_name
from oi_compiler.lowering import quick_ops

COPY_OP = "oi.copy"  # the `oi.gpu_op` op of a copy the host makes (no registry op has a dot in its name)
_VIEWS = (memref.SubviewOp, memref.CastOp, memref.ReinterpretCastOp, memref.CollapseShapeOp,
          memref.ExpandShapeOp)  # fmt: skip
_FIELDS = {"buffer": "buffer", "table": "data", "prefix": "entries"}  # the field of a kind's data


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
        layout = layout_of(module)
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
        module.attributes[LAYOUT_ATTR] = layout.to_attr()
        device = {name for name, var in layout.vars.items() if var.device}
        functions: dict[tuple, str] = {}
        for copy in copies:
            if _on_host(copy.source, device) and _on_host(copy.destination, device):
                continue
            key = (copy.source.type, copy.destination.type)
            if key not in functions:
                functions[key] = _copy_function(module, f"oi_copy_{len(functions)}", *key)
            _call_copy(copy, functions[key])


def _data_of(op: Operation) -> str | None:
    """The variable whose data `op` is a view of: a buffer, a table's data box, a prefix table's entry."""
    if isinstance(op, BufferOp) and op.field.data in ("buffer", "data"):
        return op.var.string_value()
    if isinstance(op, StateViewOp) and op.var is None:  # an entry, through its prefix table's addresses
        words = op.words.owner
        if isinstance(words, BufferOp) and words.field.data == "entries":
            return words.var.string_value()
    return None


def _eligible(var) -> bool:
    if var.kind == "buffer":
        return not var.aliases and not var.temp
    if var.kind == "table":
        return not var.page
    return var.kind == "prefix"


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
        elif not isinstance(op, (memref.CopyOp, memref.DimOp)):
            return False
    return True


def _on_host(value: SSAValue, device: set[str]) -> bool:
    """Whether `value` is known to be host memory: a view of a named buffer that stays there."""
    while isinstance(value.owner, _VIEWS):
        value = value.owner.operands[0]
    owner = value.owner
    if isinstance(owner, BufferOp):
        return owner.field.data not in ("buffer", "data") or owner.var.string_value() not in device
    return False  # an entry, a view from a word (the undo log's bytes), an argument: either, at run time


def _copy_function(module: ModuleOp, name: str, source, target) -> str:
    dtype = dtype_name(source.element_type)
    info = {"op": COPY_OP, "settings": {}, "in_dtypes": [dtype], "out_dtype": dtype, "runtime": []}
    block = Block(arg_types=[source, target])
    zero = arith.ConstantOp.from_int_and_width(0, 32)
    block.add_ops([memref.CopyOp(block.args[0], block.args[1]), zero, func.ReturnOp(zero.result)])
    function = func.FuncOp(name, FunctionType.from_lists([source, target], [i32]), Region(block), visibility="private")
    function.attributes[GPU_OP_ATTR] = StringAttr(json.dumps(info))
    function.attributes[NOINLINE_ATTR] = UnitAttr()
    module.body.block.add_op(function)
    return name


def _call_copy(copy: memref.CopyOp, callee: str) -> None:
    """`copy` as a call of `callee`; a non-zero status leaves the step with it (the host's error)."""
    call = quick_ops.call(callee, [copy.source, copy.destination], [i32])
    zero = quick_ops.constant(0, i32)
    failed = quick_ops.cmpi("ne", call.res[0], zero.result)
    leave = Block()
    leave.add_ops([StepExitOp(call.res[0]), scf.YieldOp()])
    check = scf.IfOp(failed.result, [], Region(leave), Region(Block([scf.YieldOp()])))
    Rewriter.insert_op([call, zero, failed, check], InsertPoint.before(copy))
    Rewriter.erase_op(copy)
