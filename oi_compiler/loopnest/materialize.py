"""`--tile` on `oi.nest`: the schedule's loops, in its order, around the logic.

Each loop is an `scf.for` over absolute coordinates of its dimension (schedule.py) carrying
`oi.index` (its name), `oi.dim` and `oi.span` (the longest range it walks). A chain's first
loop runs over `[0, extent)`; a later one over `[iv(parent), iv(parent) + step(parent))`,
written `affine.min(iv + step, ub(parent))` only where the sizes do not divide (a boundary
tile). A boundary loop that is unrolled or vectorized is unswitched: `scf.if` (marked
`oi.unswitch`) on whether its parent's tile is whole picks a copy with a constant trip count
or the general one. The logic sits in the innermost loop with each index replaced by the innermost loop of
its chain. `plan.unroll`/`plan.vectorize` mark their loops (`oi.unroll`, `oi.vectorize`);
`plan.parallelize` makes the outermost loop run over `[%lo, %hi)`, two index arguments
appended to the enclosing function, and records `oi.parallel` on it for the caller that
splits the range between threads. The cache requests stay on the nest for `--cache`.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import IndexType, IntegerAttr, StringAttr, UnitAttr, i64
from xdsl.ir import Block, Region
from xdsl.ir.affine import AffineDimExpr
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.dialects.oi_nest import NestOp
from oi_compiler.errors import ScheduleError
from oi_compiler.loopnest.attrs import to_attr, to_py
from oi_compiler.loopnest.forms import emit_map, form_of, index_const
from oi_compiler.loopnest.races import refuse_races
from oi_compiler.loopnest.schedule import ScheduleModel

SCHEDULE = "oi.schedule"
PLAN = "oi.plan"


def nest_schedule(nest: NestOp) -> ScheduleModel:
    data = to_py(nest.attributes.get(SCHEDULE)) or {}
    if not isinstance(data, dict):
        raise ScheduleError(f"{SCHEDULE} must be a dictionary")
    return ScheduleModel.from_attr_data(nest.index_names, nest.extents, data)


def nest_plan(nest: NestOp) -> dict:
    data = to_py(nest.attributes.get(PLAN)) or {}
    if not isinstance(data, dict):
        raise ScheduleError(f"{PLAN} must be a dictionary")
    for key, value in data.items():
        if key == "caches":
            if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
                raise ScheduleError(f"{PLAN} caches must be a list of dictionaries")
        elif key in ("unroll", "vectorize"):
            if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                raise ScheduleError(f"{PLAN} {key} must be a list of index names")
        elif key == "parallelize":
            if (not isinstance(value, dict) or not isinstance(value.get("indices"), list)
                    or not all(isinstance(n, str) for n in value["indices"])
                    or not isinstance(value.get("threads", 1), int) or value.get("threads", 1) < 1):  # fmt: skip
                raise ScheduleError(f'{PLAN} parallelize must be {{indices = ["i", ...], threads = N}}')
        elif key == "target":
            if not isinstance(value, dict) or value.get("category") not in ("cpu", "gpu") \
                    or not isinstance(value.get("arch", ""), str):  # fmt: skip
                raise ScheduleError(f'{PLAN} target must be {{category = "gpu", arch = "sm_80"}}')
        elif key == "bind":
            units = ("block_x", "block_y", "block_z", "thread_x", "thread_y", "thread_z")
            if not isinstance(value, dict) or not all(isinstance(u, str) and u in units for u in value.values()):
                raise ScheduleError(f'{PLAN} bind must map index names to {", ".join(units)}')
            if len(set(value.values())) != len(value):
                raise ScheduleError(f"{PLAN} bind maps two indices to one grid unit")
        else:
            raise ScheduleError(f"unknown {PLAN} entry {key!r} (caches, unroll, vectorize, parallelize, target, bind)")
    return data


def materialize(nest: NestOp) -> None:
    """Replace the nest's logical body by its scheduled loops (see the module docstring)."""
    schedule = nest_schedule(nest)
    plan = nest_plan(nest)
    marks = {name: key for key in ("unroll", "vectorize") for name in plan.get(key, [])}
    for name in marks:
        schedule.loop(name)
    parallel = plan.get("parallelize")
    bounds = _parallel_bounds(nest, schedule, schedule.order[0], parallel) if parallel else None
    logic = nest.body.block
    check_bounds(nest)
    body = Block()
    emitter = _LoopEmitter(schedule, marks, parallel, bounds, logic)
    emitter.emit(0, InsertPoint.at_end(body), {}, {}, frozenset(), frozenset())
    old_block = nest.body.detach_block(0)
    nest.body.add_block(body)
    old_block.erase(safe_erase=False)
    if parallel:  # the outermost loop's chunks run at once: it must not be a reduction
        outer = [op for op in body.ops if isinstance(op, scf.ForOp) and "oi.parallel" in op.attributes]
        refuse_races(nest, outer, "parallelize", "run by several threads at once, its chunks would race")
    nest.attributes["oi.scheduled"] = UnitAttr()
    nest.attributes.pop(SCHEDULE, None)
    remaining = {k: v for k, v in plan.items() if k in ("caches", "target", "bind") and v}  # for --cache, --map-gpu
    if remaining:
        nest.attributes[PLAN] = to_attr(remaining)
    else:
        nest.attributes.pop(PLAN, None)


