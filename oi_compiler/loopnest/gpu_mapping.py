"""`--map-gpu`: a scheduled GPU plan's nest becomes a kernel over the grid (Accera's `plan.bind`).

The nest's function (after `--tile`, `--cache`, `--double-buffer`) becomes a `gpu.func ... kernel`
in a `gpu.module @<name>_kernels`, with the launch it needs as `oi.launch = {grid, block}`:

- **bound loops**: each `scf.for` whose index `oi.plan.bind` maps to a grid unit runs one
  iteration per block (`BLOCK_X/Y/Z`) or thread (`THREAD_X/Y/Z`): its variable is
  `lower + id * step`, and its body runs under `scf.if (iv < upper)`, so sizes that don't divide
  the block leave the extra threads idle. The grid and block sizes are the bound loops' trip
  counts. A loop whose stores do not depend on its variable (a reduction: `C[i, j] += ...` bound
  at `k`) is refused: its threads would race on the same elements;
- **caches**: `PRIVATE` (and unplaced) caches are per-thread stack buffers. `SHARED` caches
  are the block's shared memory (`memref.alloca` in memory space 3): filled cooperatively (the
  outermost loop of each fill strided by the block's threads), with a `gpu.barrier` before each
  fill (the previous tile's readers are done) and after it (the tile is complete). A shared
  cache is for arrays the nest only reads, filled outside the thread-bound loops (so every
  thread of the block reaches the barriers); anything else is refused. Double buffering keeps
  each thread's share of the next tile in its private `_temp` buffer (the prefetch and the swap
  are distributed the same way), as Accera's `double_buffer_location=PRIVATE` does;
- `TEMP` arrays and `parallelize` are refused on GPU targets.
"""

from __future__ import annotations

import math

