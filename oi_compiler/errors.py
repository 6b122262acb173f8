"""The one exception family every user-facing error belongs to.

Each error carries the rule's message (worded as upstream OpenInfer words it where
upstream has a message) and, where known, the source location it is about.
`str(err)` is the one-line diagnostic a tool prints: `file:line:col: error: message` (except
`ScheduleError`, whose `str` is the bare message, as Accera's).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLoc:
    """A position in a source file; lines and columns count from 1."""

    filename: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}"


def exception_summary(e: BaseException) -> str:
    """The last non-empty line of an exception's message (xDSL puts the reason there), or its type."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


class OiError(Exception):
    """Base of every error oi_compiler reports about its input."""

    kind = "error"

    def __init__(self, message: str, loc: SourceLoc | None = None, *, subject: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.subject = subject  # what the error is about when there is no location (an op, a variable)

    def __str__(self) -> str:
        where = str(self.loc) if self.loc is not None else (self.subject or "")
        return f"{where}: {self.kind}: {self.message}" if where else f"{self.kind}: {self.message}"


class ParseError(OiError):
    """The input text does not follow the grammar."""


class VerifyError(OiError):
    """The input parses but breaks a rule of the language (checked before running)."""


class CacheError(OiError):
    """A cache operation failed at run time; persistent state is left as before the step."""


class PassError(OiError):
    """A pass was misconfigured or could not transform its input."""


class OptionError(OiError):
    """A command-line flag, pass option or API option (`sizevars=`) is malformed or unknown."""


class ModelError(OiError):
    """A model file (`.oinf`, `.npz`) is unreadable, malformed, or lacks what the graph needs."""


class ExecutionError(OiError):
    """A step failed at run time outside the cache rules (an op's inputs, a bad fed value)."""


class StateError(OiError):
    """A saved executor state is corrupt or does not match the graph; nothing was restored."""


class ScheduleError(OiError, ValueError):
    """A loop nest's schedule or plan breaks one of Accera's rules (also a `ValueError`, as
    Accera raises, so ported code that catches `ValueError` keeps working).

    Unlike the other errors, `str(err)` is the bare message, as Accera's `ValueError` reads
    (`str(e) == "Split sizes must be integers >= 1"`); the location, when there is one, stays in
    `err.loc` and in `repr(err)`. The tools never print one as it is: a pass reports it as a
    `PassError` (`file:line:col: error: message`) at the nest it is about."""

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        where = f", loc='{self.loc}'" if self.loc is not None else ""
        about = f", subject={self.subject!r}" if self.subject is not None else ""
        return f"{type(self).__name__}({self.message!r}{where}{about})"


class VectorWidthError(ScheduleError):
    """A cpu plan asks for a vector width the host cannot do (`oi.Target(vector_bytes=64)`
    without AVX-512F) or that is not one (`vector_bytes=48`)."""


class InternalError(OiError):
    """A bug in oi_compiler, never the input's fault: an exception outside this family escaped
    a stage. The message names the stage (`parse`, `verify`, `lower-ops`, `jit`, `step`...) and
    the original exception; `loc` is the statement being handled when one is known, and the
    original exception is kept as `__cause__`. Made by `oi_compiler.boundary`."""

    kind = "internal error"

    def __init__(self, message: str, loc: SourceLoc | None = None, *, subject: str | None = None,
                 stage: str = ""):  # fmt: skip
        super().__init__(message, loc, subject=subject)
        self.stage = stage


class UnsupportedError(OiError):
    """A well-formed request this implementation does not cover: an element type or layout
    outside what a plan is wired for (baracuda's `Error::Unsupported`)."""


class InvalidProblemError(OiError):
    """A request that is wrong in itself: negative extents, shapes that disagree with the
    descriptor, an argument of the wrong kind (baracuda's `Error::InvalidProblem`)."""


class BufferTooSmallError(OiError):
    """A flat buffer holds fewer elements than its tensor needs (baracuda's
    `Error::BufferTooSmall { needed, got }`); `needed` and `got` count elements."""

    def __init__(self, message: str, *, needed: int, got: int, subject: str | None = None):
        super().__init__(message, subject=subject)
        self.needed = needed
        self.got = got
