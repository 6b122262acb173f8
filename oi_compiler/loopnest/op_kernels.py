"""Op kernels: any registry op, on operands of given dtypes and sizes, as GPU kernels.

    from oi_compiler.loopnest.op_kernels import op_kernel
    k = op_kernel("softmax", {"axis": -1}, [("f32", (8, 128))])
    k.module                    # builtin.module { gpu.module @softmax_kernels { gpu.func ... kernel } }
    for launch in k.launches:   # in order: each kernel takes (inputs..., output, scratch...)
        launch.kernel, launch.grid, launch.block, launch.mapping

This is the kernel layer of `device="cuda"` for whole graphs (`runtime/op_launches.py` launches them).
The kernels come from the op's own loop nest (the registry's `nest_builder`, as `--lower-ops`
uses it for the CPU), with static sizes: each `linalg.generic`/`linalg.fill` of the nest is a
*stage*, mapped by its default mapping (loopnest/stage_mappings.py: elementwise, row-tree,
row-sequential, single-thread) into one `gpu.func` of one `gpu.module`; matmul's contraction on
2-d f32/f64 operands is mapped by the loop-nest GPU plan machinery with A and B tiles in shared
memory instead (loopnest/matmul_mapping.py). A `linalg.fill` right before the stage that reduces
into what it filled is folded into that stage. The stages run one launch after another (a launch
boundary is the grid-wide barrier between them); temporaries of the nest (`memref.alloc`)
become *scratch* buffers the caller allocates (`OpKernel.scratch`) and passes after the output
(and after the scalar arguments `runtime` asks for: rope's position).

Every registry op with a nest gets kernels (the single-thread mapping takes any stage the others
cannot); what the op refuses (bad settings, shapes) is the reference's error, an `OiError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects import func, gpu, memref
from xdsl.dialects.builtin import DYNAMIC_INDEX, ArrayAttr, IntAttr, IntegerType, MemRefType, ModuleOp, StringAttr
from xdsl.dialects.linalg.ops import FillOp, GenericOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint
from xdsl.traits import is_side_effect_free

from oi_compiler.backend.llvm_abi import MAY_ALIAS_ATTR
from oi_compiler.boundary import stage
from oi_compiler.dtypes import dtype_name, dtype_type, numpy_dtype
from oi_compiler.errors import ExecutionError, PassError
from oi_compiler.loopnest.attention_mapping import ATTENTION_ROWS, THREADS, attention_kernel, key_threads
from oi_compiler.loopnest.generic_points import captured_values
from oi_compiler.loopnest.gpu_mapping import LAUNCH_ATTR, check_launch, launch_attr
from oi_compiler.loopnest.matmul_mapping import shared_tiles_apply, shared_tiles_kernel
from oi_compiler.loopnest.stage_mappings import ELEMENTWISE, map_stage, stage_shape
from oi_compiler.ops.reference.settings import SHAPE_FROM_OUTPUT
from oi_compiler.ops.registry import lookup_op

MATMUL_SHARED_TILES = "matmul-shared-tiles"


@dataclass(frozen=True)
class Launch:
    """One kernel launch of an op: `kernel` over `grid` x `block`, mapped by `mapping`."""

    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    mapping: str


@dataclass(frozen=True)
class OpKernel:
    """An op's kernels (`module`), run by `launches` in order on (inputs..., output, scratch...)."""

    op: str
    module: ModuleOp
    launches: tuple[Launch, ...]
    output: MemRefType
    scratch: tuple[MemRefType, ...]
    #: the inputs the output may be exactly (the same bytes, shape and layout: `op mul(x, w) >> x`)
    #: with no copy first: each is read only at the point its thread writes (`in_place_inputs`)
    in_place: frozenset[int] = frozenset()

    def scratch_arrays(self) -> list:
        """Fresh numpy buffers for the scratch arguments (their contents do not matter)."""
        import numpy as np

        return [np.zeros(t.get_shape(), numpy_dtype(dtype_name(t.element_type))) for t in self.scratch]


#: settings an op's kernels may take as a scalar argument instead of a constant (the nest builder
#: takes a value for them): rope's position, which a decoder changes every step
RUNTIME_ARGUMENTS = {("rope", "position"): ("i32", "i64")}