def check_bounds(nest: NestOp, label: Callable[[str], str] | None = None) -> None:
    """Every access of the logic stays inside its array over the whole domain (interval
    arithmetic on the affine indices); else the access's array, dimension and range. A `const`
    array is never written; an `input` one may be (Accera allows it: the function writes its
    argument). `label` words an array's IR name in the messages (the Python API's name for it,
    worked out only when a message needs it)."""
    extents = dict(zip(nest.body.block.args, nest.extents))
    ir_names = dict(zip(nest.arrays, nest.array_names))
    roles = dict(zip(nest.arrays, nest.array_roles))

    def name_of(value) -> str:
        name = ir_names.get(value)
        if name is None:
            return "an array"
        return label(name) if label is not None else name

    for op in nest.body.block.ops:
        if not isinstance(op, (memref.LoadOp, memref.StoreOp)):
            continue
        if isinstance(op, memref.StoreOp) and roles.get(op.memref) == "const":
            raise ScheduleError(f"{name_of(op.memref)} is a const array and cannot be written")
        shape = op.memref.type.get_shape()
        for dim, index in enumerate(op.indices):
            form = form_of(index)
            if any(atom not in extents for atom in form.terms):
                raise ScheduleError("array indices must be affine expressions of the nest's indices")
            low = form.const + sum(min(0, c) * (extents[a] - 1) for a, c in form.terms.items())
            high = form.const + sum(max(0, c) * (extents[a] - 1) for a, c in form.terms.items())
            if low < 0 or high >= shape[dim]:
                raise ScheduleError(f"an access of {name_of(op.memref)} reaches [{low}, {high}] in dimension {dim}, "
                                    f"outside [0, {shape[dim] - 1}]")  # fmt: skip


