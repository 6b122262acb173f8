"""The graph verifier: OpenInfer's validation rules, checked before anything runs.

`verify_graph` mirrors upstream's `Simulator::new` validation
(`runtime/validation.rs` and `blocks.rs`): declarations first, then each block in
source order, its statements in order, loop bodies with their index in scope.
It raises the first broken rule as a `VerifyError` carrying upstream's message
(without upstream's `block B node N:` context line) and the statement's
`file:line:col`. docs/verify_rules.md lists every rule.

The rules live beside the upstream files they mirror: `vars` (declarations,
temporaries), `cache` (cache ops), `ops` (ops, settings, transfer) and
`control_flow` (branch, loop, yield/await); `scope.GraphScope` is what they share.
"""

from __future__ import annotations

from collections.abc import Mapping

from oi_compiler.dialects.oi import (
    AssignOp,
    AwaitOp,
    BranchOp,
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
    GraphOp,
    LoopOp,
    NamedOp,
    TransferOp,
    YieldOp,
)
from oi_compiler.verify import cache, control_flow, ops, vars
from oi_compiler.verify.scope import GraphScope, fail

__all__ = ["GraphScope", "verify_graph"]

_STATEMENT_RULES = {
    AssignOp: vars.verify_assign,
    NamedOp: ops.verify_op,
    TransferOp: ops.verify_transfer,
    CacheReadOp: cache.verify_cache_read,
    CacheWriteOp: cache.verify_cache_write,
    CacheIncrementOp: cache.verify_cache_step,
    CacheDecrementOp: cache.verify_cache_step,
    CacheResetOp: cache.verify_cache_reset,
    CacheAppendOp: cache.verify_cache_append,
    CacheSaveOp: cache.verify_cache_save,
    CacheLoadOp: cache.verify_cache_load,
    CacheForkOp: cache.verify_cache_fork,
    CachePopOp: cache.verify_cache_pop,
    CacheResetWhereOp: cache.verify_cache_reset_where,
    BranchOp: control_flow.verify_branch,
    YieldOp: control_flow.verify_yield,
    AwaitOp: control_flow.verify_await,
}


def verify_graph(graph: GraphOp, *, sizevars: Mapping[str, int] | None = None) -> None:
    """Raise `VerifyError` for the first rule `graph` breaks; return None when it breaks none.

    With `sizevars` (size name -> value) dims must resolve and shapes compare by
    value; without them a size name is taken as a size variable the model will give.
    """
    scope = GraphScope(graph, sizevars)
    for var in graph.vars:
        vars.verify_declaration(scope, var)
    if not graph.blocks:
        raise fail(graph, "graph has no blocks")
    seen: set[str] = set()
    for block in graph.blocks:
        if block.block_name in seen:
            raise fail(block, f"duplicate block {block.block_name}")
        seen.add(block.block_name)
        _verify_statements(scope, block.body.block.ops)
        control_flow.verify_yield_rules(scope, block)


def _verify_statements(scope: GraphScope, statements) -> None:
    for op in statements:
        if isinstance(op, LoopOp):
            control_flow.verify_loop_depth(scope, op)
            control_flow.verify_loop_bounds(scope, op)
            with scope.loop(op.index.data):
                _verify_statements(scope, op.body.block.ops)
        elif (rule := _STATEMENT_RULES.get(type(op))) is not None:
            rule(scope, op)
