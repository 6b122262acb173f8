"""`--double-buffer` (accera.md §1.6.8), for the cache fills `--cache` marked `oi.double_buffer`.

With T the trigger loop (the fill sits right before it) and P the loop around T:

    fill(cache, P = first)                       # before P
    for p in P[first, last):                     # every iteration but the last
        fill(temp, P = p + step)                 #   prefetch the next block
        T ...                                    #   compute from the cache
        memref.copy temp -> cache                #   the next block becomes current
    T ... with P = last                          # the last iteration, peeled: no prefetch

`last = first + ((ub - first - 1) floordiv step) * step` is P's last iteration (P always runs
at least once: domains are not empty). Without a loop around T the cache stays single-buffered
and a warning says so, where Accera says nothing.
"""

from __future__ import annotations

import warnings

from xdsl.dialects import affine, arith, memref, scf
from xdsl.dialects.builtin import StringAttr, UnitAttr
from xdsl.ir import Operation
from xdsl.ir.affine import AffineDimExpr
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.dialects.oi_nest import NestOp
from oi_compiler.loopnest.forms import emit_map, form_of
from oi_compiler.loopnest.ir_util import Site, inside, iv_of, materialize


PURE_INDEX_OPS = (affine.ApplyOp, affine.MinOp, arith.ConstantOp)


def _groups(nest: NestOp) -> list[list[Operation]]:
    """Each double-buffered fill: its copy loop (marked `oi.double_buffer`) and the index ops
    before it that only the fill uses. (The slice is found from uses, not marks: `affine.apply`
    prints no attributes, so marks on it do not survive a round trip through text.)"""
    groups = []
    for root in [op for op in nest.walk() if isinstance(op, scf.ForOp) and "oi.double_buffer" in op.attributes]:
        group = [root]
        members = {id(op) for op in root.walk()}
        op = root.prev_op
        while op is not None and isinstance(op, PURE_INDEX_OPS):
            if all(id(use.operation) in members for r in op.results for use in r.uses):
                group.insert(0, op)
                members.add(id(op))
            op = op.prev_op
        groups.append(group)
    return groups


def _clone_group(group: list[Operation], site: Site, mapping: dict, region: Operation) -> None:
    """Clone `group` at `site`; the values it uses from inside `region` are recomputed there."""
    own = {id(v) for op in group for nested in op.walk() for v in (*nested.results, *(
        a for r in nested.regions for b in r.blocks for a in b.args))}  # fmt: skip
    for op in group:
        for nested in op.walk():
            for operand in nested.operands:
                if id(operand) not in own and inside(operand, region):
                    materialize(operand, site, mapping, region)
        site.insert(op.clone(mapping))


def _temp_like(cache, nest: NestOp, name: str):
    """A second buffer of the cache's type, allocated (and freed) next to it."""
    view = cache.owner if isinstance(cache.owner, memref.ReinterpretCastOp) else None
    alloc = view.source.owner if view is not None else cache.owner
    temp_alloc = alloc.clone()
    temp_alloc.attributes["oi.cache"] = StringAttr(f"{name}_temp")
    temp_alloc.attributes["oi.double_buffer_temp"] = UnitAttr()
    Rewriter.insert_op(temp_alloc, InsertPoint.after(view or alloc))
    temp = temp_alloc.results[0]
    if isinstance(alloc, memref.AllocOp):
        Rewriter.insert_op(memref.DeallocOp.get(temp), InsertPoint.at_end(nest.body.block))
    if view is not None:
        temp_view = view.clone({alloc.results[0]: temp})
        Rewriter.insert_op(temp_view, InsertPoint.after(temp_alloc))
        temp = temp_view.results[0]
    temp.name_hint = f"{name}_temp"
    return temp


def _cache_of(op: Operation) -> str:
    return op.attributes["oi.cache_fill"].data


def _trigger_after(group: list[Operation], loop_name: str) -> Operation:
    """The trigger loop: the first loop named `loop_name` after the fill (later caches may
    have put their own fills in between)."""
    op = group[-1].next_op
    while not (isinstance(op, scf.ForOp) and op.attributes.get("oi.index") == StringAttr(loop_name)):
        op = op.next_op
    return op


def double_buffer(nest: NestOp) -> None:
    for group in _groups(nest):
        root = group[-1]
        name = _cache_of(root)
        trigger = _trigger_after(group, root.attributes["oi.double_buffer"].data)
        del root.attributes["oi.double_buffer"]
        outer = trigger.parent_op()
        if isinstance(outer, scf.IfOp):
            warnings.warn(f"double_buffer on cache {name}: its trigger loop is inside a boundary split (an "
                          "unswitched loop), so the cache is single-buffered", stacklevel=2)  # fmt: skip
            continue
        if not (isinstance(outer, scf.ForOp) and "oi.index" in outer.attributes):
            warnings.warn(f"double_buffer on cache {name}: its trigger loop has no enclosing loop, so the cache "
                          "is single-buffered", stacklevel=2)  # fmt: skip
            continue
        cache = _buffer_of(group)
        temp = _temp_like(cache, nest, name)
        iv = iv_of(outer)
        step = form_of(outer.step).const
        # the first block, before the loop
        first = Site(InsertPoint.before(outer))
        _clone_group(group, first, {iv: outer.lb}, outer)
        first.finish({"oi.prefill": StringAttr(name)})
        # the last iteration, peeled after the loop (it computes from what is in the cache)
        before = Site(InsertPoint.before(outer))
        d0, d1 = AffineDimExpr(0), AffineDimExpr(1)
        last = emit_map([outer.lb, outer.ub], [d0 + ((d1 - d0 - 1) // step) * step], before.point)
        last.name_hint = "last"
        peeled = Site(InsertPoint.after(outer))
        mapping = {iv: last}
        in_group = {id(op) for op in group}
        for op in list(outer.body.block.ops)[:-1]:
            if id(op) not in in_group:
                peeled.insert(op.clone(mapping))
        peeled.finish({"oi.peeled": StringAttr(name)})
        outer.operands[1] = last
        # every other iteration prefetches the next block into temp and swaps it in at the end
        prefetch = Site(InsertPoint.before(group[0]))
        following = prefetch.form(form_of(iv) + step, {}, None)
        _clone_group(group, prefetch, {iv: following, cache: temp}, outer)
        prefetch.finish({"oi.prefetch": StringAttr(name)})
        for op in reversed(group):
            Rewriter.erase_op(op, safe_erase=False)
        swap = memref.CopyOp(temp, cache)
        swap.attributes["oi.prefetch_swap"] = StringAttr(name)
        Rewriter.insert_op(swap, InsertPoint.after(trigger))


def _buffer_of(group: list[Operation]):
    for op in group:
        for nested in op.walk():
            if isinstance(nested, memref.StoreOp):
                return nested.memref
    raise AssertionError("a cache fill stores into its buffer")
