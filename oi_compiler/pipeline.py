"""The lowering pipelines, as ordered lists of named stages: what compiles, and what `--dump-stages` shows.

    oi-opt g.oi --bind-sizes="D=64" --lower-ops --lower-cache --lower-nests -t llvm

(`--lower-cache` is the five table passes: convert-graph-to-tables, lower-table-storage,
assign-state-slots, lower-undo-log, lower-tables)
is `STEP_STAGES`, what `device="cpu"` runs (`runtime/native_step.compile_step`; `device="cuda"`
runs `CUDA_STEP_STAGES`, the same with `--lower-ops{device=cuda}` and `--launch-op-kernels`); `NEST_STAGES`
is what `plan.build()` runs on a loop nest's IR, `GPU_NEST_STAGES` on a GPU plan's. Each stage but the last is a registered pass
(`passes/`), so any prefix of a list can be run by hand with `oi-opt` and the same flags; the last,
`llvm`, is the backend's translation to LLVM IR (`backend/llvm.py`), which the JIT then optimises
and loads. `run_stages` is the one loop that runs a list, as Triton's backend runs its `stages`;
`oi-opt --dump-stages` runs the same list and prints the IR after each stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str  # the pass flag, or "llvm" for the backend
    description: str  # what the IR is after it


LLVM = Stage("llvm", "LLVM IR (before the JIT's O2)")
PTX = Stage("ptx", "PTX of the kernels (O3, libdevice linked)")

STEP_STAGES: tuple[Stage, ...] = (
    Stage("bind-sizes", "every size variable replaced by its value"),
    Stage("lower-ops", "each op an oi.kernel: its loop nest (linalg.generic) over buffer arguments"),
    Stage("convert-graph-to-tables", "the table level: one func.func @step over named state words and buffers, "
                                     "typed checks, whole-entry table ops, undo-log entries; each distinct kernel "
                                     "a private function"),
    Stage("lower-table-storage", "each entry op (write, read, view, reset) as its table's storage does it (dense)"),
    Stage("assign-state-slots", "each variable's words placed in the state array (the module's oi_table.state_layout)"),
    Stage("lower-undo-log", "each undo-log entry a call of @oi_log"),
    Stage("lower-tables", "named words as loads and stores of the state array; checks as error records and exits"),
    Stage("lower-nests", "linalg lowered to scf.for loops over memref loads and stores"),
    LLVM,
)

#: `device="cuda"`: the cpu's stages with each op kept a kernel call whose nest becomes a call of the
#: host launching the op's GPU kernels (`passes/launch_op_kernels.py`); the control plane is the same
CUDA_STEP_STAGES: tuple[Stage, ...] = (
    STEP_STAGES[0],
    Stage("lower-ops{device=cuda}", "each op an oi.kernel (its loop nest), marked with its registry op and settings "
                                    "(oi.gpu_op) for the GPU"),
    *STEP_STAGES[2:6],
    Stage("place-buffers", "each variable whose data the host only hands to kernels and copies marked device in "
                           "the layout; each copy that may touch the device a call of @oi_copy_* (an oi.copy op)"),
    STEP_STAGES[6],
    Stage("launch-op-kernels", "each op kernel's nest replaced by a call of the host (@oi_launch_*) that launches "
                               "the op's GPU kernels; the module's oi.gpu_launches says which"),
    *STEP_STAGES[7:],
)

NEST_STAGES: tuple[Stage, ...] = (
    Stage("tile", "the schedule's loops (split, reorder) as scf.for"),
    Stage("cache", "Accera-style caches: buffers, fills and write-backs at their loops"),
    Stage("double-buffer", "double-buffered fills: prefetch into a temporary, swap, peeled last iteration"),
    Stage("lower-nests", "unrolled loops and linalg lowered to scf.for over memref loads and stores"),
    LLVM,
)

#: a GPU plan's: the nest mapped to the grid and outlined as a kernel, then PTX
GPU_NEST_STAGES: tuple[Stage, ...] = (
    *NEST_STAGES[:3],
    Stage("map-gpu", "bound loops as block/thread ids, shared and private caches, barriers; a gpu.module kernel"),
    NEST_STAGES[3],
    PTX,
)

#: (stage, module) after each stage, for `--dump-stages` and timers
AfterStage = Callable[[Stage, object], None]


def run_stages(stages, module, *, ctx=None, first=None, before: Callable[[Stage], None] | None = None,
               after: AfterStage | None = None, target=None) -> str | None:
    """Run `stages` on `module` in place, in order; `first` replaces the first stage's default pass
    (its options: `BindSizes(...)`). Returns the LLVM IR (or PTX, for `target`, an `NvptxTarget`)
    text when the list ends with the backend's stage."""
    from oi_compiler.gc_pause import paused_collection

    with paused_collection():
        return _run_stages(stages, module, ctx=ctx, first=first, before=before, after=after, target=target)


