"""The graph's statements to the table level: one xDSL rewrite pattern per statement kind.

`--convert-graph-to-tables` works in two phases (lowering/step_emitter.py):

1. **structure**: the walk over the entry block emits the step's control flow (loops as
   `scf.for`, branches as `scf.if` with the target block inlined, `await` running the async
   blocks, `return` and `yield` ending their block) and puts a copy of every other statement where
   it runs (a block that runs at several places gets a copy at each), recording what the
   statement sees there (`Placement`: loop indices, which variables, its view scope);
2. **statements**: a `PatternRewriteWalker` applies one pattern per statement kind
   (`STATEMENT_PATTERNS`): each replaces its statement by the table level's ops (checks with
   typed error sites, entry ops, journal entries, kernel calls), emitted just before it.

A statement's copy carries what its error sites name: its description as written (`oi.node`)
and its block (`oi.block`); both go with the copy when its pattern erases it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriter, RewritePattern

from oi_compiler.dialects.oi import (
    AssignOp,
    BarrierOp,
    CacheAppendOp,
    CacheDecrementOp,
    CacheForkOp,
    CacheLoadOp,
    CachePopOp,
    CacheIncrementOp,
    CacheReadOp,
    CacheResetOp,
    CacheResetWhereOp,
    CacheSaveOp,
    CacheWriteOp,
    DepOp,
    TransferOp,
    YieldOp,
)
from oi_compiler.dialects.oi_lowered import KernelOp
from oi_compiler.lowering import quick_ops


@dataclass
class Placement:
    """What a statement placed in the step sees there."""

    loop_vars: dict[str, SSAValue]  # loop index name -> the enclosing scf.for's induction variable
    scope: tuple[int, ...]  # its view scope: views read in a scope that prefixes it are visible
    vars: dict  # variable name -> VarLayout (an async block's copies over the entry's)
    store_vars: dict | None  # in an async block: the shared state its cache ops use
    in_entry: bool  # one of the entry's own statements (its loops too)
    written: dict[str, int] = field(default_factory=dict)  # in an async block: its "wrote x" words


class StatementPattern(RewritePattern):
    """Lowers the placed statements of one kind through the emitter's method `method`."""

    kind: type[Operation]
    method: str

    def __init__(self, emitter):
        self.emitter = emitter

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if type(op) is not self.kind or op not in self.emitter.placed:
            return
        with self.emitter.placed_at(op):
            getattr(self.emitter, self.method)(op)
        rewriter.erase(op)


def _pattern(kind: type[Operation], method: str) -> type[StatementPattern]:
    name = f"Lower{kind.__name__.removesuffix('Op')}"
    return type(name, (StatementPattern,), {"kind": kind, "method": method, "__doc__": f"`{kind.name}` via `{method}`"})


#: each leaf statement kind's pattern (loops, branches, `await`, `return` and an async block's
#: `yield` are structure: the walk emits them)
STATEMENT_PATTERNS: tuple[type[StatementPattern], ...] = (
    _pattern(KernelOp, "kernel"),
    _pattern(CacheWriteOp, "cache_write"),
    _pattern(CacheReadOp, "cache_read"),
    _pattern(CacheIncrementOp, "cache_step"),
    _pattern(CacheDecrementOp, "cache_step"),
    _pattern(CacheResetOp, "cache_reset"),
    _pattern(CacheAppendOp, "cache_append"),
    _pattern(CacheSaveOp, "cache_save"),
    _pattern(CacheLoadOp, "cache_read"),
    _pattern(CacheForkOp, "cache_fork"),
    _pattern(CachePopOp, "cache_pop"),
    _pattern(CacheResetWhereOp, "cache_reset_where"),
    _pattern(AssignOp, "assign"),
    _pattern(TransferOp, "transfer"),
    _pattern(YieldOp, "yield_"),
    _pattern(BarrierOp, "nothing"),
    _pattern(DepOp, "nothing"),
)

PLACED_KINDS = tuple(p.kind for p in STATEMENT_PATTERNS)


def lower_placed_statements(emitter) -> None:
    """Apply the statement patterns to every placed statement, in program order (the order the
    walk placed them: a view a statement reads must exist when a later one uses it). Only the
    placed statements are visited: a walker would also fold away the step's constants not used yet."""
    patterns = GreedyRewritePatternApplier([cls(emitter) for cls in STATEMENT_PATTERNS])
    quick_ops.rewrite_each(list(emitter.placed), patterns)
