"""The public API's error boundary: no exception but an `OiError` leaves oi_compiler.

Each entry point (`parse_graph`, `Graph.load`, `Simulator(...)`, `make_executor()`, `step()`,
`fetch`/`state`/`save_state`/`load_state`, `plan.build()`, the command-line tools) runs its
stages inside `stage("lower-ops")`-style boundaries; an exception outside the family that
escapes one (a bug) becomes an `InternalError` naming the stage and, when one is known, the
statement's `file:line:col`, with the original as `__cause__`. `OiError`s, `KeyboardInterrupt`
and `SystemExit` pass through unchanged. The hot path (`exe.step()`) uses a bare try/except
(free in CPython 3.11+ until something raises), never this context manager.
"""

from __future__ import annotations

from oi_compiler.errors import InternalError, OiError, SourceLoc, exception_summary


def internal_error(e: BaseException, stage: str, loc: SourceLoc | None = None) -> OiError:
    """`e` as an `InternalError` of `stage` (an `OiError` comes back as it is). Without `loc`,
    the statement is looked for in the traceback: the innermost frame handling a located op."""
    if isinstance(e, OiError):
        return e
    if loc is None:
        loc = statement_loc(e.__traceback__)
    error = InternalError(f"{stage}: {type(e).__name__}: {exception_summary(e)}", loc, stage=stage)
    error.__cause__ = e
    return error


class stage:  # noqa: N801 - used as `with stage("jit"):`
    """`with stage("jit"): ...` turns what escapes the block, if not an `OiError`, into an
    `InternalError` of that stage (at `loc`, or the statement found in the traceback)."""

    __slots__ = ("name", "loc")

    def __init__(self, name: str, loc: SourceLoc | None = None):
        self.name = name
        self.loc = loc

    def __enter__(self) -> stage:
        return self

    def __exit__(self, kind, e, tb) -> bool:
        if e is None or isinstance(e, OiError) or not isinstance(e, Exception):
            return False  # OiErrors, KeyboardInterrupt, SystemExit, GeneratorExit go on as they are
        raise internal_error(e, self.name, self.loc) from e


def statement_loc(tb) -> SourceLoc | None:
    """The source location of the op the innermost frame of `tb` that holds a located op was
    handling (an op's own location, else its closest located ancestor below the graph)."""
    try:
        from xdsl.dialects.builtin import ModuleOp
        from xdsl.ir import Operation

        from oi_compiler.dialects.oi import GraphOp
        from oi_compiler.ir_context import source_loc
    except Exception:  # noqa: BLE001 - never let the error path raise on its own
        return None
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in _frame_values(frame):
            op = value
            while isinstance(op, Operation) and not isinstance(op, GraphOp | ModuleOp):
                if (loc := source_loc(op)) is not None:
                    return loc
                op = op.parent_op()
    return None


def _frame_values(frame):
    """The frame's `op` first, then its other locals."""
    try:
        values = dict(frame.f_locals)
    except Exception:  # noqa: BLE001
        return []
    first = [values.pop(name) for name in ("op", "node", "statement") if name in values]
    return first + list(values.values())


__all__ = ["internal_error", "stage", "statement_loc"]
