"""Registry ops through the whole loop-level pipeline: nest builder -> --tile -> --lower-nests ->
LLVM (llvmlite MCJIT), run natively on numpy buffers and compared with the op's numpy reference.

Tile sizes are chosen not to divide the extents, so boundary tiles are exercised; reductions keep
their ascending order under tiling, so sums and matmul match the reference bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.builder import Builder
from xdsl.dialects import func
from xdsl.dialects.builtin import DYNAMIC_INDEX, MemRefType, ModuleOp
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint

from oi_compiler.backend.jit import compile_module
from oi_compiler.dtypes import dtype_type, numpy_dtype
from oi_compiler.ir_context import make_context
from oi_compiler.ops.registry import lookup_op
from oi_compiler.passes import run_passes


pytestmark = pytest.mark.usefixtures("private_compile_cache")


def nest_module(op: str, inputs: list[np.ndarray], out_shape, out_dtype: str, settings: dict, dynamic: bool):
    """`func.func @f(inputs..., output)` holding the op's nest, its memrefs dynamic or static."""

    def memref(array_shape, dtype):
        # a size-1 dim stays static: nests broadcast only along dims known to be 1
        return MemRefType(dtype_type(dtype), [DYNAMIC_INDEX if dynamic and d != 1 else d for d in array_shape])

    in_dtypes = [str(a.dtype).replace("float", "f").replace("int", "i") for a in inputs]
    types = [memref(a.shape, d) for a, d in zip(inputs, in_dtypes)] + [memref(out_shape, out_dtype)]
    block = Block(arg_types=types)
    b = Builder(InsertPoint.at_end(block))
    lookup_op(op).nest_builder(b, list(block.args[:-1]), block.args[-1], settings, in_dtypes, out_dtype)
    b.insert(func.ReturnOp())
    module = ModuleOp([func.FuncOp("f", (types, []), Region(block))])
    module.verify()
    return module


CASES = [
    # op, input shapes, settings, tile sizes (one per loop of the op's main nest)
    ("matmul", [(13, 29), (29, 11)], {}, "5,4,7"),
    ("add", [(9, 17), (1, 17)], {}, "4,5"),
    ("sum_axis", [(11, 23)], {"axes": [1]}, "3,6"),
    ("relu", [(37,)], {"alpha": 0.1}, "8"),
    ("softmax", [(6, 19)], {"axis": -1}, "4,5"),
    ("rms_norm", [(5, 16)], {"eps": 1e-6}, "2,3"),
]


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize(("op", "shapes", "settings", "tiles"), CASES, ids=[c[0] for c in CASES])
def test_tiled_lowered_and_compiled_matches_reference(op, shapes, settings, tiles, dynamic) -> None:
    rng = np.random.default_rng(7)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    spec = lookup_op(op)
    expected = spec.reference(inputs, settings, "f32")
    module = nest_module(op, inputs, expected.shape, "f32", settings, dynamic)
    run_passes(module, f"tile{{sizes={tiles}}},lower-nests", make_context())
    assert "linalg." not in str(module) and "affine." not in str(module)
    out = np.zeros(expected.shape, np.float32)
    compile_module(module).function("f")(*inputs, out)
    if op in ("matmul", "add", "sum_axis", "relu"):  # sequential order kept: bit-identical
        np.testing.assert_array_equal(out, expected)
    else:
        np.testing.assert_allclose(out, expected, rtol=2e-6, atol=1e-6)


def test_integer_wraparound_survives_the_pipeline() -> None:
    a = np.array([[120, -128, 7]], np.int8)
    b = np.array([[10, -1, 9]], np.int8)
    spec = lookup_op("add")
    expected = spec.reference([a, b], {}, "i8")
    module = nest_module("add", [a, b], expected.shape, "i8", {}, dynamic=True)
    run_passes(module, "tile{sizes=1,2},lower-nests", make_context())
    out = np.zeros_like(expected)
    compile_module(module).function("f")(a, b, out)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == numpy_dtype("i8")
