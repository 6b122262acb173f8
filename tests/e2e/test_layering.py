"""Imports point down the levels only (DESIGN.md: dialects <- ops <- verify <- lowering/loopnest <-
passes <- pipeline <- runtime <- API/tools), function-level imports included: a module may
import its own level or any level below it, never one above.

The backend sits below the lowering (it translates what the lowering makes) and knows no `oi`
op: the step's own ops register their emitters from `lowering/` (`backend.llvm.register_emitters`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import oi_compiler

ROOT = Path(oi_compiler.__file__).parent

#: level of each module (the longest matching prefix wins), lowest first
LEVELS: dict[str, int] = {
    "oi_compiler.errors": 0,
    "oi_compiler.dtypes": 0,
    "oi_compiler.size_vars": 0,
    "oi_compiler.version": 0,
    "oi_compiler.gc_pause": 0,
    "oi_compiler.dialects": 1,
    "oi_compiler.ir_context": 2,
    "oi_compiler.boundary": 2,
    "oi_compiler.frontend.oi_dsl": 2,
    "oi_compiler.frontend.oi_lexer": 2,
    "oi_compiler.frontend.mlir_text": 2,
    "oi_compiler.models": 2,
    "oi_compiler.ops": 3,
    "oi_compiler.verify": 4,
    "oi_compiler.graph": 5,
    "oi_compiler.backend": 5,
    "oi_compiler.lowering": 6,
    "oi_compiler.loopnest": 6,
    "oi_compiler.passes": 7,
    "oi_compiler.pipeline": 8,
    "oi_compiler.runtime": 9,
    "oi_compiler.frontend.loopnest": 10,
    "oi_compiler.tools": 10,
    "oi_compiler.universe": 10,
    "oi_compiler": 10,  # the package's __init__: the public API
}


def level(module: str) -> int:
    best = max((p for p in LEVELS if module == p or module.startswith(p + ".")), key=len)
    return LEVELS[best]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """(imported oi_compiler module, line) for every import in the file, wherever it is."""
    found = []
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("oi_compiler")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("oi_compiler"):
                for alias in node.names:  # `from oi_compiler.frontend import loopnest`: the submodule
                    sub = f"{base}.{alias.name}"
                    is_module = (ROOT.parent / sub.replace(".", "/")).with_suffix(".py").exists() or \
                        (ROOT.parent / sub.replace(".", "/")).is_dir()  # fmt: skip
                    found.append((sub if is_module else base, node.lineno))
    return found


def test_every_module_has_a_level() -> None:
    for path in ROOT.rglob("*.py"):
        level(module_name(path))  # raises when no prefix matches


def test_imports_point_down_the_levels() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        source = module_name(path)
        for target, line in imports(path):
            if level(target) > level(source):
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {source} (level {level(source)}) imports "
                              f"{target} (level {level(target)})")  # fmt: skip
    assert upward == [], "\n".join(upward)


def test_the_backend_knows_no_oi_op() -> None:
    for path in (ROOT / "backend").rglob("*.py"):
        for target, line in imports(path):
            assert not target.startswith("oi_compiler.dialects"), f"{path.name}:{line} imports {target}"