def _run_stages(stages, module, *, ctx, first, before, after, target) -> str | None:
    from oi_compiler.boundary import stage as internal_errors
    from oi_compiler.ir_context import make_context
    from oi_compiler.passes import pass_factories

    ctx = ctx or make_context()
    factories = pass_factories()
    for n, stage in enumerate(stages):
        if before is not None:
            before(stage)
        with internal_errors(stage.name):  # what escapes a stage, if not an OiError, is an InternalError naming it
            if stage is LLVM or stage is PTX:
                text = _backend_text(stage, module, target)
            elif n == 0 and first is not None:
                first.apply(ctx, module)
            else:
                _stage_pass(stage, factories).apply(ctx, module)
        if stage is LLVM or stage is PTX:
            if after is not None:
                after(stage, text)
            return text
        if after is not None:
            after(stage, module)
    return None


def _stage_pass(stage: Stage, factories):
    """The pass a stage names, with the options it writes as a pipeline does (`lower-ops{device=cuda}`)."""
    if "{" not in stage.name:
        return factories[stage.name]()()
    from oi_compiler.passes import parse_pipeline

    (configured,) = parse_pipeline(stage.name).passes
    return configured


def _backend_text(stage: Stage, module, target) -> str:
    if stage is PTX:
        from oi_compiler.backend.ptx import emit_ptx

        return emit_ptx(module, target)
    from oi_compiler.backend.llvm import llvm_ir_text

    return llvm_ir_text(module)


def lower_step(module, sizevars: Mapping[str, int], *, after: AfterStage | None = None,
               attributes: Mapping[str, str] | None = None, device: str = "cpu"):
    """A copy of `module` (one graph) through `STEP_STAGES` (`CUDA_STEP_STAGES` for `device="cuda"`)
    up to the backend, with `sizevars` bound.

    Error sites name statements as written: each statement's description is kept before its
    sizes are bound. The state layout is the module's `oi_table.state_layout` attribute.
    `attributes`: the model's metadata strings that op settings name (`approximate = mode`), put in
    their place as the reference resolves them (a metadata string first, then a variable)."""
    from xdsl.dialects.builtin import DictionaryAttr, StringAttr, SymbolRefAttr

    from oi_compiler.dialects.oi import STATEMENT_OPS, NamedOp, describe
    from oi_compiler.passes.bind_sizes import BindSizes
    from oi_compiler.lowering.error_sites import NODE_ATTR

    module = module.clone()
    for op in module.walk():
        if isinstance(op, STATEMENT_OPS):
            op.attributes[NODE_ATTR] = StringAttr(describe(op))
        if attributes and isinstance(op, NamedOp):
            settings = {key: StringAttr(attributes[value.root_reference.data])
                        if isinstance(value, SymbolRefAttr) and value.root_reference.data in attributes else value
                        for key, value in op.settings.data.items()}  # fmt: skip
            op.settings = DictionaryAttr(settings)
    stages = CUDA_STEP_STAGES if device == "cuda" else STEP_STAGES
    run_stages(stages[:-1], module, first=BindSizes(tuple(sorted(sizevars.items()))), after=after)
    return module


def bound_analysis(module, sizevars: Mapping[str, int]):
    """The step plan (state layout) of `module`'s graph with `sizevars` bound, without lowering."""
    from oi_compiler.dialects.oi import GraphOp
    from oi_compiler.ir_context import make_context
    from oi_compiler.lowering.analysis import analyze_step
    from oi_compiler.passes.bind_sizes import BindSizes

    module = module.clone()
    BindSizes(tuple(sorted(sizevars.items()))).apply(make_context(), module)
    return analyze_step(next(op for op in module.walk() if isinstance(op, GraphOp)))