def kernel_sizes(op: str, shapes: Sequence[Sequence[int]]) -> tuple:
    """What of the inputs' `shapes` an op's kernels are made for: kernels made for shapes with the same
    `kernel_sizes` serve them all. The shapes themselves, but for attention's keys' count (read at
    run time), of which only the block size it gives counts (`attention_mapping.key_threads`)."""
    key = [tuple(shape) for shape in shapes]
    if op == "attention" and len(key) == 3 and len(key[1]) == 3 and len(key[2]) == 3:
        threads = key_threads(key[1][0])
        key[1], key[2] = (("keys", threads), *key[1][1:]), (("keys", threads), *key[2][1:])
    return tuple(key)


def kernel_size_ranges(op: str, shapes: Sequence[Sequence[int]]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per input shape, per dim, the [low, high] sizes (high -1: no bound) that kernels made for
    `shapes` serve (the same `kernel_sizes`): each size exactly, but attention's keys' count, any
    count of the same block size (`key_threads`)."""
    ranges = [[(n, n) for n in shape] for shape in shapes]
    if op == "attention" and len(shapes) == 3 and len(shapes[1]) == 3 and len(shapes[2]) == 3:
        threads = key_threads(shapes[1][0])
        keys = (threads // 2 + 1 if threads > 1 else 0, -1 if threads == THREADS else threads)
        ranges[1][0] = ranges[2][0] = keys
    return tuple(tuple(r) for r in ranges)


def op_kernel(op: str, settings: Mapping[str, Any], inputs: Sequence[tuple[str, Sequence[int]]],
              output: tuple[str, Sequence[int]] | None = None,
              runtime: Sequence[tuple[str, str]] = ()) -> OpKernel:  # fmt: skip
    """The kernels of `op` with `settings` (as the numpy reference takes them) on `inputs`, one
    (dtype, shape) each; `output` (dtype, shape) must be what the op's rules give, which is the
    default. `runtime`: (setting, scalar type) of `RUNTIME_ARGUMENTS` the kernels take as
    arguments after the output, in that order, instead of a value in `settings`.
    Anything else that escapes is an `InternalError` (an `OiError` too)."""
    with stage("gpu-op-kernels"):
        for key, ty in runtime:
            if ty not in RUNTIME_ARGUMENTS.get((op, key), ()):
                raise PassError(f"op {op}: setting {key} cannot be a kernel argument of type {ty}")
        return _op_kernels(op, settings, inputs, output, tuple(runtime))


def _op_kernels(op: str, settings: Mapping[str, Any], inputs, output, runtime=()) -> OpKernel:
    function, out_type = _nest_function(op, dict(settings), inputs, output, runtime)
    block = function.body.block
    if op == "attention":  # the keys' count read at run time: one kernel per block size (`kernel_sizes`)
        types = list(block.arg_types)
        keys = types[1].get_shape()[0]
        for n in (1, 2):
            types[n] = MemRefType(types[n].element_type, [DYNAMIC_INDEX, *types[n].get_shape()[1:]])
        kernel, grid, threads = attention_kernel("attention_0", types, settings, key_threads(keys))
        return _op_kernel(op, [kernel], [Launch("attention_0", grid, threads, ATTENTION_ROWS)], out_type, [])
    stages, scratch = _stages(op, block)
    shared_tiles = op == "matmul" and not settings.get("acc") and shared_tiles_apply(list(block.arg_types))
    kernels, launches = [], []
    folded = _fold_fills(stages, keep=GenericOp if shared_tiles else ())
    for n, (stage, init) in enumerate(folded):
        name = f"{op}_{n}"
        if shared_tiles and isinstance(stage, GenericOp):
            kernel, grid, threads = shared_tiles_kernel(name, list(block.arg_types))
            launch = Launch(name, grid, threads, MATMUL_SHARED_TILES)
        else:
            kernel, launch = _stage_kernel(name, stage, init, block, scratch)
        kernels.append(kernel)
        launches.append(launch)
    in_place, writer = in_place_inputs([stage for stage, _ in folded], [launch.mapping for launch in launches],
                                       block, len(inputs))  # fmt: skip
    if in_place:  # those inputs and the output may be the same bytes: none of them `noalias` (so no
        # `ld.global.nc`, whose data must not change while the kernel runs)
        kernels[writer].attributes[MAY_ALIAS_ATTR] = ArrayAttr([IntAttr(n) for n in sorted(in_place | {len(inputs)})])
    return _op_kernel(op, kernels, launches, out_type, [s.type for s in scratch], in_place)


def in_place_inputs(stages: list, mappings: list[str], block: Block, inputs: int) -> tuple[frozenset[int], int]:
    """The inputs of the nest function `block` (`inputs` of them, then the output) the output may
    be exactly (the same bytes: the same type), and the stage that writes it.

    The output must be written by one elementwise stage only (`mappings`: one thread per point),
    as operands (the output, or views of it: rope writes its two halves) each through a permutation
    of the loops; such an input must be read by that stage only, each read through a view and map
    one of those writes has too. A thread then reads the input only at elements it writes itself,
    which no other thread reads or writes."""
    output = block.args[inputs]
    writes = _stage_operands(output)
    stage = writes[0][0] if writes else None
    if stage is None or any(s is not stage or k < len(s.inputs) for s, k, _ in writes) or \
            mappings[stages.index(stage)] != ELEMENTWISE:  # fmt: skip
        return frozenset(), 0
    maps = [m.data for m in stage.indexing_maps]
    for _, k, _ in writes:
        dims = [getattr(e, "position", None) for e in maps[k].results]
        if maps[k].num_symbols or None in dims or sorted(dims) != list(range(maps[k].num_dims)):
            return frozenset(), 0
    written = [(view, maps[k], stage.operands[k].type) for _, k, view in writes]
    found = set()
    for n, arg in enumerate(block.args[:inputs]):
        reads = _stage_operands(arg) if arg.type == output.type else None
        if reads and all(s is stage and k < len(stage.inputs) and
                         any(_same_view(view, v) and maps[k] == m and stage.operands[k].type == t
                             for v, m, t in written)
                         for s, k, view in reads):  # fmt: skip
            found.add(n)
    return frozenset(found), stages.index(stage)


def _stage_operands(value: SSAValue) -> list[tuple[GenericOp, int, memref.SubviewOp | None]] | None:
    """Each use of `value` as a stage's operand: (stage, operand number, the subview it goes through,
    if one); None when it has another use."""
    found = []
    for use in value.uses:
        op, view = use.operation, None
        if isinstance(op, memref.SubviewOp):
            view = op
            uses = list(op.result.uses)
            if len(uses) != 1:
                return None
            op, use = uses[0].operation, uses[0]
        if not isinstance(op, GenericOp):
            return None
        found.append((op, use.index, view))
    return found


def _same_view(a: memref.SubviewOp | None, b: memref.SubviewOp | None) -> bool:
    """The same elements of their sources: no view either, or subviews with the same offsets, sizes
    and strides (the same values where they are run-time ones)."""
    if a is None or b is None:
        return a is b
    return (a.static_offsets == b.static_offsets and a.static_sizes == b.static_sizes and
            a.static_strides == b.static_strides and list(a.offsets) == list(b.offsets) and
            list(a.sizes) == list(b.sizes) and list(a.strides) == list(b.strides))  # fmt: skip


def _op_kernel(op: str, kernels: list[gpu.FuncOp], launches: list[Launch], out_type, scratch,
               in_place: frozenset[int] = frozenset()) -> OpKernel:  # fmt: skip
    """The kernels in one `gpu.module`, each with its launch (`oi.launch`), checked."""
    for kernel, launch in zip(kernels, launches):
        check_launch({"block": dict(zip("xyz", launch.grid)), "thread": dict(zip("xyz", launch.block))}, 1024)
        kernel.attributes[LAUNCH_ATTR] = launch_attr(list(launch.grid), list(launch.block))
    module = ModuleOp([gpu.ModuleOp.create(properties={"sym_name": StringAttr(f"{op}_kernels")},
                                           regions=[Region(Block(kernels))])])  # fmt: skip
    module.verify()
    return OpKernel(op, module, tuple(launches), out_type, tuple(scratch), in_place)


def _nest_function(op: str, settings: dict[str, Any], inputs, output, runtime=()) -> tuple[func.FuncOp, MemRefType]:
    """`func.func @op(inputs..., output, runtime settings...)` holding the registry's nest of `op`."""
    spec = lookup_op(op)
    if spec is None:
        raise PassError(f"unsupported op {op}")
    if spec.nest_builder is None or spec.shape_rule is None:
        raise PassError(f"op {op} has no loop nest to make GPU kernels of")
    in_dtypes = [dtype for dtype, _ in inputs]
    shapes = [[int(d) for d in shape] for _, shape in inputs]
    if op in SHAPE_FROM_OUTPUT and SHAPE_FROM_OUTPUT[op] not in settings and output is not None:
        settings[SHAPE_FROM_OUTPUT[op]] = list(output[1])
    out_dtype = settings["acc"][-1] if settings.get("acc") else spec.output_dtype_for(in_dtypes, settings)
    out_shape = list(spec.shape_rule(shapes, settings))
    if output is not None and (out_dtype not in (None, output[0]) or list(output[1]) != out_shape):
        raise PassError(f"op {op}: output {output[0]}{list(output[1])} is not its result {out_dtype}{out_shape}")
    out_dtype = out_dtype or (output[0] if output is not None else None)
    if out_dtype is None:
        raise PassError(f"op {op}: the output dtype follows from no setting here: give the output")
    types = [MemRefType(dtype_type(d), s) for d, s in zip(in_dtypes, shapes)]
    out_type = MemRefType(dtype_type(out_dtype), out_shape)
    block = Block(arg_types=[*types, out_type, *(IntegerType(int(ty[1:])) for _, ty in runtime)])
    for (key, _), value in zip(runtime, block.args[len(types) + 1 :]):
        settings[key] = value
    try:
        spec.nest_builder(Builder(InsertPoint.at_end(block)), block.args[: len(types)], block.args[len(types)],
                          settings, in_dtypes, out_dtype)  # fmt: skip
    except ValueError as e:  # the reference's `convert` refuses the same result when the op runs
        raise ExecutionError(f"op {op} failed: {e}") from None
    function = func.FuncOp(op, (list(block.arg_types), []), Region(block))
    return function, out_type


