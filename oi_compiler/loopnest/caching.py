"""`--cache`: Accera's key-slice caches on a scheduled nest (../shared/reference/accera.md §1.6).

For each request, in the order the plan made them:

1. **Where.** The cache loop L is the loop named `index` (or the budget search for
   `max_elements`: from the innermost loop outward while the next loop's active block has at
   most that many elements; a 1-trip `internal_dummy_loop` caches single elements when even
   the innermost is too big). The trigger loop T is `trigger_index` (default L). Both move
   outward past enclosing loops that do not index the array (hoisting; not for budgets).
2. **The active block** of the array at L: for every access `X[e_0, ..., e_r]` in L, each
   `e_j` is a linear form; the loops at or inside L range over `[lb, ub)` of the outermost
   such loop of their chain, so each `e_j` spans an interval whose lower end is a form of the
   loops outside L. The block is the union (bounding box) of those intervals; it must differ
   between accesses by constants only, or the cache is dropped (Accera drops blocks it cannot
   size). Its extents are static (the buffer's shape, `oi.span` of the loops) and dynamic at
   boundary tiles (the copies' bounds).
3. **Multicaching.** The loops from T down to L's parent that index the array become
   leading buffer dimensions (their trip counts), and the fill before T walks them.
4. **Data movement** by access analysis: read-only copies in; write-only zero-fills and copies
   out (when one store covers the whole block; a block with holes, `B[2*i]`, copies in too); accumulate-only (`X[e] = X[e] + v`) zero-fills and adds back; anything else copies
   in and out. Accesses in L are redirected to the buffer.
5. **Thrifty** (`thrifty=True`): the copies are elided, and accesses keep the source, when the
   source and the cache walk the block with stride 1 together (decided on strides).

Buffers are allocated at the top of the nest (`memref.alloca` up to 512 bytes, so small
blocks can live in registers; `memref.alloc`, 64-byte aligned, otherwise) and freed at its
end. A double-buffered cache's fill is marked `oi.double_buffer = "<trigger loop>"` for
`--double-buffer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.dialects import arith, memref, scf
from xdsl.dialects.builtin import (
    DenseArrayBase,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    i64,
)
from xdsl.ir import Block, Operation, OpResult, Region, SSAValue
from xdsl.ir.affine import AffineDimExpr
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.dialects.oi_nest import NestOp
from oi_compiler.errors import ScheduleError
from oi_compiler.loopnest.attrs import to_attr
from oi_compiler.loopnest.cache_rules import (
    CacheRequest,
    check_not_cached_twice,
    check_request,
    multicache_of_written,
)
from oi_compiler.loopnest.forms import Form, emit_map, form_of
from oi_compiler.loopnest.layouts import column_major, layout_strides
from oi_compiler.loopnest.ir_util import (
    Site,
    allocate,
    enclosing_loop,
    inside,
    iv_of,
    loop_name,
    loop_of_iv,
    loops_of,
    recompute,
)
from oi_compiler.loopnest.materialize import PLAN, nest_plan

ALLOCA_BYTES = 512


# ----------------------------------------------------------------------------- the nest's loops


class LoopOrder:
    """The scheduled nest's loop order (its loops from the outermost down), with the lookups
    `check_request` needs to resolve levels as Accera does. An unswitched loop has an
    instance in each branch; `instances(name)` lists them all."""

    def __init__(self, nest: NestOp):
        self.loops: dict[str, list[scf.ForOp]] = {}
        for loop in loops_of(nest):
            self.loops.setdefault(loop_name(loop), []).append(loop)
        self.order = list(self.loops)

    def loop(self, name: str):
        if name not in self.loops:
            raise ScheduleError(f"{name!r} is not an index of this schedule")
        return self.loops[name][0]

    def instances(self, name: str) -> list[scf.ForOp]:
        self.loop(name)
        return self.loops[name]

    def level_of(self, name: str) -> int:
        return len(self.order) - self.order.index(name)


def accesses_of(array: SSAValue, root: Operation) -> list[memref.LoadOp | memref.StoreOp]:
    return [op for op in root.walk() if isinstance(op, (memref.LoadOp, memref.StoreOp)) and op.memref is array]


def loop_deps(value: SSAValue, memo: dict) -> frozenset:
    """The loops whose induction variables `value` depends on (through bounds and index math)."""
    if value in memo:
        return memo[value]
    memo[value] = frozenset()
    loop = loop_of_iv(value)
    if loop is not None:
        deps = frozenset({loop}) | loop_deps(loop.lb, memo) | loop_deps(loop.ub, memo)
    elif isinstance(value, OpResult) and not value.owner.regions:
        deps = frozenset().union(*(loop_deps(v, memo) for v in value.owner.operands))
    else:
        deps = frozenset()
    memo[value] = deps
    return deps


def access_deps(accesses, memo: dict) -> frozenset:
    deps = frozenset()
    for op in accesses:
        for index in op.indices:
            deps |= loop_deps(index, memo)
    return deps


# ----------------------------------------------------------------------------- the active block


@dataclass
class ActiveBlock:
    """The active block of an array at a loop: per array dimension, its lower end (a form of
    values outside the loop), its extent (a form: constant except at boundary tiles) and its
    largest extent (the buffer's size)."""

    lower: list[Form]
    extent: list[Form]
    static: list[int]

    @property
    def volume(self) -> int:
        return math.prod(self.static)


def _chain_parent(loop: scf.ForOp) -> scf.ForOp | None:
    parent = loop_of_iv(loop.lb)
    if parent is not None and "oi.dim" in parent.attributes and "oi.dim" in loop.attributes:
        if parent.attributes["oi.dim"] == loop.attributes["oi.dim"]:
            return parent
    return None


def _iv_range(loop: scf.ForOp, region: scf.ForOp) -> tuple[Form, Form, int] | None:
    """The values an induction variable of a loop inside `region` takes while `region` runs:
    `[lower, lower + extent)`, and the largest extent."""
    outer = loop
    while (parent := _chain_parent(outer)) is not None and (parent is region or inside(parent, region)):
        outer = parent
    lower = form_of(outer.lb)
    if any(a is iv_of(region) or inside(a, region) for a in lower.terms):
        return None
    extent = form_of(outer.ub) - lower
    if "oi.span" in outer.attributes:
        largest = outer.attributes["oi.span"].value.data
    elif extent.is_const:
        largest = extent.const
    else:
        return None
    return lower, extent, largest


def active_block(accesses, region: scf.ForOp) -> ActiveBlock | None:
    """The bounding box of what `accesses` touch while `region` runs once, or None when it is
    not a box of constant shape offset by values outside the region (see the module doc)."""
    boxes = []
    for op in accesses:
        lower, extent, static = [], [], []
        for index in op.indices:
            form = form_of(index)
            lo, ext, big = Form(const=form.const), Form(const=1), 1
            for atom, coeff in form.terms.items():
                loop = loop_of_iv(atom)
                if loop is not None and (loop is region or inside(loop, region)):
                    rng = _iv_range(loop, region)
                    if rng is None:
                        return None
                    a_lo, a_ext, a_big = rng
                    lo = lo + a_lo.scale(coeff)
                    if coeff < 0:
                        lo = lo + (a_ext - 1).scale(coeff)
                    ext = ext + (a_ext - 1).scale(abs(coeff))
                    big += abs(coeff) * (a_big - 1)
                elif inside(atom, region):
                    return None
                else:
                    lo = lo + Form.atom(atom, coeff)
            lower.append(lo)
            extent.append(ext)
            static.append(big)
        boxes.append((lower, extent, static))
    if not boxes:
        return None
    first_lower, first_extent, _ = boxes[0]
    lower, extent, static = [], [], []
    for j in range(len(first_lower)):
        los = [b[0][j] - first_lower[j] for b in boxes]
        his = [b[0][j] + b[1][j] - (first_lower[j] + first_extent[j]) for b in boxes]
        if not all(f.is_const for f in los + his):
            return None
        lo_shift = min(f.const for f in los)
        hi_shift = max(f.const for f in his)
        lower.append(first_lower[j] + lo_shift)
        extent.append(first_extent[j] + (hi_shift - lo_shift))
        static.append(max(f.const + b[2][j] for f, b in zip(los, boxes)) - lo_shift)
    return ActiveBlock(lower, extent, static)


# ----------------------------------------------------------------------------- access kinds


def _same_place(a, b) -> bool:
    return all(form_of(x) == form_of(y) or x is y for x, y in zip(a.indices, b.indices))


def _is_accumulate(load: memref.LoadOp, array: SSAValue) -> bool:
    uses = list(load.res.uses)
    if len(uses) != 1:
        return False
    user = uses[0].operation
    if isinstance(user, memref.StoreOp):
        return user.memref is array and user.value is load.res and _same_place(load, user)
    if not isinstance(user, (arith.AddfOp, arith.AddiOp)):
        return False
    stores = list(user.result.uses)
    return (len(stores) == 1 and isinstance(stores[0].operation, memref.StoreOp)
            and stores[0].operation.memref is array and _same_place(load, stores[0].operation))  # fmt: skip


def access_kind(accesses, array: SSAValue, region: scf.ForOp) -> str:
    loads = [op for op in accesses if isinstance(op, memref.LoadOp)]
    stores = [op for op in accesses if isinstance(op, memref.StoreOp)]
    if not stores:
        return "read"
    if not loads:
        # zero fill + copy out would overwrite what the nest never writes: only when some
        # store covers the whole block (else the block is copied in first)
        return "write" if any(_covers_block(op, accesses, region) for op in stores) else "read_write"
    if all(_is_accumulate(op, array) for op in loads) and all(_stores_accumulate(op) for op in stores):
        return "accumulate"
    return "read_write"


def _stores_accumulate(store: memref.StoreOp) -> bool:
    """Whether a store writes back `load(same place) + v` (or the loaded value itself)."""
    value = store.value.owner
    if isinstance(value, memref.LoadOp):
        return value.memref is store.memref and _same_place(value, store)
    if isinstance(value, (arith.AddfOp, arith.AddiOp)):
        return any(isinstance(v.owner, memref.LoadOp) and v.owner.memref is store.memref
                   and _same_place(v.owner, store) for v in value.operands)  # fmt: skip
    return False


def _covers_block(store: memref.StoreOp, accesses, region: scf.ForOp) -> bool:
    """Whether `store` writes every element of the block: each index moves with at most one
    loop of the region, by ±1, a different loop per index, and its box is the whole block."""
    seen = set()
    for index in store.indices:
        inner = [(a, c) for a, c in form_of(index).terms.items() if (loop := loop_of_iv(a)) is not None
                 and (loop is region or inside(loop, region))]  # fmt: skip
        if len(inner) > 1 or any(abs(c) != 1 or a in seen for a, c in inner):
            return False
        seen.update(a for a, _ in inner)
    own, whole = active_block([store], region), active_block(accesses, region)
    return own is not None and whole is not None and all(
        (a - b).is_const and (a - b).const == 0 for a, b in zip(own.extent + own.lower, whole.extent + whole.lower))


# ----------------------------------------------------------------------------- layouts and thrifty


def source_strides(ty: MemRefType) -> list[int] | None:
    strides = ty.get_strides()
    if strides is None or any(s is None for s in strides):
        return None
    return [int(s) for s in strides]


def walks_with_unit_steps(shape: list[int], strides: list[int]) -> bool:
    """Whether visiting `shape` in row-major order moves +1 element at every step (Accera's
    thrifty test, decided on strides: extent-1 dimensions aside, the innermost stride is 1
    and every other stride is the product of the extents inside it)."""
    expected = 1
    for extent, stride in reversed([(e, s) for e, s in zip(shape, strides) if e != 1]):
        if stride != expected:
            return False
        expected *= extent
    return True


# ----------------------------------------------------------------------------- applying a request


@dataclass
class Applied:
    """What a request became: the value later requests (hierarchical caches) read."""

    request: CacheRequest
    value: SSAValue
    role: str
    loops: list[scf.ForOp]  # its cache loops: a cache of it stays inside them
    written: str | None  # its base array's name, when the nest writes that array


def apply_caches(nest: NestOp) -> None:
    requests = nest_plan(nest).get("caches", [])
    if not requests:
        return
    target = (nest_plan(nest).get("target") or {}).get("category", "cpu")
    if not nest.scheduled:
        raise ScheduleError("--cache needs the nest scheduled: run --tile first")
    order = LoopOrder(nest)
    arrays = {n: (v, r) for n, v, r in zip(nest.array_names, nest.arrays, nest.array_roles)}
    stored = {op.memref for op in nest.walk() if isinstance(op, memref.StoreOp)}
    applied: dict[str, Applied] = {}
    for data in requests:
        req = CacheRequest.from_attr_data(data)
        if req.name in applied or req.name in arrays:
            raise ScheduleError(f"cache name {req.name!r} is used twice")
        if req.source in arrays:
            value, role = arrays[req.source]
            outer, ceilings, written = None, None, req.source if value in stored else None
        elif req.source in applied:
            outer_applied = applied[req.source]
            value, role, outer = outer_applied.value, outer_applied.role, outer_applied.request
            ceilings, written = outer_applied.loops or None, outer_applied.written
        else:
            raise ScheduleError(f"cache source {req.source!r} is neither an array of the nest nor an earlier cache")
        multicache = req.max_elements is None and (req.trigger_index is not None or req.trigger_level is not None)
        check_request(req, order, role, target, outer)
        check_not_cached_twice(req, applied.values())
        if multicache and written and role == "input":  # Accera's rule 11 lets it through
            raise ScheduleError(multicache_of_written(written))
        buffer, placements = _apply(nest, order, req, value, ceilings)
        applied[req.name] = Applied(req, buffer, role, [p.cache_loop for p in placements], written)
    plan = nest_plan(nest)
    plan.pop("caches", None)
    if plan:
        nest.attributes[PLAN] = to_attr(plan)
    else:
        nest.attributes.pop(PLAN, None)


@dataclass
class Placement:
    """One place a request caches at: an instance of its loop (one per unswitched copy)."""

    cache_loop: scf.ForOp
    trigger: scf.ForOp
    accesses: list
    block: ActiveBlock
    multi: list[scf.ForOp]
    kind: str

    @property
    def shape(self) -> list[int]:
        return [_max_trips(m) for m in self.multi] + self.block.static


def _ceiling(loop: scf.ForOp, ceilings) -> scf.ForOp | None | bool:
    """The outer cache's loop around `loop` (a cache of a cache stays inside it), None when
    there is no outer cache, False when `loop` is outside every one of its loops."""
    if ceilings is None:
        return None
    for top in ceilings:
        if top is loop or inside(loop, top):
            return top
    return False


def _placements(nest: NestOp, order: LoopOrder, req: CacheRequest, array: SSAValue, ceilings) -> list[Placement]:
    memo: dict = {}
    if req.max_elements is not None:
        pairs = [(loop, loop) for loop in _budget_loops(nest, array, req.max_elements, ceilings)]
    else:
        deps = access_deps(accesses_of(array, nest), memo)
        pairs = []
        for loop in order.instances(req.index):
            top = _ceiling(loop, ceilings)
            if top is False:
                continue
            trigger = loop if req.trigger_index == req.index else _enclosing_named(loop, req.trigger_index, nest)
            pairs.append(_hoist(nest, loop, trigger, deps, top))
    placements, seen = [], set()
    for cache_loop, trigger in pairs:
        if id(cache_loop) in seen:
            continue  # unswitched copies hoisted to the same loop
        seen.add(id(cache_loop))
        accesses = accesses_of(array, cache_loop)
        block = active_block(accesses, cache_loop)
        if block is None:
            continue  # nothing to cache, or a block Accera could not size: no cache (still correct)
        multi = _multicache_loops(trigger, cache_loop, access_deps(accesses, memo))
        placements.append(Placement(cache_loop, trigger, accesses, block, multi, access_kind(accesses, array, cache_loop)))
    return placements


def _enclosing_named(loop: scf.ForOp, name: str, nest: NestOp) -> scf.ForOp:
    outer = loop
    while outer is not None and loop_name(outer) != name:
        outer = enclosing_loop(outer, nest)
    if outer is None:
        raise ScheduleError(f"trigger index {name!r} does not enclose the cache index {loop_name(loop)!r}")
    return outer


def _apply(nest: NestOp, order: LoopOrder, req: CacheRequest, array: SSAValue, ceilings):
    """The buffer `req` caches `array` in (the array itself when the cache is elided or
    dropped) and where it was placed."""
    placements = _placements(nest, order, req, array, ceilings)
    if not placements:
        return array, []
    shapes = [p.shape for p in placements]
    if len({len(sh) for sh in shapes}) != 1:
        raise ScheduleError(f"cache {req.name}: its unswitched copies need buffers of different ranks")
    shape = [max(dims) for dims in zip(*shapes)]
    first = placements[0]
    src_ty = array.type
    assert isinstance(src_ty, MemRefType)
    layout = req.layout or _layout_of(src_ty)
    rank = len(first.block.static)
    trips = len(first.multi)
    box_order = list(reversed(range(rank))) if layout == "first_major" else list(range(rank))
    strides = layout_strides(shape, [trips + d for d in box_order] + list(reversed(range(trips))))
    src_strides = source_strides(src_ty)
    if req.thrifty and src_strides is not None and _thrifty(first.block, first.multi, src_strides, strides, shape):
        return array, placements  # elided: the accesses keep reading the source
    buffer = _allocate(nest, req, shape, strides, src_ty.element_type, first)
    for placement in placements:
        _place(req, placement, array, buffer, src_strides)
    return buffer, placements


def _place(req: CacheRequest, p: Placement, array: SSAValue, buffer: SSAValue, src_strides) -> None:
    # the region's view of the block: its lower ends and multicache counters, computed before L
    bounds = Site(InsertPoint.before(p.cache_loop))
    counters = [_counter(m, bounds, {}, None) for m in p.multi]
    lowers = [bounds.form(f, {}, p.cache_loop) for f in p.block.lower]
    extents = [bounds.form(f, {}, p.cache_loop) for f in p.block.extent] if p.kind != "read" else []
    bounds.finish({"oi.cache_bounds": StringAttr(req.name)})
    for op in p.accesses:
        _redirect(op, buffer, counters, lowers)
    # the fill before the trigger loop
    fill = Site(InsertPoint.before(p.trigger))
    copies = p.kind in ("read", "read_write")
    _fill(fill, buffer, array, p, src_strides, kind="copy" if copies else "zero")
    ops = fill.finish({"oi.cache_fill": StringAttr(req.name)})
    if req.double_buffer and copies:  # on the copy loop: the trigger loop it fills for
        ops[-1].attributes["oi.double_buffer"] = StringAttr(loop_name(p.trigger))
    # the write-back after the cache loop
    if p.kind != "read":
        back = Site(InsertPoint.after(p.cache_loop))
        _write_back(back, buffer, array, lowers, extents, src_strides, p.kind)
        back.finish({"oi.cache_writeback": StringAttr(req.name)})


def _layout_of(ty: MemRefType) -> str:
    strides = source_strides(ty)
    rank = len(ty.get_shape())
    if strides is not None and rank > 1 and strides == column_major(list(ty.get_shape())):
        return "last_major"
    return "first_major"


def _hoist(nest: NestOp, cache_loop, trigger, deps, top: scf.ForOp | None = None):
    """Move the cache and trigger loops out past loops that do not index the array (`deps`),
    never past `top`."""

    def parent_of(loop):
        return None if loop is top else enclosing_loop(loop, nest)

    if cache_loop is not trigger:
        while (p := parent_of(cache_loop)) is not None and p is not trigger and p not in deps:
            cache_loop = p
        if parent_of(cache_loop) is trigger and trigger not in deps:
            cache_loop = trigger
    moved_together = cache_loop is trigger
    while (p := parent_of(trigger)) is not None and p not in deps:
        trigger = p
        if moved_together:
            cache_loop = p
    return cache_loop, trigger


def _budget_loops(nest: NestOp, array: SSAValue, budget: int, ceilings) -> list[scf.ForOp]:
    """For each innermost loop touching `array` (one per unswitched copy), the outermost loop
    around it whose active block has at most `budget` elements (a dummy loop if none), never
    past the outer cache's loop for a cache of a cache."""
    users = [loop for loop in loops_of(nest) if accesses_of(array, loop) and _ceiling(loop, ceilings) is not False]
    innermost = [loop for loop in users if not any(other is not loop and inside(other, loop) for other in users)]
    placed = []
    for current in innermost:
        top = _ceiling(current, ceilings)
        block = active_block(accesses_of(array, current), current)
        if block is None or block.volume > budget:
            placed.append(_dummy_loop(current))
            continue
        while current is not top and (parent := enclosing_loop(current, nest)) is not None:
            outer = active_block(accesses_of(array, parent), parent)
            if outer is None or outer.volume > budget:
                break
            current = parent
        placed.append(current)
    return placed


def _dummy_loop(loop: scf.ForOp) -> scf.ForOp:
    """A 1-trip loop around the innermost loop's body: caching at it caches single elements."""
    body = loop.body.block
    inner = Block(arg_types=[IndexType()])
    inner.add_op(scf.YieldOp())
    for op in list(body.ops)[:-1]:
        op.detach()
        inner.insert_op_before(op, inner.last_op)
    site = Site(InsertPoint.before(body.last_op))
    dummy = scf.ForOp(site.const(0), site.const(1), site.const(1), [], Region(inner))
    dummy.attributes["oi.index"] = StringAttr("internal_dummy_loop")
    site.insert(dummy)
    inner.args[0].name_hint = "internal_dummy_loop"
    return dummy


def _multicache_loops(trigger, cache_loop, deps) -> list[scf.ForOp]:
    """The schedule loops from the trigger down to the cache loop's parent that index the array."""
    return [op for op in _path(trigger, cache_loop) if isinstance(op, scf.ForOp) and op in deps]


def _max_trips(loop: scf.ForOp) -> int:
    span = loop.attributes["oi.span"].value.data
    step = form_of(loop.step).const
    return -(-span // step)


def _counter(loop: scf.ForOp, site: Site, mapping: dict, region) -> SSAValue:
    """`(iv - lb) floordiv step`: which of its iterations `loop` is in (a multicache index)."""
    iv = mapping.get(iv_of(loop), iv_of(loop))
    lb = site.form(form_of(loop.lb), mapping, region)
    step = form_of(loop.step).const
    return emit_map([iv, lb], [(AffineDimExpr(0) - AffineDimExpr(1)) // step], site.point)


def _thrifty(block: ActiveBlock, multi, src_strides, cache_strides, shape) -> bool:
    src = []
    for m in multi:
        iv = iv_of(m)
        step = form_of(m.step).const
        src.append(sum(s * f.coeff(iv) for s, f in zip(src_strides, block.lower)) * step)
    src += src_strides
    return walks_with_unit_steps(shape, src) and walks_with_unit_steps(shape, cache_strides)


def _allocate(nest, req, shape, strides, element, p: Placement) -> SSAValue:
    small = math.prod(shape) * element_bytes(element) <= ALLOCA_BYTES
    alloc, buffer = allocate(Site(InsertPoint.at_start(nest.body.block)), element, shape, strides, on_stack=small)
    alloc.attributes.update({
        "oi.cache": StringAttr(req.name),
        "oi.source": StringAttr(req.source),
        "oi.index": StringAttr(loop_name(p.cache_loop)),
        "oi.trigger_index": StringAttr(loop_name(p.trigger)),
        "oi.active_block": DenseArrayBase.from_list(i64, shape[len(p.multi):]),
        "oi.movement": StringAttr(p.kind),
        "oi.location": StringAttr(req.location or "none"),
    })  # fmt: skip
    buffer.name_hint = req.name
    if not small:
        Rewriter.insert_op(memref.DeallocOp.get(alloc.memref), InsertPoint.at_end(nest.body.block))
    return buffer


def _redirect(op, buffer: SSAValue, counters: list[SSAValue], lowers: list[SSAValue]) -> None:
    point = InsertPoint.before(op)
    site = Site(point)
    indices = list(counters)
    for index, lower in zip(op.indices, lowers):
        indices.append(site.form(form_of(index) - form_of(lower), {}, None))
    if isinstance(op, memref.LoadOp):
        new = memref.LoadOp.get(buffer, indices)
        Rewriter.replace_op(op, new)
    else:
        Rewriter.replace_op(op, memref.StoreOp.get(op.value, buffer, indices))


def _box_loops(site: Site, extents: list[SSAValue], order: list[int], name: str) -> tuple[Site, list[SSAValue]]:
    """Loops over a block's coordinates (dimensions in `order`, outermost first)."""
    coords: list[SSAValue | None] = [None] * len(extents)
    zero = site.const(0)
    for d in order:
        _, site = site.loop(zero, extents[d], f"{name}{d}")
        coords[d] = site.point.block.args[0]
    return site, coords


def _source_index(site: Site, lowers: list[SSAValue], coords: list[SSAValue]) -> list[SSAValue]:
    """Where block coordinate `coords` is in the source: the block's lower ends plus it."""
    return [site.form(form_of(lo) + Form.atom(c), {}, None) for lo, c in zip(lowers, coords)]


def _copy_order(rank: int, src_strides) -> list[int]:
    if src_strides is None:
        return list(range(rank))
    return sorted(range(rank), key=lambda d: -src_strides[d])


def _fill(site: Site, buffer, array, p: Placement, src_strides, kind: str) -> None:
    """The copy (or zero fill) of the block(s) into the buffer, placed before the trigger. A
    multicache fill walks the loops from the trigger down to the cache loop that index the
    array, and the unswitching branches on them, so it fills every block the loops will use."""
    region = p.trigger  # values defined inside the trigger loop are recomputed here
    mapping: dict = {}
    inner = site
    counters = []
    for op in _path(p.trigger, p.cache_loop):
        if isinstance(op, scf.ForOp) and op in p.multi:
            lb = inner.form(form_of(op.lb), mapping, region)
            ub = inner.form(form_of(op.ub), mapping, region)
            loop, inner_site = inner.loop(lb, ub, loop_name(op) + "_mc", step=form_of(op.step).const)
            mapping[iv_of(op)] = iv_of(loop)
            mapping[op.ub] = ub
            inner = inner_site
            counters.append(_counter(op, inner, mapping, region))
        elif isinstance(op, scf.IfOp) and _replicable(op, p, region):
            inner = _replicate_branch(op, p.cache_loop, inner, mapping, region)
    lowers = [inner.form(f, mapping, region) for f in p.block.lower]
    extents = [inner.form(f, mapping, region) for f in p.block.extent]
    body, coords = _box_loops(inner, extents, _copy_order(len(extents), src_strides), "c")
    if kind == "copy":
        value = body.insert(memref.LoadOp.get(array, _source_index(body, lowers, coords))).res
    else:
        value = body.insert(_zero(buffer.type.element_type)).result
    body.insert(memref.StoreOp.get(value, buffer, [*counters, *coords]))


def _path(trigger: scf.ForOp, cache_loop: scf.ForOp) -> list[Operation]:
    """The ops from `trigger` (included unless it is the cache loop) down to `cache_loop`
    (excluded), outermost first."""
    if trigger is cache_loop:
        return []
    ops, op = [], cache_loop.parent_op()
    while op is not None:
        ops.append(op)
        if op is trigger:
            break
        op = op.parent_op()
    return list(reversed(ops))


def _replicable(branch: scf.IfOp, p: Placement, region) -> bool:
    """Whether an unswitching branch between trigger and cache loop splits the iterations the
    multicache fill walks (its condition depends on them), so the fill must branch too."""
    if "oi.unswitch" not in branch.attributes:
        return False
    deps = loop_deps(branch.cond, {})
    inner = {loop for loop in deps if loop is region or inside(loop, region)}
    return bool(inner) and inner <= set(p.multi)


def _replicate_branch(branch: scf.IfOp, cache_loop, site: Site, mapping, region) -> Site:
    cond = recompute(branch.cond, site, mapping, region)
    blocks = []
    for _ in range(2):
        block = Block()
        block.add_op(scf.YieldOp())
        blocks.append(block)
    copy = scf.IfOp(cond, [], Region(blocks[0]), Region(blocks[1]))
    site.insert(copy)
    taken = 0 if branch.true_region.block.is_ancestor(cache_loop) else 1
    return Site(InsertPoint.before(blocks[taken].last_op))


def element_bytes(element) -> int:
    return max(1, (element.width.data if isinstance(element, IntegerType) else element.bitwidth) // 8)


def _zero(element) -> arith.ConstantOp:
    if isinstance(element, IntegerType):
        return arith.ConstantOp(IntegerAttr(0, element))
    return arith.ConstantOp(FloatAttr(0.0, element))


def _write_back(site: Site, buffer, array, lowers, extents, src_strides, kind: str) -> None:
    body, coords = _box_loops(site, extents, _copy_order(len(extents), src_strides), "w")
    cached = body.insert(memref.LoadOp.get(buffer, coords)).res
    src_index = _source_index(body, lowers, coords)
    if kind == "accumulate":
        old = body.insert(memref.LoadOp.get(array, src_index)).res
        add = arith.AddiOp(old, cached) if isinstance(cached.type, IntegerType) else arith.AddfOp(old, cached)
        cached = body.insert(add).result
    body.insert(memref.StoreOp.get(cached, array, src_index))