class _LoopEmitter:
    """Emits the loops of `order[depth:]` at a point. A boundary loop that is unrolled or
    vectorized is *unswitched* (as Accera does) right inside its chain parent: an `scf.if`
    on whether the parent's tile is whole runs a copy with the constant trip count, or the
    general copy with the `affine.min` bound."""

    def __init__(self, schedule: ScheduleModel, marks: dict, parallel, bounds, logic: Block):
        self.schedule = schedule
        self.marks = marks
        self.parallel = parallel
        self.bounds = bounds
        self.logic = logic
        self.unswitch = {n for n in marks if schedule.needs_min(n)}

    def emit(self, depth: int, point: InsertPoint, ivs: dict, ubs: dict, whole: frozenset, decided: frozenset):
        schedule = self.schedule
        if depth == len(schedule.order):
            mapping = {arg: ivs[schedule.chains[d][-1].name] for d, arg in enumerate(self.logic.args)}
            for op in list(self.logic.ops):
                Rewriter.insert_op(op.clone(mapping), point)  # clone() maps op's results too
            return
        if depth:
            parent = schedule.order[depth - 1]
            for name in sorted(self.unswitch - decided):
                chain, pos = schedule.chain_of(name)
                if chain[pos - 1].name == parent:
                    self._unswitch(name, depth, point, ivs, ubs, whole, decided | {name})
                    return
        name = schedule.order[depth]
        loop = schedule.loop(name)
        chain, pos = schedule.chain_of(name)
        if pos == 0:
            lb, ub = index_const(0, point), index_const(schedule.extents[loop.dim], point)
            if self.bounds is not None and depth == 0:
                lb, ub = self.bounds
        else:
            parent_loop = chain[pos - 1]
            lb = ivs[parent_loop.name]
            step = AffineDimExpr(0) + parent_loop.step
            if schedule.needs_min(name) and name not in whole:
                ub = emit_map([lb, ubs[parent_loop.name]], [step, AffineDimExpr(1)], point, minimum=True)
            else:
                ub = emit_map([lb], [step], point)
        loop_body = Block(arg_types=[IndexType()])
        loop_body.add_op(scf.YieldOp())
        for_op = scf.ForOp(lb, ub, index_const(loop.step, point), [], Region(loop_body))
        for_op.attributes["oi.index"] = StringAttr(name)
        for_op.attributes["oi.dim"] = IntegerAttr(loop.dim, i64)
        for_op.attributes["oi.span"] = IntegerAttr(schedule.span(name), i64)
        if name in self.marks:
            for_op.attributes[f"oi.{self.marks[name]}"] = UnitAttr()
        if self.parallel and depth == 0:
            for_op.attributes["oi.parallel"] = to_attr(self.parallel)
        Rewriter.insert_op(for_op, point)
        loop_body.args[0].name_hint = name
        self.emit(depth + 1, InsertPoint.before(loop_body.last_op), {**ivs, name: loop_body.args[0]},
                  {**ubs, name: ub}, whole, decided)  # fmt: skip

    def _unswitch(self, name, depth, point, ivs, ubs, whole, decided):
        chain, pos = self.schedule.chain_of(name)
        parent = chain[pos - 1]
        end = emit_map([ivs[parent.name]], [AffineDimExpr(0) + parent.step], point)
        is_whole = arith.CmpiOp(end, ubs[parent.name], "sle")
        Rewriter.insert_op(is_whole, point)
        branches = []
        for _ in range(2):
            block = Block()
            block.add_op(scf.YieldOp())
            branches.append(block)
        branch = scf.IfOp(is_whole.result, [], Region(branches[0]), Region(branches[1]))
        branch.attributes["oi.unswitch"] = StringAttr(name)
        Rewriter.insert_op(branch, point)
        self.emit(depth, InsertPoint.before(branches[0].last_op), ivs, ubs, whole | {name}, decided)
        self.emit(depth, InsertPoint.before(branches[1].last_op), ivs, ubs, whole, decided)


def _parallel_bounds(nest: NestOp, schedule: ScheduleModel, name: str, parallel: dict):
    # the outermost loop is emitted once, so its bounds are made here, before any unswitching
    """`[%lo, %hi)` for the outermost loop: two index arguments appended to the function."""
    indices = parallel.get("indices", [])
    if not indices or indices[0] != name or schedule.order[: len(indices)] != list(indices):
        raise ScheduleError("parallelize: the cpu target runs only the outermost loops of the schedule in parallel "
                            f"(the order starts with {schedule.order[0]!r})")  # fmt: skip
    function = nest.parent_op()
    if not isinstance(function, func.FuncOp) or nest.parent_block() is not function.body.blocks[0]:
        raise ScheduleError("parallelize: the nest must sit directly in a func.func")
    block = function.body.blocks[0]
    lo = block.insert_arg(IndexType(), len(block.args))
    hi = block.insert_arg(IndexType(), len(block.args))
    lo.name_hint, hi.name_hint = f"{name}_lo", f"{name}_hi"
    inputs = [*function.function_type.inputs.data, IndexType(), IndexType()]
    function.function_type = func.FunctionType.from_lists(inputs, list(function.function_type.outputs.data))
    loop = schedule.loop(name)
    function.attributes["oi.parallel"] = to_attr({"index": name, "extent": schedule.extents[loop.dim],
                                                  "step": loop.step, **parallel})  # fmt: skip
    return lo, hi
