"""`branch`, `loop` bounds, `yield` and `await` (upstream `runtime/validation/control_flow.rs`).

A block other than the entry (the block named `entry`, else the first block)
runs as an async block when the entry yields: its last top-level `yield` must
be its final statement, and it must yield every variable it awaits.
"""

from __future__ import annotations

from xdsl.dialects.builtin import IntAttr

from oi_compiler.dialects.oi import MAX_LOOP_DEPTH, AwaitOp, BlockOp, BranchOp, LoopOp, YieldOp
from oi_compiler.verify.scope import GraphScope, fail


def _known_scalar_error(scope: GraphScope, name: str) -> str | None:
    """Upstream `ensure_known_scalar`: the error text, or None when `name` is a known scalar."""
    if not scope.has_var(name):
        return f"unknown variable {name}"
    if not scope.is_scalar(name):
        return f"{name} must be scalar"
    return None


def verify_branch(scope: GraphScope, op: BranchOp) -> None:
    for target in (op.then_block, op.else_block):
        if target is not None and target.data not in scope.blocks:
            raise fail(op, f"branch target block not found: {target.data}")
    if op.cond is not None:
        if op.else_block is None:
            raise fail(op, f"branch {op.cond.data} requires else block")
        if (error := _known_scalar_error(scope, op.cond.data)) is not None:
            raise fail(op, error)


def verify_loop_depth(scope: GraphScope, op: LoopOp) -> None:
    """A loop inside `MAX_LOOP_DEPTH` enclosing loops is refused, at that loop."""
    if len(scope.loop_indices) >= MAX_LOOP_DEPTH:
        raise fail(op, f"loops nest too deeply: more than {MAX_LOOP_DEPTH} levels")


def verify_loop_bounds(scope: GraphScope, op: LoopOp) -> None:
    """Each bound is an int literal, a size variable, or a declared scalar variable."""
    for label, bound in (("start", op.start), ("end", op.end)):
        if isinstance(bound, IntAttr):
            if bound.data < 0:  # the DSL cannot spell one; IR text can
                raise fail(op, f"loop {label} bound {bound.data} is invalid: it is negative")
            if bound.data >= 2**63:  # the compiled loop counts in i64: it would wrap
                raise fail(op, f"loop {label} bound {bound.data} is out of range (at most 2**63 - 1)")
            continue
        if scope.is_sizevar(bound.data):
            continue
        name = bound.data
        if scope.sizevars is None and not scope.has_var(name) and name not in scope.loop_indices:
            continue  # may be a size variable, known only when the model is
        if (error := _known_scalar_error(scope, name)) is not None:
            raise fail(op, f"loop {label} bound {name} is invalid: {error}")


def verify_yield(scope: GraphScope, op: YieldOp) -> None:
    for name in op.var_names:
        if not scope.has_var(name):
            raise fail(op, f"unknown variable: {name}")


def verify_await(scope: GraphScope, op: AwaitOp) -> None:
    for name in op.var_names:
        if not scope.has_var(name):
            raise fail(op, f"unknown variable: {name}")
        if scope.memory(name) == "constant":
            raise fail(op, f"await cannot target constant {name}")


def verify_yield_rules(scope: GraphScope, block: BlockOp) -> None:
    """Upstream `validate_yield_rules`, run once a block's statements are checked."""
    if block.block_name == scope.entry:
        return
    top = list(block.body.block.ops)
    yields = [op for op in top if isinstance(op, YieldOp)]
    if yields and yields[-1] is not top[-1]:
        raise fail(yields[-1], f"yield in block {block.block_name} must be the final node")
    awaited: dict[str, AwaitOp] = {}
    yielded: set[str] = set()
    for op in block.walk():
        if isinstance(op, AwaitOp):
            for name in op.var_names:
                awaited.setdefault(name, op)
        elif isinstance(op, YieldOp):
            yielded.update(op.var_names)
    if not awaited:
        return
    if not yielded:
        names = ", ".join(f'"{n}"' for n in awaited)
        raise fail(next(iter(awaited.values())), f"block {block.block_name} awaits [{names}] but never yields them")
    for name, op in awaited.items():
        if name not in yielded:
            raise fail(op, f"block {block.block_name} awaits {name} but does not yield it")