def _stages(op: str, block: Block) -> tuple[list, list[SSAValue]]:
    """The nest's stages in order, and its temporaries (scratch buffers)."""
    stages, scratch = [], []
    for statement in block.ops:
        if isinstance(statement, GenericOp | FillOp):
            stages.append(statement)
        elif isinstance(statement, memref.AllocOp):
            scratch.append(statement.memref)
        elif not isinstance(statement, memref.DeallocOp) and not is_side_effect_free(statement):
            raise PassError(f"op {op}: no GPU mapping for {statement.name} in its nest")
    return stages, scratch


def _fold_fills(stages: list, keep) -> list[tuple[Any, dict[int, SSAValue]]]:
    """Stages with the initial values folded into them: a fill of exactly what the next stage
    (not of type `keep`) reduces into becomes that stage's `init`."""
    folded, n = [], 0
    while n < len(stages):
        stage, following = stages[n], stages[n + 1] if n + 1 < len(stages) else None
        foldable = following is not None and not isinstance(following, keep)
        output = _filled_reduction(stage, following) if foldable else None
        if output is None:
            folded.append((stage, {}))
            n += 1
        else:
            folded.append((following, {output: stage.inputs[0]}))
            n += 2
    return folded


def _filled_reduction(fill, stage) -> int | None:
    """The reduction output of `stage` that `fill` initialises whole, if any."""
    shape = stage_shape(stage) if isinstance(fill, FillOp) else None
    if shape is None:
        return None
    target = fill.outputs[0]
    rows = 1
    for d in shape.parallel:
        rows *= shape.extents[d]
    for k in shape.reductions:
        if stage.outputs[k] is target and target not in stage.inputs and target.type.element_count() == rows:
            return k
    return None


