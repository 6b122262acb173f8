"""Error sites: what the host raises when a check of the step fails (`#oi_table.site<...>`)."""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr

from oi_compiler.dialects.oi import BlockOp, describe
from oi_compiler.dialects.oi_table import ErrorSiteAttr
from oi_compiler.ir_context import nearest_location

NODE_ATTR = "oi.node"  # a statement's description before --bind-sizes (what the reference prints)
BLOCK_ATTR = "oi.block"  # the block a statement placed in the step was written in


def site_node(op) -> str:
    """The statement's description as written (sizes unbound), when the pipeline kept it."""
    kept = op.attributes.get(NODE_ATTR)
    return kept.data if isinstance(kept, StringAttr) else describe(op)


def site_block(op) -> str:
    """The name of the block the statement is written in."""
    kept = op.attributes.get(BLOCK_ATTR)
    if isinstance(kept, StringAttr):
        return kept.data
    block = op.parent_op()
    while block is not None and not isinstance(block, BlockOp):
        block = block.parent_op()
    return block.block_name if block is not None else ""


def site_attr(error_class: str, template: str, op) -> ErrorSiteAttr:
    """The typed error site of a check: its class, message template and statement."""
    if op is None:
        return ErrorSiteAttr(error_class, template, nearest_location(op), "", "")
    return ErrorSiteAttr(error_class, template, nearest_location(op), site_node(op), site_block(op))
