"""Tokens of the OpenInfer DSL.

Upstream's DSL is a Rust macro, so its tokens are Rust's: identifiers, integer
and float literals (`0..3` is `0`, `..`, `3`), string literals, `//` and nested
`/* */` comments, and punctuation (`..` and `>>` are single tokens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from oi_compiler.errors import ParseError, SourceLoc

IDENT, INT, FLOAT, STRING, PUNCT, EOF = "identifier", "integer", "float", "string", "punctuation", "end of input"

_PUNCT2 = ("..", ">>", "::", "->", "=>")
_PUNCT1 = "{}()[],;:=@.*-!<>+/&|#"
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(
    r"(?P<int>[0-9][0-9_]*)"
    r"(?P<frac>\.(?![.A-Za-z_])[0-9_]*)?"
    r"(?P<exp>[eE][+-]?[0-9_]+)?"
)
_RADIX_RE = re.compile(r"0(?:x[0-9a-fA-F_]+|o[0-7_]+|b[01_]+)")
_RADIX = {"x": 16, "o": 8, "b": 2}
_UNICODE_ESCAPE_RE = re.compile(r"\\u\{([0-9a-fA-F_]{1,8})\}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    value: object
    offset: int
    line: int
    column: int

    def is_punct(self, text: str) -> bool:
        return self.kind == PUNCT and self.text == text

    def is_word(self, text: str) -> bool:
        return self.kind == IDENT and self.text == text

    def describe(self) -> str:
        return "end of input" if self.kind == EOF else f"`{self.text}`"


class Lexer:
    """Turns DSL text into a list of tokens with 1-based line and column."""

    def __init__(self, text: str, filename: str = "<string>"):
        self.text = text
        self.filename = filename
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def loc(self, offset: int) -> SourceLoc:
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:  # last line start <= offset
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return SourceLoc(self.filename, lo + 1, offset - self._line_starts[lo] + 1)

    def error(self, message: str, offset: int) -> ParseError:
        return ParseError(message, self.loc(offset))

    def tokens(self) -> list[Token]:
        text, n, pos = self.text, len(self.text), 0
        out: list[Token] = []
        while True:
            pos = self._skip_trivia(pos)
            if pos >= n:
                break
            c = text[pos]
            if not c.isascii():  # Rust allows Unicode identifiers; the DSL's names are ASCII
                raise self.error(f"unexpected character `{c}`", pos)
            if c.isalpha() or c == "_":
                m = _IDENT_RE.match(text, pos)
                out.append(self._token(IDENT, m.group(), m.group(), pos))
                pos = m.end()
            elif c.isdigit():
                pos = self._number(pos, out)
            elif c == '"':
                pos = self._string(pos, out)
            elif text.startswith(_PUNCT2, pos):
                out.append(self._token(PUNCT, text[pos : pos + 2], None, pos))
                pos += 2
            elif c in _PUNCT1:
                out.append(self._token(PUNCT, c, None, pos))
                pos += 1
            else:
                raise self.error(f"unexpected character `{c}`", pos)
        out.append(self._token(EOF, "", None, n))
        return out

    def _token(self, kind: str, text: str, value: object, offset: int) -> Token:
        loc = self.loc(offset)
        return Token(kind, text, value, offset, loc.line, loc.column)

    def _skip_trivia(self, pos: int) -> int:
        text, n = self.text, len(self.text)
        while pos < n:
            c = text[pos]
            if c.isspace():
                pos += 1
            elif text.startswith("//", pos):
                end = text.find("\n", pos)
                pos = n if end < 0 else end + 1
            elif text.startswith("/*", pos):
                pos = self._block_comment(pos)
            else:
                break
        return pos

    def _block_comment(self, start: int) -> int:
        depth, pos, text = 0, start, self.text
        while pos < len(text):
            if text.startswith("/*", pos):
                depth, pos = depth + 1, pos + 2
            elif text.startswith("*/", pos):
                depth, pos = depth - 1, pos + 2
                if depth == 0:
                    return pos
            else:
                pos += 1
        raise self.error("unterminated block comment", start)

    def _number(self, pos: int, out: list[Token]) -> int:
        m = _RADIX_RE.match(self.text, pos) or _NUMBER_RE.match(self.text, pos)
        end = m.end()
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_"):
            raise self.error("unsupported literal suffix", end)
        raw = m.group().replace("_", "")
        if m.re is _RADIX_RE:
            out.append(self._token(INT, m.group(), int(raw[2:], _RADIX[raw[1]]), pos))
        elif m.group("frac") is not None or m.group("exp") is not None:
            out.append(self._token(FLOAT, m.group(), float(raw), pos))
        else:
            try:
                value = int(raw)
            except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits())
                raise self.error(f"integer literal too long ({len(raw)} digits)", pos) from None
            out.append(self._token(INT, m.group(), value, pos))
        return end

    def _string(self, start: int, out: list[Token]) -> int:
        text, pos, chars = self.text, start + 1, []
        while pos < len(text):
            c = text[pos]
            if c == '"':
                out.append(self._token(STRING, text[start : pos + 1], "".join(chars), start))
                return pos + 1
            if c == "\\":
                pos = self._escape(pos, chars)
            else:
                chars.append(c)
                pos += 1
        raise self.error("unterminated string literal", start)

    def _escape(self, pos: int, chars: list[str]) -> int:
        """Read the escape at `pos` (a backslash) into `chars`; returns the offset after it."""
        text = self.text
        esc = text[pos + 1 : pos + 2]
        if esc in _ESCAPES:
            chars.append(_ESCAPES[esc])
            return pos + 2
        if esc == "x":  # \x7F: two hex digits, ASCII only, as in Rust
            digits = text[pos + 2 : pos + 4]
            if len(digits) == 2 and all(d in "0123456789abcdefABCDEF" for d in digits) and int(digits, 16) < 0x80:
                chars.append(chr(int(digits, 16)))
                return pos + 4
            raise self.error("invalid \\x escape (two hex digits, at most 7F)", pos)
        if esc == "u":
            m = _UNICODE_ESCAPE_RE.match(text, pos)
            code = int(m.group(1).replace("_", ""), 16) if m else -1
            if not 0 <= code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.error("invalid unicode escape", pos)
            chars.append(chr(code))
            return m.end()
        if esc in ("\n", "\r"):  # a line continuation: skip the newline and the next line's indent
            pos += 1
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            return pos
        raise self.error("unknown character escape", pos)