from xdsl.dialects import arith, func, gpu, memref, scf
from xdsl.dialects.builtin import (
    ArrayAttr,
    IndexType,
    IntAttr,
    IntegerAttr,
    MemRefType,
    StringAttr,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.errors import ScheduleError
from oi_compiler.loopnest.attrs import to_py
from oi_compiler.loopnest.races import refuse_races

LAUNCH_ATTR = "oi.launch"
SHARED_SPACE = 3
GRID_UNITS = {"block_x": ("block", "x"), "block_y": ("block", "y"), "block_z": ("block", "z"),
          "thread_x": ("thread", "x"), "thread_y": ("thread", "y"), "thread_z": ("thread", "z")}  # fmt: skip
_GRID_LIMITS = {"x": 2**31 - 1, "y": 65535, "z": 65535}
_BLOCK_LIMITS = {"x": 1024, "y": 1024, "z": 64}


def gpu_plan(nest) -> dict | None:
    """The nest's plan when it targets a GPU, else None. A malformed plan is a `PassError` at the
    nest (`oi-opt --dump-stages` asks before any pass runs), as the passes report it."""
    from oi_compiler.errors import PassError
    from oi_compiler.ir_context import nearest_loc

    try:
        plan = to_py(nest.attributes.get("oi.plan")) or {}
    except ScheduleError as e:  # as passes/tile.py's `nest_errors` reports it
        raise PassError(e.message, nearest_loc(nest), subject="oi.nest") from None
    target = (plan.get("target") if isinstance(plan, dict) else None) or {}
    return plan if isinstance(target, dict) and target.get("category") == "gpu" else None


def map_nest(nest) -> None:
    """Map a scheduled GPU nest (see the module docstring); its function becomes a kernel."""
    plan = gpu_plan(nest)
    if plan is None:
        return
    if plan.get("parallelize"):
        raise ScheduleError("parallelize is for CPU targets: on a GPU, bind indices to the grid")
    function = nest.parent_op()
    if not isinstance(function, func.FuncOp):
        raise ScheduleError("a GPU plan's oi.nest must be directly in a func.func")
    bind = plan.get("bind") or {}
    loops: dict[str, list[scf.ForOp]] = {}  # an index's loops: unswitched and peeled copies too
    for op in nest.walk():
        if isinstance(op, scf.ForOp) and "oi.index" in op.attributes:
            loops.setdefault(op.attributes["oi.index"].data, []).append(op)
    for index in bind:
        if index not in loops:
            raise ScheduleError(f"bind: {index} is not a loop of the schedule")
    refuse_races(nest, [loop for i in bind for loop in loops[i]], "bind", "bound to the grid, its threads would race")
    sizes = {"block": {"x": 1, "y": 1, "z": 1}, "thread": {"x": 1, "y": 1, "z": 1}}
    for index, unit in bind.items():
        kind, dim = GRID_UNITS[unit]
        sizes[kind][dim] = max(_trip_count(loop) for loop in loops[index])
    check_launch(sizes, int(plan["target"].get("max_threads_per_block", 1024)))
    thread_loops = [loop for i, u in bind.items() if u.startswith("thread") for loop in loops[i]]
    _place_caches(nest, thread_loops, sizes["thread"])
    for index, unit in bind.items():
        for loop in loops[index]:
            _bind_loop(loop, *GRID_UNITS[unit])
    _outline(function, sizes)


# --- checks --------------------------------------------------------------------------------------


def _trip_count(loop: scf.ForOp) -> int:
    lower, upper, step = (_constant(v) for v in (loop.lb, loop.ub, loop.step))
    if step is None or step <= 0:
        raise ScheduleError(f"bind: loop {loop.attributes['oi.index'].data} has no constant step")
    if lower is not None and upper is not None:
        return max(0, -(-(upper - lower) // step))
    return -(-loop.attributes["oi.span"].value.data // step)  # a split's inner loop: its chunk


def _constant(value: SSAValue) -> int | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


def check_launch(sizes: dict, max_threads: int) -> None:
    """CUDA's limits on the block (`sizes["thread"]`) and grid (`sizes["block"]`) sizes; also
    checked by `plan.bind` when it is called."""
    block, grid = sizes["thread"], sizes["block"]
    for dim, limit in _BLOCK_LIMITS.items():
        if block[dim] > limit:
            raise ScheduleError(f"Invalid block dimensions: {block['x']}x{block['y']}x{block['z']} "
                                f"(at most {limit} threads in {dim})")  # fmt: skip
    threads = block["x"] * block["y"] * block["z"]
    if threads > max_threads:
        raise ScheduleError(f"Invalid block size {block['x']}x{block['y']}x{block['z']} = {threads} threads. "
                            f"Max threads per block: {max_threads}")  # fmt: skip
    for dim, limit in _GRID_LIMITS.items():
        if grid[dim] > limit:
            raise ScheduleError(f"Invalid grid dimensions: {grid['x']}x{grid['y']}x{grid['z']} "
                                f"(at most {limit} blocks in {dim})")  # fmt: skip


# --- binding ----------------------------------------------------------------------------------


def grid_id_op(kind: str, dim: str) -> Operation:
    """`gpu.thread_id <dim>` (kind "thread") or `gpu.block_id <dim>`."""
    cls = gpu.ThreadIdOp if kind == "thread" else gpu.BlockIdOp
    return cls(gpu.DimensionAttr(gpu.DimensionEnum(dim)))


def _bind_loop(loop: scf.ForOp, kind: str, dim: str) -> None:
    """`for iv in [lower, upper) step s { body }` -> `iv = lower + id * s; if iv < upper { body }`."""
    point = InsertPoint.before(loop)
    ident = grid_id_op(kind, dim)
    scaled = arith.MuliOp(ident.results[0], loop.step)
    iv = arith.AddiOp(loop.lb, scaled.result)
    inside = arith.CmpiOp(iv.result, loop.ub, "slt")
    for op in (ident, scaled, iv, inside):
        Rewriter.insert_op(op, point)
    body = loop.body.block
    body.args[0].replace_all_uses_with(iv.result)
    then = Block()
    for op in list(body.ops):
        op.detach()
        if isinstance(op, scf.YieldOp):
            continue
        then.add_op(op)
    then.add_op(scf.YieldOp())
    guard = scf.IfOp(inside.result, [], Region(then), Region())
    guard.attributes["oi.bound"] = StringAttr(f"{kind}_{dim}")
    guard.attributes["oi.index"] = loop.attributes["oi.index"]
    Rewriter.insert_op(guard, point)
    Rewriter.erase_op(loop)


# --- caches ------------------------------------------------------------------------------------


def _place_caches(nest, thread_loops: list[scf.ForOp], block: dict) -> None:
    locations = {op.attributes["oi.cache"].data: op.attributes["oi.location"].data for op in nest.body.block.ops
                 if "oi.location" in op.attributes}  # fmt: skip
    for alloc in [op for op in nest.body.block.ops if isinstance(op, memref.AllocOp | memref.AllocaOp)]:
        name = alloc.attributes.get("oi.cache")
        if name is None:
            continue
        base = name.data.removesuffix("_temp") if "oi.double_buffer_temp" in alloc.attributes else name.data
        shared = locations.get(base) == "shared" and "oi.double_buffer_temp" not in alloc.attributes
        if shared and alloc.attributes["oi.movement"].data != "read":
            raise ScheduleError(f"a SHARED cache of an array the nest writes ({base}) is not supported on GPU "
                                "targets: cache it in PRIVATE memory")  # fmt: skip
        _stack_allocate(alloc, SHARED_SPACE if shared else None)
    shared_caches = {n for n, loc in locations.items() if loc == "shared"}
    if shared_caches:
        _synchronize_fills(nest, shared_caches, thread_loops, block)


def _stack_allocate(alloc, space: int | None) -> None:
    """A cache buffer as a stack (or, in space 3, a block's shared) allocation; no dealloc."""
    ty = alloc.memref.type
    assert isinstance(ty, MemRefType)
    if space is not None:
        ty = MemRefType(ty.element_type, ty.get_shape(), ty.layout, IntegerAttr(space, 64))
    new = memref.AllocaOp.get(ty.element_type, shape=ty.get_shape(), layout=ty.layout,
                              memory_space=ty.memory_space, alignment=16)  # fmt: skip
    new.attributes.update({k: v for k, v in alloc.attributes.items() if k != "alignment"})
    Rewriter.insert_op(new, InsertPoint.before(alloc))
    for use in list(alloc.memref.uses):
        if isinstance(use.operation, memref.DeallocOp):
            Rewriter.erase_op(use.operation)
    alloc.memref.replace_all_uses_with(new.memref)
    Rewriter.erase_op(alloc)


def _synchronize_fills(nest, shared: set[str], thread_loops: list[scf.ForOp], block: dict) -> None:
    """Barriers around each fill (and double-buffer swap) of a shared cache; fills and the private
    prefetches that feed them are strided over the block's threads."""
    inside_threads = {op for loop in thread_loops for op in loop.walk()}
    for op in [o for o in nest.walk() if "oi.prefetch_swap" in o.attributes]:
        if op.attributes["oi.prefetch_swap"].data in shared:
            _distribute_swap(op, block)
    groups: list[list[Operation]] = []
    for op in nest.walk():
        name = op.attributes.get("oi.cache_fill") or op.attributes.get("oi.prefetch_swap")
        if name is None or name.data not in shared:
            continue
        if "oi.prefetch" in op.attributes:  # into the thread's private temp: no barrier, its own rows
            if isinstance(op, scf.ForOp):
                _stride_over_threads(op, block)
            continue
        if op in inside_threads:
            raise ScheduleError(f"a SHARED cache ({name.data}) must be filled outside the thread-bound loops: "
                                "cache it at an index above them")  # fmt: skip
        if groups and groups[-1][-1].next_op is op:
            groups[-1].append(op)
        else:
            groups.append([op])
    for group in groups:
        Rewriter.insert_op(gpu.BarrierOp(), InsertPoint.before(group[0]))
        Rewriter.insert_op(gpu.BarrierOp(), InsertPoint.after(group[-1]))
        for op in group:
            if isinstance(op, scf.ForOp):
                _stride_over_threads(op, block)
    _merge_adjacent_barriers(nest)


def _distribute_swap(copy: Operation, block: dict) -> None:
    """The double buffer's swap `memref.copy temp -> shared` as a copy nest whose outermost loop
    is strided over the threads, as the prefetch into `temp` is: each thread its own rows."""
    source, target = copy.operands
    shape = target.type.get_shape()
    point = InsertPoint.before(copy)
    zero, one = (arith.ConstantOp(IntegerAttr(n, IndexType())) for n in (0, 1))
    Rewriter.insert_op(zero, point)
    Rewriter.insert_op(one, point)
    outer: scf.ForOp | None = None
    indices: list[SSAValue] = []
    for extent in shape:
        bound = arith.ConstantOp(IntegerAttr(extent, IndexType()))
        body = Block(arg_types=[IndexType()])
        loop = scf.ForOp(zero.result, bound.result, one.result, [], Region(body))
        Rewriter.insert_op(bound, point)
        Rewriter.insert_op(loop, point)
        outer = outer or loop
        indices.append(body.args[0])
        body.add_op(scf.YieldOp())
        point = InsertPoint.before(body.last_op)
    value = memref.LoadOp.get(source, indices)
    Rewriter.insert_op(value, point)
    Rewriter.insert_op(memref.StoreOp.get(value.res, target, indices), point)
    outer.attributes["oi.prefetch_swap"] = copy.attributes["oi.prefetch_swap"]
    Rewriter.erase_op(copy)


def _stride_over_threads(loop: scf.ForOp, block: dict) -> None:
    """`for r in [lo, hi) step s` -> `for r in [lo + t * s, hi) step s * threads` (t: the linear thread id)."""
    tx, ty, tz = (grid_id_op("thread", d) for d in "xyz")
    bx, by, threads = (arith.ConstantOp(IntegerAttr(n, IndexType()))
                       for n in (block["x"], block["y"], math.prod(block.values())))  # fmt: skip
    zy = arith.MuliOp(tz.results[0], by.result)
    row = arith.AddiOp(zy.result, ty.results[0])
    rx = arith.MuliOp(row.result, bx.result)
    linear = arith.AddiOp(rx.result, tx.results[0])
    offset = arith.MuliOp(linear.result, loop.step)
    start = arith.AddiOp(loop.lb, offset.result)
    stride = arith.MuliOp(loop.step, threads.result)
    for op in (tx, ty, tz, bx, by, threads, zy, row, rx, linear, offset, start, stride):
        Rewriter.insert_op(op, InsertPoint.before(loop))
    loop.operands = (start.result, loop.ub, stride.result, *loop.iter_args)


def _merge_adjacent_barriers(nest) -> None:
    for op in [o for o in nest.walk() if isinstance(o, gpu.BarrierOp)]:
        if isinstance(op.next_op, gpu.BarrierOp):
            Rewriter.erase_op(op)


# --- outlining -------------------------------------------------------------------------------------


def _outline(function: func.FuncOp, sizes: dict) -> None:
    """`func.func @f` -> `gpu.module @f_kernels { gpu.func @f kernel }`, launch sizes attached."""
    name = function.sym_name.data
    body = function.body.clone()
    for ret in [op for op in body.walk() if isinstance(op, func.ReturnOp)]:
        Rewriter.replace_op(ret, gpu.ReturnOp([]))
    kernel = gpu.FuncOp(name, function.function_type, body, kernel=True)
    grid = [sizes["block"][d] for d in "xyz"]
    block = [sizes["thread"][d] for d in "xyz"]
    kernel.attributes[LAUNCH_ATTR] = launch_attr(grid, block)
    module = gpu.ModuleOp.create(properties={"sym_name": StringAttr(f"{name}_kernels")},
                                 regions=[Region(Block([kernel]))])  # fmt: skip
    Rewriter.replace_op(function, module)


def launch_attr(grid: list[int], block: list[int]):
    from xdsl.dialects.builtin import DictionaryAttr

    return DictionaryAttr({"grid": ArrayAttr([IntAttr(g) for g in grid]),
                           "block": ArrayAttr([IntAttr(b) for b in block])})  # fmt: skip


def launch_of(kernel) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(grid, block) of a mapped kernel."""
    attr = kernel.attributes[LAUNCH_ATTR]
    grid = tuple(v.data for v in attr.data["grid"].data)
    block = tuple(v.data for v in attr.data["block"].data)
    return grid, block  # type: ignore[return-value]


