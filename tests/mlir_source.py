"""Shared by the backend tests: MLIR text (func/scf/memref/arith/math) to a module, or to compiled code."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, memref, scf
from xdsl.parser import Parser

from oi_compiler.backend.jit import CompiledModule, compile_module


def parse(text: str) -> builtin.ModuleOp:
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, math.Math, scf.Scf, memref.MemRef):
        ctx.load_dialect(dialect)
    return Parser(ctx, text).parse_module()


def build(text: str) -> CompiledModule:
    return compile_module(parse(text))
