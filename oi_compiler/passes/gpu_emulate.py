"""`--gpu-emulate`: run GPU kernels on the CPU, as loops over the grid and the block.

Each `gpu.func @k(args) kernel` of every `gpu.module` becomes a CPU function in the top-level
module,

    func.func @k(args..., %grid_x, %grid_y, %grid_z, %block_x, %block_y, %block_z: index)

that runs the same kernel code, thread by thread:

- the grid is three `scf.for` loops over the block ids (z outermost, x innermost);
- inside a block, the body is split at each `gpu.barrier` into *phases*; each phase is its own
  loop nest over the block's threads, so every thread finishes phase n before any thread starts
  phase n+1 (what `bar.sync` guarantees, and no more: within a phase the threads run one after
  the other, which is one valid schedule of the hardware);
- `gpu.block_id`/`thread_id`/`global_id` become the loop variables, `gpu.block_dim`/`grid_dim`
  the parameters;
- shared memory (`memref.alloca` in memory space 3) is one buffer per block, allocated at the
  start of the block in the generic space;
- an SSA value defined in one phase and used in a later one goes through a per-thread buffer (a
  `memref<?xT>` of the block's thread count, at the function's entry): the defining phase stores
  it at the end of each thread's run, a phase using it loads it at the start;
- a barrier inside an `scf.for` whose bounds are the same for every thread of the block (they
  depend on the arguments, constants, block ids and sizes and enclosing such loops only) splits
  that loop's body into phases inside one loop over the iterations, which wraps the per-thread
  loops; the loop's carried values (`iter_args`) are per-thread buffers too.

Refused, with a `PassError` at the op's location: a barrier under any other control flow
(`scf.if`, `scf.while`, a loop whose bounds depend on the thread id or on memory), a kernel of
more than one block, GPU ops other than the ids, barriers and returns (shuffles, reductions,
subgroups, async copies), memory spaces other than 0 and 3, dynamically sized shared memory,
a memref value (a view, a private buffer) defined before a barrier and used after it, and device
functions that use GPU ops (a call cannot see the caller's thread). `gpu.launch_func` in the host
code becomes a `func.call` of the emulated kernel.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field

from xdsl.dialects import arith, func, gpu, memref, scf
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AnyFloat,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StridedLayoutAttr,
    ModuleOp,
    NoneAttr,
)
from xdsl.ir import Block, BlockArgument, Operation, OpResult, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.backend.llvm_abi import MAY_ALIAS_ATTR
from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc

SHARED = 3  # the memory space of a block's shared memory
_DIMS = ("x", "y", "z")
_IDS = (gpu.ThreadIdOp, gpu.BlockIdOp, gpu.BlockDimOp, gpu.GridDimOp, gpu.GlobalIdOp)
_ALLOWED_GPU = (*_IDS, gpu.BarrierOp, gpu.ReturnOp)
#: ops whose result is the same for all threads of a block when their operands are
_UNIFORM_OPS = (memref.DimOp,)


def _error(message: str, op: Operation | None) -> PassError:
    return PassError(f"gpu-emulate: {message}", nearest_loc(op) if op is not None else None)


def _dim(op: Operation) -> int:
    return _DIMS.index(op.dimension.data.value)


def _memory_space(ty: MemRefType) -> int:
    space = ty.memory_space
    if isinstance(space, NoneAttr):
        return 0
    if isinstance(space, IntegerAttr):
        return space.value.data
    return -1


def _contains_barrier(op: Operation) -> bool:
    return any(isinstance(o, gpu.BarrierOp) for o in op.walk())


def _first_barrier(op: Operation) -> Operation:
    return next(o for o in op.walk() if isinstance(o, gpu.BarrierOp))


def _static_view(cast: memref.ReinterpretCastOp) -> bool:
    return not (cast.offsets or cast.sizes or cast.strides)


# ----------------------------------------------------------------------------- the phase tree


@dataclass
class Phase:
    """Ops between two barriers: every thread of the block runs them, one thread after another."""

    ops: list[Operation]


@dataclass
class Loop:
    """A block-uniform `scf.for` holding a barrier: one loop over its iterations around its phases."""

    op: scf.ForOp
    items: list[Phase | Loop]


@dataclass
class Cond:
    """A block-uniform `scf.if` holding a barrier (a bound block loop's guard): one `scf.if` at block
    level around the phases of each branch."""

    op: scf.IfOp
    then_items: list
    else_items: list


@dataclass
class _Scope:
    """What block-level code (outside the thread loops) can use: original value -> new value."""

    values: dict[SSAValue, SSAValue] = field(default_factory=dict)

    def child(self) -> _Scope:
        return _Scope(dict(self.values))


def _ancestor_in(op: Operation, block: Block) -> Operation | None:
    while op is not None and op.parent_block() is not block:
        op = op.parent_op()
    return op


class _KernelEmulation:
    """The CPU function of one kernel (the kernel is cloned first: ids and shared memory are hoisted)."""

    def __init__(self, kernel: gpu.FuncOp):
        self.original = kernel
        self.kernel = kernel.clone()
        self.name = kernel.sym_name.data
        self._check()
        self.body = self.kernel.body.block
        self.ambient_ops = self._hoist_ambient()
        self.loop_ivs: set[SSAValue] = set()
        self.items = self._split(self.body, [op for op in self.body.ops if not isinstance(op, gpu.ReturnOp)])
        self.buffers: dict[SSAValue, SSAValue] = {}  # original value -> its per-thread buffer
        self.expanded: dict[SSAValue, SSAValue] = {}  # private alloca -> its block-wide buffer
        self.expanded_views: dict[SSAValue, tuple] = {}  # a strided view of one -> (alloca, its cast)

    # ------------------------------------------------------------------ checks

    def _check(self) -> None:
        region = self.kernel.body
        if len(region.blocks) != 1:
            raise _error(f"kernel @{self.name} has {len(region.blocks)} blocks; only a single-block body "
                         "(structured control flow) can be emulated", self.original)  # fmt: skip
        block = region.block
        last = block.last_op
        if not isinstance(last, gpu.ReturnOp) or last.operands:
            raise _error(f"kernel @{self.name} must end with a gpu.return without operands", last or self.original)
        for op in self.kernel.walk():
            if op is self.kernel:
                continue
            if op.name.startswith("gpu.") and not isinstance(op, _ALLOWED_GPU):
                raise _error(f"{op.name} cannot be emulated (only thread/block/grid ids and sizes, "
                             "gpu.barrier and gpu.return are)", op)  # fmt: skip
            if isinstance(op, gpu.ReturnOp) and op is not last:
                raise _error("a gpu.return before the end of the kernel cannot be emulated", op)
            if isinstance(op, memref.AllocaOp):
                space = _memory_space(op.memref.type)
                if space not in (0, SHARED):
                    raise _error(f"memory space {op.memref.type.memory_space} cannot be emulated "
                                 "(0: generic, 3: shared)", op)  # fmt: skip
                if space == SHARED and op.dynamic_sizes:
                    raise _error("shared memory needs a static size", op)
            elif isinstance(op, (memref.AllocOp, memref.GlobalOp, memref.GetGlobalOp)):
                for r in op.results:
                    if isinstance(r.type, MemRefType) and _memory_space(r.type) != 0:
                        raise _error(f"{op.name} in memory space {r.type.memory_space} cannot be emulated", op)

    def _hoist_ambient(self) -> list[Operation]:
        """Take out the ops every phase can see without a buffer: constants, GPU ids and sizes,
        shared memory (all without operands, so their values are the same wherever they are)."""
        ambient = []
        hoisted: set[SSAValue] = set()
        for op in list(self.kernel.walk()):
            shared = isinstance(op, memref.AllocaOp) and _memory_space(op.memref.type) == SHARED
            # a view of shared memory with a static layout (a cache's strided layout) is shared too
            shared_view = isinstance(op, (memref.ReinterpretCastOp, memref.CastOp)) and op.operands \
                and all(v in hoisted for v in op.operands)  # fmt: skip
            if isinstance(op, (arith.ConstantOp, *_IDS)) or shared or shared_view:
                op.detach()
                ambient.append(op)
                hoisted.update(op.results)
        return ambient

    def _split(self, block: Block, ops: list[Operation]) -> list[Phase | Loop]:
        items: list[Phase | Loop] = []
        current: list[Operation] = []
        for op in ops:
            if isinstance(op, gpu.BarrierOp):
                items.append(Phase(current))
                current = []
            elif not _contains_barrier(op):
                current.append(op)
            elif isinstance(op, scf.ForOp):
                for bound in (op.lb, op.ub, op.step):
                    self._require_uniform(bound, op)
                items.append(Phase(current))
                current = []
                body = op.body.block
                self.loop_ivs.add(body.args[0])
                for arg in op.iter_args:
                    self._require_storable(arg, op)
                items.append(Loop(op, self._split(body, [o for o in body.ops if not isinstance(o, scf.YieldOp)])))
            elif isinstance(op, scf.IfOp) and not op.results and self._is_uniform(op.cond):
                items.append(Phase(current))
                current = []
                branches = [self._split(r.block, [o for o in r.block.ops if not isinstance(o, scf.YieldOp)])
                            if r.blocks else [] for r in (op.true_region, op.false_region)]  # fmt: skip
                items.append(Cond(op, *branches))
            else:
                self._refuse_barrier_under(op)
        items.append(Phase(current))
        return [item for item in items if not (isinstance(item, Phase) and not item.ops)]

    def _refuse_barrier_under(self, holder: Operation) -> None:
        """`holder` (not an scf.for: those are loops or refused by `_require_uniform`) holds a barrier."""
        barrier = _first_barrier(holder)
        if isinstance(holder, scf.IfOp) and self._depends_on_thread(holder.cond):
            why = "under an scf.if whose condition depends on the thread id"
        elif isinstance(holder, scf.IfOp):
            why = "under an scf.if (only scf.for loops with block-uniform bounds may hold barriers)"
        else:
            why = f"under {holder.name} (only scf.for loops with block-uniform bounds may hold barriers)"
        where = nearest_loc(holder)
        raise _error(f"a gpu.barrier {why}{f' (at {where})' if where else ''} cannot be emulated: "
                     "every thread of a block must reach the same barriers", barrier)  # fmt: skip

    # ------------------------------------------------------------------ uniformity

    def _is_uniform(self, value: SSAValue) -> bool:
        """Whether `value` is the same for every thread of a block (the ids of blocks, sizes,
        arguments, constants, ivs of block-uniform loops, and pure arith/math ops of those)."""
        if isinstance(value, BlockArgument):
            return value.block is self.body or value in self.loop_ivs
        op = value.op
        if isinstance(op, (gpu.ThreadIdOp, gpu.GlobalIdOp)):
            return False
        if isinstance(op, (arith.ConstantOp, gpu.BlockIdOp, gpu.BlockDimOp, gpu.GridDimOp)):
            return True
        if op.dialect_name() in ("arith", "math") or isinstance(op, _UNIFORM_OPS):
            return not op.regions and all(self._is_uniform(v) for v in op.operands)
        return False

    def _depends_on_thread(self, value: SSAValue, seen: set | None = None) -> bool:
        """Whether `value` is computed (through any op) from a thread id."""
        seen = set() if seen is None else seen
        if value in seen:
            return False
        seen.add(value)
        if isinstance(value, BlockArgument):
            owner = value.block.parent_op()
            return owner is not None and owner is not self.kernel and any(
                self._depends_on_thread(v, seen) for v in owner.operands)  # fmt: skip
        op = value.op
        if isinstance(op, (gpu.ThreadIdOp, gpu.GlobalIdOp)):
            return True
        return any(self._depends_on_thread(v, seen) for v in op.operands)

    def _require_uniform(self, value: SSAValue, loop: scf.ForOp) -> None:
        if self._is_uniform(value):
            return
        barrier = _first_barrier(loop)
        where = nearest_loc(loop)
        why = "depend on the thread id" if self._depends_on_thread(value) else \
            "are not provably the same for every thread of the block (only arguments, constants, block ids, sizes " \
            "and arith/math of those are)"  # fmt: skip
        raise _error(f"a gpu.barrier in an scf.for whose bounds {why}{f' (loop at {where})' if where else ''} "
                     "cannot be emulated: every thread of a block must reach the same barriers", barrier)  # fmt: skip

    def _require_storable(self, value: SSAValue, at: Operation) -> None:
        ty = value.type
        if isinstance(ty, (IntegerType, IndexType)) or isinstance(ty, AnyFloat):
            return
        what = f"%{value.name_hint}" if value.name_hint else "a value"
        raise _error(f"{what} of type {ty} lives across a gpu.barrier; only integers, indices and floats "
                     "can (a per-thread buffer holds them)", at)  # fmt: skip

    # ------------------------------------------------------------------ emission

    def build(self) -> func.FuncOp:
        index = IndexType()
        inputs = list(self.kernel.function_type.inputs.data)
        entry = Block(arg_types=[*inputs, *[index] * 6])
        for old, new in zip(self.body.args, entry.args):
            new.name_hint = old.name_hint
        sizes = entry.args[len(inputs) :]
        for arg, hint in zip(sizes, [f"{k}_{d}" for k in ("grid", "block") for d in _DIMS]):
            arg.name_hint = hint
        self.grid, self.block = list(sizes[:3]), list(sizes[3:])
        ret = func.ReturnOp()
        entry.add_op(ret)
        self.entry_point = InsertPoint.before(ret)
        function = func.FuncOp(self.name, (inputs + [index] * 6, []), Region(entry))
        if MAY_ALIAS_ATTR in self.kernel.attributes:  # (the arguments keep their positions)
            function.attributes[MAY_ALIAS_ATTR] = self.kernel.attributes[MAY_ALIAS_ATTR]

        scope = _Scope(dict(zip(self.body.args, entry.args)))
        self.c0 = self._put(arith.ConstantOp.from_int_and_width(0, index), self.entry_point, "c0")
        self.c1 = self._put(arith.ConstantOp.from_int_and_width(1, index), self.entry_point, "c1")
        threads = self._put(arith.MuliOp(self.block[0], self.block[1]), self.entry_point)
        self.threads = self._put(arith.MuliOp(threads, self.block[2]), self.entry_point, "threads")
        constants = {(IntegerAttr(0, index), index): self.c0, (IntegerAttr(1, index), index): self.c1}
        for op in self.ambient_ops:
            if isinstance(op, arith.ConstantOp):
                key = (op.value, op.result.type)
                if key not in constants:
                    constants[key] = self._put(op.clone(), self.entry_point)
                scope.values[op.result] = constants[key]
            elif isinstance(op, gpu.BlockDimOp):
                scope.values[op.result] = self.block[_dim(op)]
            elif isinstance(op, gpu.GridDimOp):
                scope.values[op.result] = self.grid[_dim(op)]

        # the grid: z, y, x
        point = self.entry_point
        block_ids = [None, None, None]
        for d in (2, 1, 0):
            point, block_ids[d] = self._for(self.c0, self.grid[d], self.c1, point, f"bid_{_DIMS[d]}")
            if d == 2:  # per-thread buffers go before the grid loops
                self.alloc_point = InsertPoint.before(block_ids[d].block.parent_op())
        self.block_ids = block_ids
        for op in self.ambient_ops:
            if isinstance(op, gpu.BlockIdOp):
                scope.values[op.result] = block_ids[_dim(op)]
            elif isinstance(op, memref.AllocaOp):  # shared memory: one buffer per block, generic space
                ty = op.memref.type
                alloca = memref.AllocaOp.get(ty.element_type, op.alignment, ty.get_shape(), layout=ty.layout)
                scope.values[op.memref] = self._put(alloca, point, op.memref.name_hint or "shared")
            elif isinstance(op, (memref.ReinterpretCastOp, memref.CastOp)):  # a view of it
                view = op.clone(value_mapper=scope.values)
                scope.values[op.results[0]] = self._put(view, point, op.results[0].name_hint)
        self._emit_items(self.items, scope, point, self.body)
        self._drop_unread_buffers()
        return function

    def _drop_unread_buffers(self) -> None:
        """Buffers no phase loads (a value stored for a loop bound that was recomputed instead)."""
        for buffer in set(self.buffers.values()):
            users = [use.operation for use in buffer.uses]
            if not any(isinstance(u, memref.LoadOp) for u in users):
                for user in users:
                    Rewriter.erase_op(user)
                Rewriter.erase_op(buffer.op)

    @staticmethod
    def _put(op: Operation, point: InsertPoint, hint: str | None = None) -> SSAValue:
        Rewriter.insert_op(op, point)
        if op.results:
            if hint is not None:
                op.results[0].name_hint = hint
            return op.results[0]
        return None

    def _for(self, lb, ub, step, point: InsertPoint, hint: str) -> tuple[InsertPoint, SSAValue]:
        body = Block(arg_types=[IndexType()])
        body.args[0].name_hint = hint
        yield_op = scf.YieldOp()
        body.add_op(yield_op)
        Rewriter.insert_op(scf.ForOp(lb, ub, step, [], body), point)
        return InsertPoint.before(yield_op), body.args[0]

    def _buffer(self, value: SSAValue) -> SSAValue:
        """The per-thread buffer of `value` (allocated once, at the function's entry)."""
        if value not in self.buffers:
            self._require_storable(value, value.op if isinstance(value, OpResult) else value.block.parent_op())
            alloca = memref.AllocaOp.get(value.type, None, [DYNAMIC_INDEX], [self.threads])
            hint = f"{value.name_hint}_per_thread" if value.name_hint else "per_thread"
            self.buffers[value] = self._put(alloca, self.alloc_point, hint)
        return self.buffers[value]

    def _emit_items(self, items, scope: _Scope, point: InsertPoint, block: Block,
                    yield_stores: list[tuple[SSAValue, SSAValue]] | None = None) -> None:  # fmt: skip
        """Emit `items` (of `block`) at `point`; `yield_stores` (value, buffer) end the last phase."""
        if yield_stores and (not items or not isinstance(items[-1], Phase)):
            items = [*items, Phase([])]
        for n, item in enumerate(items):
            last = n == len(items) - 1
            if isinstance(item, Phase):
                self._emit_phase(item, scope, point, block, yield_stores if last else None)
            elif isinstance(item, Cond):
                self._emit_cond(item, scope, point)
            else:
                self._emit_loop(item, scope, point)

    def _emit_cond(self, cond: Cond, scope: _Scope, point: InsertPoint) -> None:
        """The same condition at block level (it is block-uniform), each branch's phases inside it."""
        condition = self._block_value(cond.op.cond, scope, point)
        then, other = Block([scf.YieldOp()]), Block([scf.YieldOp()])
        Rewriter.insert_op(scf.IfOp(condition, [], Region(then), Region(other)), point)
        for items, target, region in ((cond.then_items, then, cond.op.true_region),
                                      (cond.else_items, other, cond.op.false_region)):  # fmt: skip
            if items:
                self._emit_items(items, scope.child(), InsertPoint.before(target.last_op), region.block)

    def _emit_loop(self, loop: Loop, scope: _Scope, point: InsertPoint) -> None:
        op = loop.op
        lb, ub, step = (self._block_value(v, scope, point) for v in (op.lb, op.ub, op.step))
        body = op.body.block
        carried = list(zip(op.iter_args, body.args[1:], op.results))
        if carried:  # the initial values into the carried buffers, thread by thread
            stores = []
            for init, arg, result in carried:
                buffer = self._buffer(arg)
                self.buffers[result] = buffer
                stores.append((init, buffer))
            self._emit_phase(Phase([]), scope, point, None, stores)
        inner_point, iv = self._for(lb, ub, step, point, body.args[0].name_hint or "iter")
        inner = scope.child()
        inner.values[body.args[0]] = iv
        yielded = body.last_op.operands if isinstance(body.last_op, scf.YieldOp) else ()
        stores = [(v, self.buffers[arg]) for v, arg in zip(yielded, body.args[1:])]
        self._emit_items(loop.items, inner, inner_point, body, stores)

    def _expand(self, op: memref.AllocaOp) -> None:
        """A private buffer living across a barrier: a block-wide buffer with a row per thread
        (its loads and stores then go through the thread's row, a subview)."""
        ty = op.memref.type
        hint = op.memref.name_hint
        what = f"%{hint}" if hint else "a private buffer"
        if op.dynamic_sizes or not isinstance(ty.layout, NoneAttr):
            raise _error(f"{what} ({ty}) lives across a gpu.barrier; only a statically sized one can", op)
        for use in op.memref.uses:
            user = use.operation
            if isinstance(user, memref.ReinterpretCastOp) and _static_view(user) and len(ty.get_shape()) == 1:
                self.expanded_views[user.result] = (op.memref, user)  # a strided view of the buffer
                continue
            if not (isinstance(user, memref.LoadOp) or isinstance(user, memref.StoreOp) and use.index == 1):
                raise _error(f"{what} lives across a gpu.barrier and is used by {user.name}; only loads and "
                             "stores of such a buffer can be emulated", user)  # fmt: skip
        alloca = memref.AllocaOp.get(ty.element_type, op.alignment, [DYNAMIC_INDEX, *ty.get_shape()], [self.threads])
        self.expanded[op.memref] = self._put(alloca, self.alloc_point, f"{hint or 'private'}_per_thread")

    def _thread_view(self, view: SSAValue, thread: SSAValue, point: InsertPoint) -> SSAValue:
        """A strided view of an expanded private buffer: the same view of this thread's row."""
        buffer, cast = self.expanded_views[view]
        big = self.expanded[buffer]
        (span,) = buffer.type.get_shape()
        width = self._put(arith.ConstantOp.from_int_and_width(span, IndexType()), point)
        offset = self._put(arith.MuliOp(thread, width), point)
        shape = list(cast.static_sizes.get_values())
        strides = list(cast.static_strides.get_values())
        ty = MemRefType(view.type.element_type, shape, StridedLayoutAttr(strides, None))
        return self._put(memref.ReinterpretCastOp(big, [offset], [], [], [DYNAMIC_INDEX], shape, strides, ty), point,
                         view.name_hint)  # fmt: skip

    def _block_value(self, value: SSAValue, scope: _Scope, point: InsertPoint) -> SSAValue:
        """A block-uniform value at block level: what the scope has, else its pure ops recomputed."""
        if value in scope.values:
            return scope.values[value]
        assert isinstance(value, OpResult), value  # _is_uniform held
        op = value.op
        mapper = {v: self._block_value(v, scope, point) for v in op.operands}
        clone = op.clone(value_mapper=mapper)
        Rewriter.insert_op(clone, point)
        for old, new in zip(op.results, clone.results):
            scope.values[old] = new
        return scope.values[value]

    def _emit_phase(self, phase: Phase, scope: _Scope, point: InsertPoint, block: Block | None,
                    yield_stores: list[tuple[SSAValue, SSAValue]] | None) -> None:  # fmt: skip
        """One loop nest over the block's threads (z, y, x) running `phase`'s ops."""
        yield_stores = yield_stores or []
        tids = [None, None, None]
        for d in (2, 1, 0):
            point, tids[d] = self._for(self.c0, self.block[d], self.c1, point, f"tid_{_DIMS[d]}")
        row = self._put(arith.MuliOp(tids[2], self.block[1]), point)
        row = self._put(arith.AddiOp(row, tids[1]), point)
        row = self._put(arith.MuliOp(row, self.block[0]), point)
        thread = self._put(arith.AddiOp(row, tids[0]), point, "thread")

        mapper = dict(scope.values)
        for op in self.ambient_ops:
            if isinstance(op, gpu.ThreadIdOp):
                mapper[op.result] = tids[_dim(op)]
        inside_ops: set[Operation] = set()
        inside_blocks: set[Block] = set()
        for top in phase.ops:
            for o in top.walk():
                inside_ops.add(o)
                inside_blocks.update(b for r in o.regions for b in r.blocks)
        # private buffers (stack allocas) that later phases use, directly or through a strided
        # view: one per thread in a block-wide buffer
        for op in phase.ops:
            if isinstance(op, memref.AllocaOp) and (self._used_later(op.memref, block, inside_ops, None) or any(
                    isinstance(u.operation, memref.ReinterpretCastOp)
                    and self._used_later(u.operation.result, block, inside_ops, None) for u in op.memref.uses)):  # fmt: skip
                self._expand(op)
        needed = [op.memref for op in phase.ops if op.results and op.results[0] in self.expanded]
        needed += [v for top in phase.ops for o in top.walk() for v in o.operands]
        needed += [v for v, _ in yield_stores]
        for value in needed:
            if value in mapper:
                continue
            if value in self.expanded_views:
                mapper[value] = self._thread_view(value, thread, point)
                continue
            if value in self.expanded:  # this thread's row of the block-wide buffer
                big = self.expanded[value]
                shape = value.type.get_shape()
                rank = len(shape)
                strides = [math.prod(shape[d + 1 :]) for d in range(rank)]  # the row's, row-major
                ty = MemRefType(value.type.element_type, list(shape), StridedLayoutAttr(strides, None))  # only
                # the thread dim is dropped: inferring the type would drop every unit dim too
                view = memref.SubviewOp.get(big, [thread, *[0] * rank], [1, *shape], [1] * (rank + 1), ty)
                mapper[value] = self._put(view, point, value.name_hint)
                continue
            if isinstance(value, OpResult) and value.op in inside_ops:
                continue
            if isinstance(value, BlockArgument) and value.block in inside_blocks:
                continue
            if isinstance(value, OpResult) and isinstance(value.op, gpu.GlobalIdOp):
                d = _dim(value.op)
                base = self._put(arith.MuliOp(self.block_ids[d], self.block[d]), point)
                mapper[value] = self._put(arith.AddiOp(base, tids[d]), point, value.name_hint)
                continue
            if value not in self.buffers:  # defined in an earlier phase: stored there
                self._buffer(value)
            load = memref.LoadOp.get(self.buffers[value], [thread])
            mapper[value] = self._put(load, point, value.name_hint)
        for op in phase.ops:
            if not (op.results and (op.results[0] in self.expanded or op.results[0] in self.expanded_views)):
                Rewriter.insert_op(op.clone(value_mapper=mapper), point)
        # values later phases use, stored at the end of this one
        merged_yield = block.last_op if (yield_stores and block is not None) else None
        for op in phase.ops:
            for result in op.results:
                if result not in self.expanded and result not in self.expanded_views \
                        and self._used_later(result, block, inside_ops, merged_yield):  # fmt: skip
                    self._put(memref.StoreOp.get(mapper[result], self._buffer(result), [thread]), point)
        for value, buffer in yield_stores:
            self._put(memref.StoreOp.get(mapper[value], buffer, [thread]), point)
        while isinstance(thread, OpResult) and not thread.uses:  # no buffer here: no linear thread id
            op = thread.op
            operands = [v for v in op.operands if isinstance(v, OpResult) and v.op.parent_block() is op.parent_block()]
            Rewriter.erase_op(op)
            thread = operands[0] if operands else None

    def _used_later(self, value: SSAValue, block: Block, inside: set[Operation], merged_yield) -> bool:
        for use in value.uses:
            user = use.operation
            if user in inside:
                continue
            top = _ancestor_in(user, block)
            if top is merged_yield:
                continue
            if isinstance(top, scf.ForOp) and top is user and use.index < 3 and top in self._loop_ops():
                continue  # a bound of a block-level loop: recomputed there
            return True
        return False

    def _loop_ops(self) -> set[Operation]:
        if not hasattr(self, "_loops"):
            found: set[Operation] = set()

            def visit(items):
                for item in items:
                    if isinstance(item, Loop):
                        found.add(item.op)
                        visit(item.items)
                    elif isinstance(item, Cond):
                        visit(item.then_items)
                        visit(item.else_items)

            visit(self.items)
            self._loops = found
        return self._loops


# ----------------------------------------------------------------------------- the pass


def _move_device_function(op: Operation) -> Operation:
    """A non-kernel function of a gpu.module as a private func.func of the host module."""
    for inner in op.walk():
        if inner is not op and inner.name.startswith("gpu.") and not isinstance(inner, gpu.ReturnOp):
            raise _error(f"{inner.name} in device function @{op.sym_name.data} cannot be emulated (a called "
                         "function does not see its caller's thread; inline it into the kernel)", inner)  # fmt: skip
    if isinstance(op, gpu.FuncOp):
        body = op.body.clone()
        for ret in [o for o in body.walk() if isinstance(o, gpu.ReturnOp)]:
            Rewriter.replace_op(ret, func.ReturnOp(*ret.operands))
        return func.FuncOp(op.sym_name.data, op.function_type, body, visibility="private")
    op.detach()
    return op


def _launch_as_call(launch: gpu.LaunchFuncOp, kernels: dict[str, func.FuncOp]) -> None:
    name = launch.kernel.leaf_reference().data if hasattr(launch.kernel, "leaf_reference") else \
        (launch.kernel.nested_references.data[-1].data if launch.kernel.nested_references.data
         else launch.kernel.root_reference.data)  # fmt: skip
    if name not in kernels:
        raise _error(f"gpu.launch_func of @{name}, which is not an emulated kernel", launch)
    if launch.asyncDependencies or launch.asyncToken is not None:
        raise _error("an asynchronous gpu.launch_func cannot be emulated", launch)
    if launch.clusterSizeX is not None or launch.dynamicSharedMemorySize is not None:
        raise _error("gpu.launch_func with clusters or dynamic shared memory cannot be emulated", launch)
    sizes = []
    for v in (launch.gridSizeX, launch.gridSizeY, launch.gridSizeZ,
              launch.blockSizeX, launch.blockSizeY, launch.blockSizeZ):  # fmt: skip
        if not isinstance(v.type, IndexType):
            cast = arith.IndexCastOp(v, IndexType())
            Rewriter.insert_op(cast, InsertPoint.before(launch))
            v = cast.result
        sizes.append(v)
    Rewriter.replace_op(launch, func.CallOp(name, [*launch.kernelOperands, *sizes], []))


@dataclass(frozen=True)
class GpuEmulate(ModulePass):
    """Rewrite gpu.module kernels into CPU functions that loop over the grid and block, with barriers as phases"""

    name = "gpu-emulate"

    def apply(self, ctx, module: ModuleOp) -> None:
        kernels: dict[str, func.FuncOp] = {}
        for gpu_module in [op for op in module.ops if isinstance(op, gpu.ModuleOp)]:
            point = InsertPoint.before(gpu_module)
            for op in list(gpu_module.body.block.ops):
                if isinstance(op, gpu.FuncOp) and op.kernel is not None:
                    new = _KernelEmulation(op).build()
                    kernels[new.sym_name.data] = new
                elif isinstance(op, (gpu.FuncOp, func.FuncOp)):
                    new = _move_device_function(op)
                elif op.name == "gpu.module_end":
                    continue
                else:
                    op.detach()
                    new = op
                Rewriter.insert_op(new, point)
            Rewriter.erase_op(gpu_module)
        for launch in [op for op in module.walk() if isinstance(op, gpu.LaunchFuncOp)]:
            _launch_as_call(launch, kernels)
        module.attributes.pop("gpu.container_module", None)


def kernel_names(module: ModuleOp) -> list[str]:
    """The kernels (`gpu.func ... kernel`) of `module`'s gpu.modules, which --gpu-emulate makes functions."""
    return [op.sym_name.data for m in module.ops if isinstance(m, gpu.ModuleOp) for op in m.body.block.ops
            if isinstance(op, gpu.FuncOp) and op.kernel is not None]  # fmt: skip
