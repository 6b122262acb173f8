"""`--verify-diagnostics`: match errors against `expected-error` annotations, as mlir-opt does.

An annotation is a comment in the input (both `.mlir` and `.oi` use `//`):

    // expected-error @+1 {{cache table K requires indices}}
    cache.read K >> x;

`@+N`/`@-N` shift the line, `@above`/`@below` mean one line up/down, `@unknown`
matches an error without a location; without `@...` the error is on the
annotation's own line. The text between `{{` and `}}` must occur in the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from oi_compiler.errors import OiError

_ANNOTATION = re.compile(r"expected-error\s*(?:@(?P<at>[+-]\d+|above|below|unknown))?\s*\{\{(?P<msg>.*?)\}\}")


@dataclass
class ExpectedError:
    line: int | None  # None: an error with no location
    message: str
    annotation_line: int
    seen: bool = False


def collect_expected(text: str, first_line: int = 1) -> list[ExpectedError]:
    expected = []
    for number, line in enumerate(text.splitlines(), start=first_line):
        for m in _ANNOTATION.finditer(line):
            at = m.group("at")
            if at == "unknown":
                target = None
            elif at in ("above", "below"):
                target = number + (-1 if at == "above" else 1)
            else:
                target = number + int(at or 0)
            expected.append(ExpectedError(target, m.group("msg"), number))
    return expected


def check_errors(expected: list[ExpectedError], errors: list[OiError], filename: str) -> list[str]:
    """The mismatches between produced errors and annotations, as printable lines."""
    problems = []
    for err in errors:
        line = err.loc.line if err.loc is not None else None
        match = next((e for e in expected if not e.seen and e.line == line and e.message in err.message), None)
        if match is None:
            where = str(err.loc) if err.loc else filename
            problems.append(f"{where}: error: unexpected error: {err.message}")
        else:
            match.seen = True
    for e in expected:
        if not e.seen:
            problems.append(f'{filename}:{e.annotation_line}: error: expected error "{e.message}" was not produced')
    return problems
