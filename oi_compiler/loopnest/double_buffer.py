"""`--double-buffer` (accera.md §1.6.8), for the cache fills `--cache` marked `oi.double_buffer`.

With T the trigger loop (the fill sits right before it) and P the loop around T:

    fill(cache, P = first)                       # before P
    for p in P[first, last):                     # every iteration but the last
        fill(temp, P = p + step)                 #   prefetch the next block
        T ...                                    #   compute from the cache
        memref.copy temp -> cache                #   the next block becomes current
    T ... with P = last                          # the last iteration, peeled: no prefetch

`last = first + ((ub - first - 1) floordiv step) * step` is P's last iteration (P always runs
at least once: domains are not empty). All the fills under one P are done together: one `last`,
one peeled iteration, one temporary per cache (the fills of a cache's unswitched copies fill
different slots of it). The cache stays single-buffered, with a warning (Accera says nothing),
when T has no loop around it, when T sits in an unswitched boundary branch, or when what the
fill copies from is written inside P (a cache of a cache filled there: its next block is not
there yet when the prefetch runs).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from xdsl.dialects import affine, arith, memref, scf
from xdsl.dialects.builtin import StringAttr, UnitAttr
from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import AffineDimExpr
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.dialects.oi_nest import NestOp
from oi_compiler.loopnest.forms import emit_map, form_of
from oi_compiler.loopnest.ir_util import Site, inside, iv_of, recompute


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
                    recompute(operand, site, mapping, region)
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


@dataclass
class _Fill:
    group: list[Operation]
    name: str
    trigger: scf.ForOp
    cache: SSAValue


def double_buffer(nest: NestOp) -> None:
    """Double-buffer every marked fill; fills under the same loop P are done together (one
    `last`, one peeled iteration), innermost P first so an outer peel copies the finished inner."""
    by_loop: dict[int, tuple[scf.ForOp, list[_Fill]]] = {}
    for group in _groups(nest):
        root = group[-1]
        name = _cache_of(root)
        trigger = _trigger_after(group, root.attributes["oi.double_buffer"].data)
        del root.attributes["oi.double_buffer"]
        outer = trigger.parent_op()
        cache = _buffer_of(group)
        if why := _single_buffered_because(outer, group, cache):
            warnings.warn(f"double_buffer on cache {name}: {why}, so the cache is single-buffered", stacklevel=2)
            continue
        by_loop.setdefault(id(outer), (outer, []))[1].append(_Fill(group, name, trigger, cache))
    for outer, fills in reversed(list(by_loop.values())):
        _double_buffer_loop(nest, outer, fills)


def _single_buffered_because(outer, group: list[Operation], cache: SSAValue) -> str | None:
    if isinstance(outer, scf.IfOp):
        return "its trigger loop is inside a boundary split (an unswitched loop)"
    if not (isinstance(outer, scf.ForOp) and "oi.index" in outer.attributes):
        return "its trigger loop has no enclosing loop"
    sources = {id(op.memref) for g in group for op in g.walk() if isinstance(op, memref.LoadOp)}
    in_group = {id(op) for g in group for op in g.walk()}
    for op in outer.walk():
        written = op.memref if isinstance(op, memref.StoreOp) else op.target if isinstance(op, memref.CopyOp) else None
        if written is not None and id(written) in sources and id(op) not in in_group:
            return "what it copies from is written inside the loop around its trigger loop (a cache filled there)"
    return None


def _double_buffer_loop(nest: NestOp, outer: scf.ForOp, fills: list[_Fill]) -> None:
    iv = iv_of(outer)
    step = form_of(outer.step).const
    names = ",".join(dict.fromkeys(f.name for f in fills))
    temps: dict[int, SSAValue] = {}  # one temporary per cache, whatever its fills (unswitched copies)
    for fill in fills:
        if id(fill.cache) not in temps:
            temps[id(fill.cache)] = _temp_like(fill.cache, nest, fill.name)
    # the first blocks, before the loop
    first = Site(InsertPoint.before(outer))
    for fill in fills:
        _clone_group(fill.group, first, {iv: outer.lb}, outer)
    first.finish({"oi.prefill": StringAttr(names)})
    # the last iteration, peeled after the loop (it computes from what is in the caches)
    before = Site(InsertPoint.before(outer))
    d0, d1 = AffineDimExpr(0), AffineDimExpr(1)
    last = emit_map([outer.lb, outer.ub], [d0 + ((d1 - d0 - 1) // step) * step], before.point)
    last.name_hint = "last"
    peeled = Site(InsertPoint.after(outer))
    mapping = {iv: last}
    in_groups = {id(op) for fill in fills for op in fill.group}
    for op in list(outer.body.block.ops)[:-1]:
        if id(op) not in in_groups:
            peeled.insert(op.clone(mapping))
    peeled.finish({"oi.peeled": StringAttr(names)})
    outer.operands[1] = last
    # every other iteration prefetches the next blocks into the temporaries, swapped in at the end
    swapped = set()
    for fill in fills:
        temp = temps[id(fill.cache)]
        prefetch = Site(InsertPoint.before(fill.group[0]))
        following = prefetch.form(form_of(iv) + step, {}, None)
        _clone_group(fill.group, prefetch, {iv: following, fill.cache: temp}, outer)
        prefetch.finish({"oi.prefetch": StringAttr(fill.name)})
        for op in reversed(fill.group):
            Rewriter.erase_op(op, safe_erase=False)
        if (id(fill.cache), id(fill.trigger)) not in swapped:
            swapped.add((id(fill.cache), id(fill.trigger)))
            swap = memref.CopyOp(temp, fill.cache)
            swap.attributes["oi.prefetch_swap"] = StringAttr(fill.name)
            end = fill.trigger  # after the trigger loop and its own peeled last iteration, if it has one
            while end.next_op is not None and "oi.peeled" in end.next_op.attributes:
                end = end.next_op
            Rewriter.insert_op(swap, InsertPoint.after(end))


def _buffer_of(group: list[Operation]):
    for op in group:
        for nested in op.walk():
            if isinstance(nested, memref.StoreOp):
                return nested.memref
    raise AssertionError("a cache fill stores into its buffer")
