"""Reading MLIR text (`.mlir` files) with the `oi` dialect, keeping each op's line:col.

Four things xDSL's parser does not do for us are done here: every failure of
the text becomes a `ParseError` at file:line:col (xDSL's lexer can also raise
`ValueError`, and attributes raise `VerifyException` while being built); an
unterminated string is found by a linear scan first (xDSL's string regex
backtracks exponentially on one); sizes are bounded as they are read (integer
widths, dims, dense literals' element counts: a 46-byte `i64000000000` would
otherwise take gigabytes); and strings xDSL reads back as bytes (any escaped
non-ASCII text, as its generic printer writes it) are decoded as UTF-8 (the
`oi` dialect has no byte strings).
"""

from __future__ import annotations

import math

from oi_compiler.errors import ParseError, SourceLoc, exception_summary

#: The widest integer type (MLIR's `IntegerType::kMaxWidth`).
MAX_INTEGER_WIDTH = 2**24 - 1
#: The largest dimension of a shaped type (MLIR's dims are int64_t).
MAX_DIM = 2**63 - 1
#: The most elements a dense literal (`dense<...> : tensor<...>`) may have: xDSL stores every
#: element, a splat too.
MAX_DENSE_ELEMENTS = 2**24
MAX_DENSE_BITS = MAX_DENSE_ELEMENTS * 64  # a dense literal holds at most 128 MiB


def parse_mlir_module(text: str, filename: str = "<string>", ctx=None):
    """Parse MLIR text into a `ModuleOp`; an op without `loc(...)` gets its file:line:col."""
    from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, StringAttr, UnknownLoc
    from xdsl.parser import Parser
    from xdsl.utils.exceptions import ParseError as XdslParseError
    from xdsl.utils.exceptions import VerifyException
    from xdsl.utils.mlir_lexer import MLIRTokenKind

    from oi_compiler.ir_context import make_context

    class LocatingParser(Parser):
        def parse_operation(self):
            start = self._current_token.span
            op = super().parse_operation()
            if isinstance(op.location, UnknownLoc):
                line, col = _line_col(text, start.start)
                op.location = FileLineColLoc(StringAttr(filename), IntAttr(line), IntAttr(col))
            return op

        # Sizes are bounded before xDSL builds anything from them (it computes an integer type's
        # value range, and expands a splat dense literal to every element).
        def _parse_optional_integer_or_float_type(self):
            token = self._current_token
            match = self._builtin_integer_type_regex.match(token.text) if token.kind == MLIRTokenKind.BARE_IDENT else None
            if match is not None and int(match.group(1)) > MAX_INTEGER_WIDTH:
                self.raise_error(f"integer type {token.text} is wider than {MAX_INTEGER_WIDTH} bits", token.span)
            return super()._parse_optional_integer_or_float_type()

        def parse_shape_dimension(self, allow_dynamic: bool = True) -> int:
            span = self._current_token.span
            dim = super().parse_shape_dimension(allow_dynamic)
            if dim > MAX_DIM:
                self.raise_error(f"dimension {dim} is larger than {MAX_DIM}", span)
            return dim

        def _parse_dense_literal_type(self):
            span = self._current_token.span
            type = super()._parse_dense_literal_type()
            if (count := math.prod(type.get_shape())) > MAX_DENSE_ELEMENTS:
                self.raise_error(f"dense literal of {count} elements (more than {MAX_DENSE_ELEMENTS})", span)
            width = getattr(getattr(type.element_type, "width", None), "data", 64)
            if count * width > MAX_DENSE_BITS:  # wide integers: few elements, yet gigabytes
                self.raise_error(f"dense literal of {count} elements of {width} bits (more than "
                                 f"{MAX_DENSE_BITS // 8} bytes)", span)  # fmt: skip
            return type

    def error_at(offset: int, message: str) -> ParseError:
        return ParseError(message, SourceLoc(filename, *_line_col(text, offset)))

    if not text.strip():  # an empty input is an empty module, as with mlir-opt
        return ModuleOp([])
    if (offset := _unterminated_string(text)) is not None:
        raise error_at(offset, "unterminated string literal")
    parser = None
    try:
        parser = LocatingParser(ctx or make_context(), text, filename)
        module = parser.parse_module()
    except XdslParseError as e:
        raise error_at(e.span.start, e.msg) from None
    except (VerifyException, ValueError) as e:  # an attribute rejected its parameters, or the lexer a character
        offset = parser._current_token.span.start if parser is not None else 0
        raise error_at(offset, exception_summary(e)) from None
    except NotImplementedError as e:  # xDSL cannot hold it (a dense literal of an odd integer width, i95)
        offset = parser._current_token.span.start if parser is not None else 0
        raise error_at(offset, f"not supported: {exception_summary(e)}") from None
    except RecursionError:
        raise error_at(0, "input nests too deeply") from None
    if not isinstance(module, ModuleOp):
        raise error_at(0, "expected a builtin.module")
    for op in module.walk():
        for attrs in (op.properties, op.attributes):
            for key, value in attrs.items():
                attrs[key] = _decode_byte_strings(value)
    return module


def _unterminated_string(text: str) -> int | None:
    """Offset of a `"` whose string literal does not close on its line (MLIR strings are one line)."""
    in_string, start, i, n = False, 0, 0, len(text)
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
            elif c == "\n":
                return start
        elif c == '"':
            in_string, start = True, i
        elif c == "/" and text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
        i += 1
    return start if in_string else None


def _decode_byte_strings(attr):
    from xdsl.dialects.builtin import ArrayAttr, BytesAttr, DictionaryAttr, StringAttr

    if isinstance(attr, BytesAttr | StringAttr) and isinstance(attr.data, bytes):
        return StringAttr(attr.data.decode("utf-8", errors="replace"))
    if isinstance(attr, ArrayAttr):
        items = [_decode_byte_strings(a) for a in attr]
        return attr if all(a is b for a, b in zip(items, attr)) else ArrayAttr(items)
    if isinstance(attr, DictionaryAttr):
        items = {k: _decode_byte_strings(v) for k, v in attr.data.items()}
        return attr if all(items[k] is v for k, v in attr.data.items()) else DictionaryAttr(items)
    return attr


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
