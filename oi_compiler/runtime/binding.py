"""A graph bound to a model: sizes resolved, declarations typed, blocks classified.

`bind_graph` does what upstream's `Simulator::new` does before anything runs: it
resolves every declared dim from the model's size variables (plus any the caller
gives), runs the graph verifier with those sizes, and checks the model-backed
rules (`model variable not found`, `model dtype mismatch`, `model shape
mismatch`). A `constant` the model does not back (no tensor, no metadata, no
`@init`) is an error too, unless the caller opts in to zeros with
`zero_constants=True`: a forgotten `--model` must not run on zero weights. The
result, `BoundGraph`, is what executors (the numpy reference interpreter, and
later the compiled ones) run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from xdsl.dialects.builtin import StringAttr

from oi_compiler.dialects.oi import BlockOp, BranchOp, GraphOp, VarOp
from oi_compiler.dialects.oi_attrs import TensorType
from oi_compiler.errors import ExecutionError, ModelError, OiError, VerifyError
from oi_compiler.size_vars import checked_sizevars
from oi_compiler.graph import Graph
from oi_compiler.ir_context import source_loc
from oi_compiler.ops.registry import dtype_debug_name
from oi_compiler.models.model import Model
from oi_compiler.runtime.tables import Declaration
from oi_compiler.runtime.trace import node_numbers
from oi_compiler.verify.scope import shape_text


@dataclass
class BoundGraph:
    """A verified graph with every size known."""

    graph: Graph
    model: Model
    sizevars: dict[str, int]
    decls: dict[str, VarOp]
    shapes: dict[str, tuple[int, ...]]  # each declared variable's resolved shape
    blocks: dict[str, BlockOp]
    entry: str
    branch_targets: set[str]
    async_blocks: list[str]  # neither the entry nor a branch target, by name (run by `yield`)
    numbers: dict[int, tuple[int, str]] = field(repr=False)

    @property
    def op(self) -> GraphOp:
        return self.graph.op

    def shape_of_type(self, var_type: TensorType) -> tuple[int, ...]:
        return resolve_shape(var_type, self.sizevars, "temporary")

    def allocation_refused(self, name: str, error: OiError) -> ExecutionError:
        """`error` (a table too large to allocate when the executor is made) naming the variable, at
        its declaration."""
        from oi_compiler.ir_context import nearest_loc

        return ExecutionError(f"persistent {name}: {error.message}", nearest_loc(self.decls[name]))

    def declaration(self, name: str) -> Declaration:
        """The persistent variable `name` as the cache store sees it."""
        var = self.decls[name]
        auto_dim = tuple(var.auto_dim_names)
        return Declaration(
            name=name,
            dtype=var.dtype,
            shape=self.shapes[name],
            init=var.init_value,
            indices=tuple(i for i in var.index_names if i not in auto_dim),
            auto_dim=auto_dim,
            fixed=var.fixed_sizes or None,
        )

    def persistent_names(self) -> list[str]:
        return [n for n, v in self.decls.items() if v.memory == "persistent"]


def resolve_shape(var_type: TensorType, sizevars: Mapping[str, int], name: str) -> tuple[int, ...]:
    shape = []
    for dim in var_type.dims:
        value = dim.size(sizevars)
        if value is None:
            unknown = next(f.data for f in dim.factors if isinstance(f, StringAttr) and f.data not in sizevars)
            raise VerifyError(f"invalid dims for {name}: unknown sizevar {unknown}")
        shape.append(value)
    return tuple(shape)


def bind_graph(
    graph: Graph, model: Model, sizevars: Mapping[str, int] | None = None, *, zero_constants: bool = False
) -> BoundGraph:
    """Resolve, verify and check `graph` against `model`; raises VerifyError or ModelError.

    `zero_constants=True` lets constants the model lacks read as zeros (else they are errors).
    """
    sizes = {**model.sizevars, **checked_sizevars(sizevars)}
    op = graph.op
    graph.verify(sizevars=sizes)
    decls = {v.var_name: v for v in op.vars}
    shapes = {}
    for name, var in decls.items():
        try:
            shapes[name] = resolve_shape(var.var_type, sizes, name)
        except VerifyError as e:
            raise VerifyError(e.message, source_loc(var)) from None
    for var in decls.values():
        _check_model_binding(var, shapes[var.var_name], model, zero_constants)
    blocks = {b.block_name: b for b in op.blocks}
    if not blocks:
        raise VerifyError("graph has no blocks", subject=graph.filename)
    entry = "entry" if "entry" in blocks else next(iter(blocks))
    targets = _branch_targets(op)
    return BoundGraph(
        graph=graph,
        model=model,
        sizevars=sizes,
        decls=decls,
        shapes=shapes,
        blocks=blocks,
        entry=entry,
        branch_targets=targets,
        async_blocks=sorted(b for b in blocks if b != entry and b not in targets),
        numbers=node_numbers(op),
    )


def _branch_targets(graph: GraphOp) -> set[str]:
    targets: set[str] = set()
    for op in graph.walk():
        if isinstance(op, BranchOp):
            targets.update(n for n in (op.then_block.data, op.else_block.data if op.else_block else None) if n)
    return targets


def _check_model_binding(var: VarOp, shape: tuple[int, ...], model: Model, zero_constants: bool) -> None:
    """A model tensor backing `var` (its `@ref`, or its own name) must match its declaration,
    and a constant must have a value: from the model, or its `@init`, or zeros when opted in."""
    if var.memory == "persistent" or var.index_names:
        return
    key = var.ref.data if var.ref is not None else var.var_name
    if not model.has_tensor(key):
        if var.ref is not None:
            raise ModelError(f"model variable not found: {key}", source_loc(var))
        if var.memory == "constant" and var.init_value is None and key not in model.metadata and not zero_constants:
            raise ModelError(
                f"model variable not found: {key} (constant {var.var_name} has no model tensor; give a model "
                "that holds it, or read it as zeros with zero_constants=True / oi-run --zero-constants)",
                source_loc(var),
            )
        return
    check_model_tensor(model, key, var.var_name, var.dtype, shape, source_loc(var))


def check_model_tensor(model: Model, key: str, subject: str, dtype: str, shape: tuple[int, ...], loc=None) -> None:
    """Model tensor `key` must have the declared dtype and shape (one element fits any one-element shape)."""
    model_dtype, model_shape = model.tensor_dtype(key), tuple(model.tensor_shape(key))
    if model_dtype != dtype:
        raise ModelError(
            f"model dtype mismatch for {subject}: model {dtype_debug_name(model_dtype)}, graph {dtype_debug_name(dtype)}",
            loc,
        )
    if model_shape != shape and not (math.prod(model_shape) == 1 == math.prod(shape)):
        raise ModelError(
            f"model shape mismatch for {subject}: model {shape_text(model_shape)}, graph {shape_text(shape)}", loc
        )

