"""What the verifier knows about a graph while it walks it (upstream `runtime/validation/context.rs`).

`GraphScope` plays the part of upstream's `ValidationContext`: the declared
variables by name, the temporaries `assign`ed so far (graph-wide, in the order
the verifier meets them), the blocks by name, the loop indices in scope, and
the size variables, when the caller knows them.

Without size variables a dim named by a size variable has no value: shapes are
then lists of ints and dim texts, two texts are equal only when spelled the
same, and a shape counts as scalar only when every dim is a literal 1 (a named
dim is assumed not to be 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from xdsl.dialects.builtin import IntAttr

from oi_compiler.dialects.oi import BlockOp, GraphOp, VarOp
from oi_compiler.dialects.oi_attrs import DimAttr, TensorType
from oi_compiler.errors import VerifyError
from oi_compiler.ir_context import nearest_loc

Dim = int | str  # a resolved size, or the dim's text when it cannot be resolved


def fail(op, message: str) -> VerifyError:
    """The error for a broken rule, located at `op` (or its nearest located ancestor)."""
    return VerifyError(message, nearest_loc(op))


def memory_debug_name(memory: str) -> str:
    """A memory kind as Rust's `{:?}` prints upstream's `MemoryKind` (`Persistent`)."""
    return memory.capitalize()


def shape_text(shape: list[Dim]) -> str:
    """A shape as Rust's `{:?}` prints a `Vec<usize>` (`[2, 4]`; unresolved dims by name)."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def fixed_size_message(table: str, dim: int, limit: int, detail: str) -> str:
    """A selection past a `@fixed` size: upstream's `cache table {name} index {dim} exceeds fixed
    size {max}` (`dim`: the index's position), then what overflowed, `(index value k)` or
    `(slice end e)`. The verifier, the reference executor and the compiled step all say it so."""
    return f"cache table {table} index {dim} exceeds fixed size {limit} ({detail})"


class GraphScope:
    """Declared variables, temporaries, blocks, loop indices and size variables of one graph."""

    def __init__(self, graph: GraphOp, sizevars: Mapping[str, int] | None = None):
        self.graph = graph
        self.sizevars = dict(sizevars) if sizevars is not None else None
        self.decls: dict[str, VarOp] = {}
        self.temps: dict[str, TensorType] = {}
        self.blocks: dict[str, BlockOp] = {}
        for block in graph.blocks:
            self.blocks.setdefault(block.block_name, block)
        names = [b.block_name for b in graph.blocks]
        self.entry = "entry" if "entry" in names else (names[0] if names else None)
        self.loop_indices: list[str] = []

    # --- variables ------------------------------------------------------------------

    def decl(self, name: str) -> VarOp | None:
        return self.decls.get(name)

    def var_type(self, name: str) -> TensorType | None:
        """The type of a declared variable or a temporary assigned so far."""
        if (decl := self.decls.get(name)) is not None:
            return decl.var_type
        return self.temps.get(name)

    def has_var(self, name: str) -> bool:
        return self.var_type(name) is not None

    def memory(self, name: str) -> str | None:
        decl = self.decls.get(name)
        return decl.memory if decl is not None else None

    def shape(self, name: str) -> list[Dim]:
        var_type = self.var_type(name)
        return [] if var_type is None else [self.dim_value(d) for d in var_type.dims]

    def is_scalar(self, name: str) -> bool:
        """Upstream's `numel(shape) == 1`; an unresolved dim counts as not 1."""
        shape = self.shape(name)
        return all(isinstance(d, int) for d in shape) and math.prod(shape) == 1

    # --- sizes ------------------------------------------------------------------------

    def dim_value(self, dim: DimAttr) -> Dim:
        value = dim.size(self.sizevars or {})
        return dim.text if value is None else value

    def unknown_size(self, var_type: TensorType) -> str | None:
        """The first size name in `var_type`'s dims that the known size variables lack."""
        if self.sizevars is None:
            return None
        for dim in var_type.dims:
            for factor in dim.factors:
                if not isinstance(factor, IntAttr) and factor.data not in self.sizevars:
                    return factor.data
        return None

    def oversized(self, var_type: TensorType) -> str | None:
        """The shape, as text, when a dim or the element count it resolves to is 2**63 or more (no
        buffer can hold it: numpy's and the compiled code's indices are 64-bit); else None."""
        shape = [dim.size(self.sizevars or {}) for dim in var_type.dims]
        known = [n for n in shape if n is not None]
        if any(n >= 2**63 for n in known) or math.prod(known) >= 2**63:
            return shape_text([n if n is not None else d.text for n, d in zip(shape, var_type.dims)])
        return None

    def may_be_sizevar(self, name: str) -> bool:
        """Whether `name` is (with size variables) or could be (without) a size variable."""
        return name in self.sizevars if self.sizevars is not None else True

    def is_sizevar(self, name: str) -> bool:
        return self.sizevars is not None and name in self.sizevars

    # --- loops ------------------------------------------------------------------------

    @contextmanager
    def loop(self, index: str) -> Iterator[None]:
        """Puts a loop's index in scope for the statements of its body."""
        self.loop_indices.append(index)
        try:
            yield
        finally:
            self.loop_indices.pop()
