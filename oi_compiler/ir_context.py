"""The xDSL context oi_compiler parses `.mlir` in, and source locations of ops."""

from __future__ import annotations

from oi_compiler.errors import SourceLoc


def make_context():
    """A fresh xDSL context with the `oi` and `oi_table` dialects and xDSL's own dialects (lazily loaded)."""
    from xdsl.context import Context
    from xdsl.dialects import get_all_dialects

    from oi_compiler.dialects.oi import OI
    from oi_compiler.dialects.oi_table import OI_TABLE

    ctx = Context()
    for name, factory in get_all_dialects().items():
        if name not in ("oi", "oi_table"):
            ctx.register_dialect(name, factory)
    ctx.load_dialect(OI)
    ctx.load_dialect(OI_TABLE)
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


def nearest_location(op):
    """The `FileLineColLoc` of `op` or of its closest located ancestor; `UnknownLoc` if none."""
    from xdsl.dialects.builtin import FileLineColLoc, UnknownLoc

    while op is not None:
        loc = getattr(op, "location", None)
        if isinstance(loc, FileLineColLoc):
            return loc
        op = op.parent_op()
    return UnknownLoc()


def fresh_name(stem: str, taken: set[str], separator: str = "_", first: int | None = None) -> str:
    """The first of `stem`, `stem<separator>1`, `stem<separator>2`... not in `taken` (with `first`:
    from `stem<separator><first>`, never `stem` itself), added to `taken`."""
    n = 0 if first is None else first
    name = stem if first is None else f"{stem}{separator}{n}"
    while name in taken:
        n += 1
        name = f"{stem}{separator}{n}"
    taken.add(name)
    return name
