"""`oi.Graph`: a parsed, verified OpenInfer graph and its IR module."""

from __future__ import annotations

import re

from collections.abc import Mapping
from pathlib import Path

from oi_compiler.errors import OiError, ParseError, VerifyError, exception_summary


class Graph:
    """One OpenInfer graph. `graph.module` is the xDSL `ModuleOp` holding its `oi.graph`."""

    def __init__(self, module, filename: str = "<string>"):
        self.module = module
        self.filename = filename

    @property
    def op(self):
        """The `oi.graph` op."""
        from oi_compiler.dialects.oi import GraphOp

        for op in self.module.ops:
            if isinstance(op, GraphOp):
                return op
        raise VerifyError("module holds no oi.graph", subject=self.filename)

    @property
    def name(self) -> str:
        return self.op.sym_name.data

    @property
    def vars(self) -> dict:
        return {v.var_name: v for v in self.op.vars}

    @property
    def blocks(self) -> dict:
        return {b.block_name: b for b in self.op.blocks}

    def verify(self, sizevars: Mapping[str, int] | None = None) -> Graph:
        """Check every rule that can be checked before running; raises `VerifyError`."""
        self.op  # noqa: B018 - a Graph must hold an oi.graph (raises VerifyError otherwise)
        verify_module(self.module, sizevars=sizevars)
        return self

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> Graph:
        """Read a `.oi` graph (or a `.mlir` file holding an `oi.graph`)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ParseError(f"cannot read {path}: {e.strerror}", subject=str(path)) from None
        except UnicodeDecodeError:
            raise ParseError("input is not UTF-8 text", subject=str(path)) from None
        if path.suffix == ".mlir":
            from oi_compiler.boundary import stage

            with stage("parse"):
                module = parse_mlir(text, str(path))
            graph = cls(module, str(path))
            return graph.verify() if verify else graph
        return parse_graph(text, str(path), verify=verify)

    def __str__(self) -> str:
        return str(self.module)

    def __repr__(self) -> str:
        return f"<oi.Graph {self.name} from {self.filename}>"


def parse_graph(text: str, filename: str = "<string>", *, verify: bool = True) -> Graph:
    """Parse OpenInfer DSL text (with or without `graph! { ... }`) into a verified `Graph`."""
    from oi_compiler.boundary import stage
    from oi_compiler.frontend.oi_dsl import parse_module

    if not isinstance(text, str):
        raise TypeError(f"parse_graph takes the graph's text as a str, not {type(text).__name__}")
    refuse_surrogates(text, str(filename))
    with stage("parse"):
        module = parse_module(text, str(filename))
    graph = Graph(module, str(filename))
    return graph.verify() if verify else graph


def parse_mlir(text: str, filename: str = "<string>", ctx=None):
    """Parse MLIR text (custom or generic form) into a `ModuleOp`; ops keep their file:line:col."""
    from oi_compiler.frontend.mlir_text import parse_mlir_module

    if isinstance(text, str):
        refuse_surrogates(text, str(filename))
    return parse_mlir_module(text, filename, ctx)


_SURROGATE = re.compile("[\ud800-\udfff]")


def refuse_surrogates(text: str, filename: str) -> None:
    """Text (or a file name) holding a lone surrogate (bytes decoded with `surrogateescape`) is not
    Unicode text: no printer or file can hold it, so it is refused where it is read."""
    from oi_compiler.errors import ParseError, SourceLoc

    if (bad := _SURROGATE.search(filename)) is not None:
        raise ParseError(f"the file name holds a lone surrogate ({bad.group()!a}), which is not Unicode text",
                         subject=filename.encode("utf-8", "backslashreplace").decode())  # fmt: skip
    if (bad := _SURROGATE.search(text)) is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise ParseError(f"the text holds a lone surrogate ({bad.group()!a}), which is not Unicode text "
                         "(read the file as UTF-8)", SourceLoc(filename, line, column))  # fmt: skip


def verify_module(module, sizevars: Mapping[str, int] | None = None) -> None:
    """Structural (per-op) verification, then the graph rules for every `oi.graph`."""
    from xdsl.utils.exceptions import DiagnosticException

    from oi_compiler.boundary import stage
    from oi_compiler.dialects.oi import GraphOp
    from oi_compiler.ir_context import nearest_loc
    from oi_compiler.size_vars import checked_sizevars
    from oi_compiler.verify import verify_graph

    if sizevars is not None:
        sizevars = checked_sizevars(sizevars)

    with stage("verify"):
        for op in module.walk():
            try:
                op.verify(verify_nested_ops=False)
            except (DiagnosticException, ValueError) as e:
                message = exception_summary(e.__cause__ or e)
                raise VerifyError(f"'{op.name}' op {message}", nearest_loc(op), subject=op.name) from None
        for op in module.ops:
            if isinstance(op, GraphOp):
                verify_graph(op, sizevars=sizevars)


__all__ = ["Graph", "parse_graph", "parse_mlir", "verify_module", "OiError"]