def _stage_kernel(name: str, stage, init: dict[int, SSAValue], block: Block, scratch: list[SSAValue]):
    """`gpu.func @name(args..., scratch...) kernel` running `stage` by its default mapping."""
    types = [*block.arg_types, *(s.type for s in scratch)]
    body = Block(arg_types=types)
    b = Builder(InsertPoint.at_end(body))
    mapped: dict[SSAValue, SSAValue] = dict(zip([*block.args, *scratch], body.args))

    def inside(value: SSAValue) -> SSAValue:
        """`value` of the nest's function as seen in the kernel: an argument, or its
        (side-effect free) definition cloned into the kernel's entry."""
        if value not in mapped:
            owner = value.owner
            if not isinstance(owner, Operation) or not is_side_effect_free(owner):
                raise PassError(f"{name}: cannot take {value} into the kernel")
            for operand in owner.operands:
                inside(operand)
            clone = owner.clone(value_mapper={o: mapped[o] for o in owner.operands})
            b.insert(clone)
            mapped.update(zip(owner.results, clone.results))
        return mapped[value]

    for value in [*captured_values(stage), *init.values()]:
        inside(value)
    mapped_init = {k: mapped[v] for k, v in init.items()}
    staged = map_stage(b, stage, [mapped[v] for v in stage.operands], mapped_init, inside)
    b.insert(gpu.ReturnOp([]))
    kernel = gpu.FuncOp(name, (types, []), Region(body), kernel=True)
    return kernel, Launch(name, staged.grid, staged.block, staged.mapping)
