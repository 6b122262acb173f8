"""Small IR helpers shared by the loop-nest passes: inserting marked ops, loops, and
re-computing index values at another place (`recompute`)."""

from __future__ import annotations

from collections.abc import Iterator

from xdsl.dialects import memref, scf
from xdsl.dialects.builtin import IndexType, MemRefType, StridedLayoutAttr
from xdsl.ir import Attribute, Block, BlockArgument, Operation, OpResult, Region, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.errors import ScheduleError
from oi_compiler.loopnest.forms import Form, emit_form, index_const
from oi_compiler.loopnest.layouts import row_major


def loops_of(root: Operation) -> Iterator[scf.ForOp]:
    """The schedule's loops (those with `oi.index`) under `root`, outermost first."""
    for op in root.walk():
        if isinstance(op, scf.ForOp) and "oi.index" in op.attributes:
            yield op


def loop_name(loop: scf.ForOp) -> str:
    return loop.attributes["oi.index"].data


def enclosing_loop(op: Operation, stop: Operation) -> scf.ForOp | None:
    """The nearest schedule loop around `op`, below `stop`."""
    parent = op.parent_op()
    while parent is not None and parent is not stop:
        if isinstance(parent, scf.ForOp) and "oi.index" in parent.attributes:
            return parent
        parent = parent.parent_op()
    return None


def iv_of(loop: scf.ForOp) -> BlockArgument:
    return loop.body.block.args[0]


def loop_of_iv(value: SSAValue) -> scf.ForOp | None:
    if isinstance(value, BlockArgument):
        parent = value.owner.parent_op()
        if isinstance(parent, scf.ForOp) and value is parent.body.block.args[0]:
            return parent
    return None


def inside(value_or_op: SSAValue | Operation, region_op: Operation) -> bool:
    """Whether a value is defined (or an op sits) within `region_op` (not `region_op` itself)."""
    if isinstance(value_or_op, Operation):
        op = value_or_op
    elif isinstance(value_or_op, OpResult):
        op = value_or_op.owner
    else:
        op = value_or_op.owner.parent_op()
        if op is region_op:
            return True
    return op is not region_op and region_op.is_ancestor(op)


class Site:
    """An insertion point before an op; `finish(marks)` puts attributes on every op inserted
    there since the site was made (the top-level ones: a group such as one cache fill)."""

    def __init__(self, point: InsertPoint):
        self.point = point
        anchor = point.insert_before
        self._first_before = anchor.prev_op if anchor is not None else point.block.last_op

    def insert(self, op: Operation) -> Operation:
        Rewriter.insert_op(op, self.point)
        return op

    def const(self, value: int) -> SSAValue:
        return index_const(value, self.point)

    def form(self, form: Form, mapping: dict, region: Operation | None) -> SSAValue:
        atoms = {recompute(a, self, mapping, region): c for a, c in form.terms.items()}
        return emit_form(Form(atoms, form.const), self.point)

    def loop(self, lb: SSAValue, ub: SSAValue, name: str, step: int = 1) -> tuple[scf.ForOp, Site]:
        """`scf.for %name = lb to ub step step` here, and a site inside it."""
        body = Block(arg_types=[IndexType()])
        body.add_op(scf.YieldOp())
        loop = scf.ForOp(lb, ub, self.const(step), [], Region(body))
        self.insert(loop)
        body.args[0].name_hint = name
        return loop, Site(InsertPoint.before(body.last_op))

    def inserted(self) -> list[Operation]:
        op = self._first_before.next_op if self._first_before is not None else self.point.block.first_op
        stop = self.point.insert_before
        ops = []
        while op is not None and op is not stop:
            ops.append(op)
            op = op.next_op
        return ops

    def finish(self, marks: dict[str, Attribute]) -> list[Operation]:
        ops = self.inserted()
        for op in ops:
            op.attributes.update(marks)
        return ops


def allocate(site: Site, element: Attribute, shape: list[int], strides: list[int], *, on_stack: bool = False):
    """A buffer of `shape` with `strides` (in elements), 64-byte aligned: `memref.alloc` (or
    `alloca`) of the shape itself when the strides are row-major, else of the elements the
    strides reach, viewed through `memref.reinterpret_cast`. Returns the allocation and the view."""
    kind = memref.AllocaOp if on_stack else memref.AllocOp
    if list(strides) == row_major(shape):
        alloc = site.insert(kind.get(element, 64, list(shape)))
        return alloc, alloc.memref
    span = 1 + sum((n - 1) * st for n, st in zip(shape, strides))
    alloc = site.insert(kind.get(element, 64, [span]))
    ty = MemRefType(element, list(shape), StridedLayoutAttr(list(strides), 0))
    view = site.insert(memref.ReinterpretCastOp(alloc.memref, [], [], [], [0], list(shape), list(strides), ty))
    return alloc, view.result


def recompute(value: SSAValue, site: Site, mapping: dict, region: Operation | None) -> SSAValue:
    """`value` at `site`: renamed through `mapping`; recomputed there (its pure defining ops
    cloned, operands first) when it is defined inside `region`; else used as it is."""
    if value in mapping:
        return mapping[value]
    if region is None or not inside(value, region):
        return value
    if not isinstance(value, OpResult) or value.owner.regions or isinstance(value.owner, (memref.LoadOp,)):
        raise ScheduleError(f"internal: cannot recompute {value} outside its loop")
    owner = value.owner
    for operand in owner.operands:
        recompute(operand, site, mapping, region)
    clone = owner.clone(mapping)
    site.insert(clone)
    return mapping[value]
