"""The xDSL context oi_compiler parses `.mlir` in, and source locations of ops."""

from __future__ import annotations

from oi_compiler.errors import SourceLoc


def make_context():
    """A fresh xDSL context with the `oi` dialect and xDSL's own dialects (lazily loaded)."""
    from xdsl.context import Context
    from xdsl.dialects import get_all_dialects

    from oi_compiler.dialects.oi import OI

    ctx = Context()
    for name, factory in get_all_dialects().items():
        if name != "oi":
            ctx.register_dialect(name, factory)
    ctx.load_dialect(OI)
    return ctx


def source_loc(op) -> SourceLoc | None:
    """The file:line:col an op came from, if the front end or parser recorded one."""
    from xdsl.dialects.builtin import FileLineColLoc

    loc = getattr(op, "location", None)
    if isinstance(loc, FileLineColLoc):
        return SourceLoc(loc.filename.data, loc.line.data, loc.column.data)
    return None


def nearest_loc(op) -> SourceLoc | None:
    """The location of `op` or, failing that, of its closest located ancestor."""
    while op is not None:
        if (loc := source_loc(op)) is not None:
            return loc
        op = op.parent_op()
    return None

