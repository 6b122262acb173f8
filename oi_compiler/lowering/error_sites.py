"""Error sites: what the host raises when a check of the step fails (`#oi_table.site<...>`)."""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr

from oi_compiler.dialects.oi import BlockOp, describe
from oi_compiler.dialects.oi_table import ErrorSiteAttr
from oi_compiler.ir_context import nearest_location

NODE_ATTR = "oi.node"  # a statement's description before --bind-sizes (what the reference prints)


def site_attr(error_class: str, template: str, op) -> ErrorSiteAttr:
    """The typed error site of a check: its class, message template and statement."""
    node = ""
    if op is not None:  # the description as written (sizes unbound), when the pipeline kept it
        kept = op.attributes.get(NODE_ATTR)
        node = kept.data if isinstance(kept, StringAttr) else describe(op)
    block = op.parent_op() if op is not None else None
    while block is not None and not isinstance(block, BlockOp):
        block = block.parent_op()
    name = block.block_name if block is not None else ""
    return ErrorSiteAttr(error_class, template, nearest_location(op), node, name)
