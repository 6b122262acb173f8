"""The shape of the softmax, rms_norm and layer_norm kernels over a long row: their float sums,
which the numpy reference adds pairwise (in no fixed order), are marked `reassoc` and vectorise,
and softmax computes exp once per element, inline (no libm call). The results are checked
against the reference elsewhere (test_op_nests.py, test_compiled_nests.py, tests/cpu, tests/e2e).
sum_axis and mean_axis, whose reference adds in order, keep their strict chain."""

from __future__ import annotations

import re

import numpy as np
import pytest
from xdsl.builder import Builder
from xdsl.dialects import arith, func
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import MemRefType, ModuleOp, f32
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint

from oi_compiler.backend.jit import compile_module
from oi_compiler.ops.registry import lookup_op
from oi_compiler.pipeline import NEST_STAGES, run_stages

pytestmark = pytest.mark.usefixtures("private_compile_cache")

ROW = (1, 4096)


def nest(op: str, out_shape: tuple[int, ...] = ROW, settings: dict | None = None) -> ModuleOp:
    """`f(x f32[1, 4096], out)` holding the op's nest."""
    types = [MemRefType(f32, ROW), MemRefType(f32, out_shape)]
    block = Block(arg_types=types)
    b = Builder(InsertPoint.at_end(block))
    lookup_op(op).nest_builder(b, [block.args[0]], block.args[1], settings or {}, ["f32"], "f32")
    b.insert(func.ReturnOp())
    return ModuleOp([func.FuncOp("f", (types, []), Region(block))])


def optimized_ir(module: ModuleOp) -> str:
    run_stages(NEST_STAGES[:-1], module)
    return compile_module(module).llvm_ir


def reassoc_adds(module: ModuleOp) -> int:
    return sum(isinstance(op, arith.AddfOp) and "reassoc" in str(op.fastmath) for op in module.walk())


@pytest.mark.parametrize(("op", "sums"), [("softmax", 1), ("rms_norm", 1), ("layer_norm", 2)])
def test_the_sums_are_marked_reassoc(op: str, sums: int) -> None:
    assert reassoc_adds(nest(op)) == sums


def test_softmax_computes_exp_once_per_element() -> None:
    assert sum(isinstance(op, mathd.ExpOp) for op in nest("softmax").walk()) == 1


@pytest.mark.parametrize("op", ["softmax", "rms_norm", "layer_norm"])
def test_the_optimized_row_sum_is_vector_code(op: str) -> None:
    ir = optimized_ir(nest(op))
    assert re.search(r"fadd reassoc <\d+ x float>", ir), "the sum is a scalar chain"
    callees = set(re.findall(r"call [^@]*@\"?([\w.]+)", ir))
    assert all(c.startswith("llvm.") and not c.startswith("llvm.exp") for c in callees), callees


def test_softmax_row_max_is_vector_code_and_the_result_matches() -> None:
    module = nest("softmax")
    ir = optimized_ir(module.clone())
    assert re.search(r"@llvm\.maximum\.v\d+f32", ir)
    x = np.random.default_rng(3).standard_normal(ROW).astype(np.float32) * 8
    out = np.empty_like(x)
    run_stages(NEST_STAGES[:-1], module)
    compile_module(module).function("f")(x, out)
    np.testing.assert_allclose(out, lookup_op("softmax").reference([x], {}, "f32"), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("op", ["sum_axis", "mean_axis"])
def test_ordered_sums_stay_strict(op: str) -> None:
    """The reference of sum_axis and mean_axis adds in row-major order: no reassoc there."""
    assert reassoc_adds(nest(op, (1,), {"axes": [1]})) == 0
