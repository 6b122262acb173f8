"""Reading MLIR text (`.mlir` files) with the `oi` dialect, keeping each op's line:col."""

from __future__ import annotations

from oi_compiler.errors import ParseError, SourceLoc


def parse_mlir_module(text: str, filename: str = "<string>", ctx=None):
    """Parse MLIR text into a `ModuleOp`; an op without `loc(...)` gets its file:line:col."""
    from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, StringAttr, UnknownLoc
    from xdsl.parser import Parser
    from xdsl.utils.exceptions import ParseError as XdslParseError
    from xdsl.utils.exceptions import VerifyException

    from oi_compiler.ir_context import make_context

    class LocatingParser(Parser):
        def parse_operation(self):
            start = self._current_token.span
            op = super().parse_operation()
            if isinstance(op.location, UnknownLoc):
                line, col = _line_col(text, start.start)
                op.location = FileLineColLoc(StringAttr(filename), IntAttr(line), IntAttr(col))
            return op

    if not text.strip():  # an empty input is an empty module, as with mlir-opt
        return ModuleOp([])
    parser = LocatingParser(ctx or make_context(), text, filename)
    try:
        module = parser.parse_module()
    except XdslParseError as e:
        line, col = _line_col(text, e.span.start)
        raise ParseError(e.msg, SourceLoc(filename, line, col)) from None
    except VerifyException as e:  # an attribute rejected its parameters while being built
        line, col = _line_col(text, parser._current_token.span.start)
        raise ParseError(str(e), SourceLoc(filename, line, col)) from None
    if not isinstance(module, ModuleOp):
        raise ParseError("expected a builtin.module", SourceLoc(filename, 1, 1))
    return module


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
