"""Every registry op as GPU kernels (loopnest/op_kernels.py): the default mapping per op.

For each op, on small random operands made as the nest tests make them (tests/ops/test_op_nests.py):
the kernels' PTX assembles with `ptxas` for sm_80, and the kernels, launched in order in the CPU
emulation (runtime/gpu_emulation.py), give the numpy reference's result within the nest tests'
tolerance (exactly for integers, copies and the mappings that keep the nest's order). On a machine
with a GPU and a launcher, `test_kernels_on_the_gpu` runs a few for real.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from xdsl.builder import Builder
from xdsl.dialects.builtin import AffineMapAttr, ArrayAttr, Float32Type
from xdsl.dialects.linalg.attrs import IteratorTypeAttr
from xdsl.dialects.linalg.ops import GenericOp, YieldOp
from xdsl.ir import Block, Region
from xdsl.ir.affine import AffineMap

from oi_compiler.backend.ptx import NvptxTarget, assemble, emit_ptx, ptxas_path
from oi_compiler.dtypes import FLOAT_DTYPES, dtype_name, dtype_of_array, numpy_dtype
from oi_compiler.errors import OiError
from oi_compiler.loopnest.op_kernels import op_kernel
from oi_compiler.ops import OpSpec, register_op
from oi_compiler.ops.nests import COPY_OPS
from oi_compiler.ops.registry import all_ops, lookup_op
from oi_compiler.runtime.gpu_emulation import emulate
from tests.ops.test_op_nests import arr, assert_matches, rand, with_specials

pytestmark = pytest.mark.usefixtures("private_compile_cache")
needs_ptxas = pytest.mark.skipif(ptxas_path() is None, reason="no ptxas (pip install nvidia-cuda-nvcc)")


def f32(*shape):
    return rand("f32", shape)


CASES = [
    # elementwise and broadcast: one thread per output element
    ("add", [f32(3, 5), f32(5)], {}),
    ("add", [rand("i8", (2, 3)), rand("i8", (2, 1))], {"acc": ["i16"]}),
    ("sub", [rand("u8", (4, 3)), rand("u8", (4, 3))], {}),
    ("mul", [rand("f16", (2, 3)), rand("f16", (1, 3))], {}),
    ("div", [rand("i8", (2, 4)), arr([[0, -1, 3, -5], [7, -2, 0, 1]], "i8")], {}),
    ("floor_div", [rand("i16", (5,)), arr([3, -2, 0, 7, -1], "i16")], {}),
    ("rem", [rand("i32", (5,)), arr([3, -2, 0, 7, -1], "i32")], {}),
    ("fma", [f32(7), f32(7), f32(7)], {}),
    *((op, [with_specials(f32(2, 5))], {}) for op in ("neg", "abs", "recip", "sign", "floor", "ceil", "trunc",
                                                       "round", "is_nan", "is_inf", "is_neg", "exp", "tanh",
                                                       "sigmoid", "silu", "gelu")),  # fmt: skip
    *((op, [rand("f32", (9,), 0.1, 4)], {}) for op in ("log", "sqrt", "rsqrt")),
    ("relu", [f32(2, 5)], {"alpha": 0.1, "clamp_max": 2.0}),
    ("clamp", [rand("i8", (6,))], {"min": -5, "max": 100}),
    ("min", [f32(3, 2), f32(3, 2)], {}),
    ("max", [rand("u16", (4,)), rand("u16", (4,))], {}),
    *((op, [rand("i8", (2, 3)), rand("i8", (2, 3))], {}) for op in ("and", "or", "xor")),
    ("not", [rand("u8", (5,))], {}),
    ("shl", [rand("i16", (5,))], {"bits": 3}),
    ("shr", [rand("u32", (5,))], {"bits": 5}),
    ("popcount", [rand("i64", (5,))], {}),
    *((op, [f32(3, 4), f32(3, 4)], {}) for op in ("eq", "ne", "lt", "le", "gt", "ge")),
    ("filter", [f32(2, 3), f32(2, 3), rand("i8", (2, 3), -1, 1)], {}),
    ("fill", [f32(2, 3)], {"value": 1.5}),
    ("cast", [rand("f32", (6,), -300, 300)], {"to": "i8", "rounding_mode": "nearest"}),
    ("transpose", [rand("i16", (2, 3, 4))], {"perm": [2, 0, 1]}),
    ("reshape", [f32(3, 4)], {"shape": [2, 6]}),
    ("concat", [f32(2, 3), f32(4, 3)], {"axis": 0}),
    ("rope", [f32(3, 8)], {"position": 5}),
    # reductions: a block per row with a shared tree where the nest allows another order, else a
    # thread per row in the nest's order
    ("sum_axis", [f32(4, 37)], {"axes": [1]}),
    ("sum_axis", [rand("i32", (3, 40))], {"axes": [1], "keepdims": True}),
    ("mean_axis", [f32(5, 3, 4)], {"axes": [0, 2]}),
    ("prod_axis", [rand("f32", (3, 6), 0.5, 1.5)], {"axes": [1]}),
    ("max_axis", [with_specials(f32(3, 5))], {"axes": [1]}),
    ("min_axis", [rand("i8", (3, 5))], {"axes": [0]}),
    ("argmax_axis", [f32(4, 6)], {"axis": 1}),
    ("argmin_axis", [f32(4, 6)], {"axis": 0, "select_first": False}),
    ("is_finite", [f32(3, 50)], {}),
    ("softmax", [f32(3, 70)], {}),
    ("softmax", [f32(6, 4)], {"axis": 0}),
    ("rms_norm", [f32(4, 33)], {"eps": 1e-5}),
    ("layer_norm", [rand("f16", (3, 40))], {}),
    # matmul: shared-memory tiles of A and B (2-d f32/f64), else one thread per output element
    ("matmul", [f32(13, 29), f32(29, 11)], {}),
    ("matmul", [rand("f64", (40, 20)), rand("f64", (20, 36))], {}),
    ("matmul", [f32(2, 3, 4), f32(4, 5)], {}),
    ("matmul", [rand("i8", (3, 4)), rand("i8", (4, 2))], {"acc": ["i32"]}),
    # attention: a block per (query, head)
    ("attention", [f32(3, 4, 8), f32(5, 2, 8), f32(5, 2, 8)], {"causal": True}),
    ("attention", [f32(4, 16), f32(150, 1, 16), f32(150, 1, 16)], {"scale": 0.3}),
    ("attention", [rand("f16", (2, 2, 4)), rand("f16", (3, 2, 4)), rand("f16", (3, 2, 4))], {}),
]
IDS = [f"{op}-{n}" for n, (op, _, _) in enumerate(CASES)]
#: ops whose float results are + - * only, and mappings that keep the nest's order of them: bit for bit
ARITHMETIC = {"add", "sub", "mul", "fma", "sum_axis", "prod_axis", "matmul"}
ORDER_KEPT = {"elementwise", "row-sequential", "matmul-shared-tiles"}


@functools.cache
def kernels_of(case: int):
    op, inputs, settings = CASES[case]
    return op_kernel(op, settings, [(dtype_of_array(a.dtype), a.shape) for a in inputs])


def out_dtype(kernel) -> str:
    return dtype_name(kernel.output.element_type)


def run_emulated(kernel, inputs: list[np.ndarray]) -> np.ndarray:
    out = np.full(kernel.output.get_shape(), 3, numpy_dtype(out_dtype(kernel)))  # every element must be written
    scratch = kernel.scratch_arrays()
    for launch in kernel.launches:
        emulate(kernel.module, launch.kernel, launch.grid, launch.block, *inputs, out, *scratch)
    return out


def test_every_registry_op_has_kernels() -> None:
    assert {op for op, _, _ in CASES} == set(all_ops())
    for n in range(len(CASES)):
        kernel = kernels_of(n)
        assert kernel.launches and all(launch.kernel in str(kernel.module) for launch in kernel.launches)


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_emulated_kernels_match_the_reference(case: int) -> None:
    op, inputs, settings = CASES[case]
    kernel = kernels_of(case)
    want = lookup_op(op).reference(inputs, settings, out_dtype(kernel))
    exact = out_dtype(kernel) not in FLOAT_DTYPES or op in COPY_OPS or \
        (op in ARITHMETIC and {launch.mapping for launch in kernel.launches} <= ORDER_KEPT)  # fmt: skip
    assert_matches(run_emulated(kernel, inputs), want, exact)


@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_an_in_place_input_may_be_the_output(case: int) -> None:
    """Each input `OpKernel.in_place` names, passed as the output itself (`op mul(x, w) >> x`): the
    reference's result, written over it. Only elementwise stages reading it where they write qualify."""
    op, inputs, settings = CASES[case]
    kernel = kernels_of(case)
    if kernel.in_place:
        assert {launch.mapping for launch in kernel.launches} == {"elementwise"}
    want = lookup_op(op).reference(inputs, settings, out_dtype(kernel))
    for n in sorted(kernel.in_place):
        shared = inputs[n].copy()
        operands = [shared if k == n else a for k, a in enumerate(inputs)]
        scratch = kernel.scratch_arrays()
        for launch in kernel.launches:
            emulate(kernel.module, launch.kernel, launch.grid, launch.block, *operands, shared, *scratch)
        assert_matches(shared, want, out_dtype(kernel) not in FLOAT_DTYPES or op in ARITHMETIC | COPY_OPS)


def test_which_inputs_may_be_the_output() -> None:
    in_place = {(op, n): kernels_of(n).in_place for n, (op, _, _) in enumerate(CASES)}
    assert in_place[("add", 0)] == {0} and in_place[("fma", 7)] == {0, 1, 2}  # (add's second input broadcasts)
    assert all(in_place[(op, n)] == {0} for n, (op, _, _) in enumerate(CASES) if op in ("exp", "silu", "neg"))
    assert in_place[("rope", 50)] == {0}  # its halves' views: a thread reads x at the two elements it writes
    none = ("transpose", "reshape", "concat", "softmax", "rms_norm", "sum_axis", "matmul", "attention")
    assert all(not in_place[(op, n)] for n, (op, _, _) in enumerate(CASES) if op in none)
    # add's first input, which may be the output, is read without `.nc` (whose data must not change
    # while the kernel runs); its second, which may not, through it
    ptx = emit_ptx(kernels_of(0).module)
    assert ptx.count("ld.global.b32") == 1 and ptx.count("ld.global.nc.b32") == 1


@needs_ptxas
@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_ptx_assembles_for_sm_80(case: int) -> None:
    kernel = kernels_of(case)
    ptx = emit_ptx(kernel.module, NvptxTarget("sm_80"))
    assert all(f".entry {launch.kernel}(" in ptx for launch in kernel.launches)
    assemble(ptx, "sm_80")


def mappings(case: int) -> list[str]:
    return [launch.mapping for launch in kernels_of(case).launches]


def case_of(op: str, nth: int = 0) -> int:
    return [n for n, (name, _, _) in enumerate(CASES) if name == op][nth]


def test_the_mapping_of_each_op_class() -> None:
    assert mappings(case_of("add")) == ["elementwise"]
    assert mappings(case_of("concat")) == ["elementwise", "elementwise"]  # one launch per half
    assert mappings(case_of("sum_axis")) == ["row-sequential"]  # its fill folded in; a float sum kept in order
    assert mappings(case_of("is_finite")) == ["row-tree"]  # an `and` of every element: any order
    assert mappings(case_of("softmax")) == ["row-tree", "row-tree", "elementwise"]  # max, sum of exps, divide
    assert mappings(case_of("matmul")) == ["elementwise", "matmul-shared-tiles"]  # zero C, then the tiles
    assert mappings(case_of("matmul", 2)) == ["row-sequential"]  # batched: a thread per output element
    assert mappings(case_of("attention")) == ["attention-rows"]
    softmax = kernels_of(case_of("softmax"))
    assert softmax.launches[0].grid == (3, 1, 1) and softmax.launches[0].block == (128, 1, 1)
    matmul = kernels_of(case_of("matmul", 1))
    assert [(launch.grid, launch.block) for launch in matmul.launches][1] == ((3, 3, 1), (16, 16, 1))
    assert kernels_of(case_of("attention")).launches[0].grid == (12, 1, 1)  # S x H blocks


@needs_ptxas
def test_shared_memory_and_barriers_where_the_mapping_has_them() -> None:
    for case in (case_of("matmul"), case_of("softmax"), case_of("attention")):
        ptx = emit_ptx(kernels_of(case).module, NvptxTarget("sm_80"))
        assert ".shared" in ptx and "bar.sync" in ptx


def test_temporaries_become_scratch_buffers() -> None:
    softmax = kernels_of(case_of("softmax"))
    assert [t.get_shape() for t in softmax.scratch] == [(3,), (3,)]  # the row maxima and sums
    assert [a.shape for a in softmax.scratch_arrays()] == [(3,), (3,)]
    assert kernels_of(case_of("add")).scratch == ()


def test_an_output_map_no_mapping_can_split_runs_in_one_thread(scratch_registry: None) -> None:
    """A custom op's nest writing `out[i] = x[i, j]` for every j (the last j wins, in order): no
    point owns its element, so the stage runs in one thread, in the nest's order."""

    def last_column(b: Builder, inputs, output, settings, in_dtypes, out_dtype) -> None:
        body = Block(arg_types=[Float32Type(), Float32Type()])
        body.add_op(YieldOp(body.args[0]))
        maps = [AffineMap.from_callable(lambda i, j: (i, j)), AffineMap.from_callable(lambda i, j: (i,))]
        b.insert(GenericOp(inputs, [output], Region(body), ArrayAttr([AffineMapAttr(m) for m in maps]),
                           ArrayAttr([IteratorTypeAttr.parallel()] * 2)))  # fmt: skip

    register_op(OpSpec("last_column", arity=1, shape_rule=lambda shapes, settings: (shapes[0][0],),
                       nest_builder=last_column), replace=True)  # fmt: skip
    x = f32(3, 4)
    kernel = op_kernel("last_column", {}, [("f32", (3, 4))])
    assert [launch.mapping for launch in kernel.launches] == ["single-thread"]
    np.testing.assert_array_equal(run_emulated(kernel, [x]), x[:, -1])


@pytest.mark.parametrize("a, b", [((3, 0), (0, 4)), ((0, 2), (2, 4)), ((3, 2), (2, 0))])
def test_a_matmul_with_an_empty_dim_runs_as_the_reference(a, b) -> None:
    """The shared tiles split every dim, so an empty one takes the row mapping: an empty
    contraction gives zeros, as the reference does (it was a ScheduleError)."""
    inputs = [np.ones(a, np.float32), np.ones(b, np.float32)]
    kernel = op_kernel("matmul", {}, [("f32", a), ("f32", b)])
    np.testing.assert_array_equal(run_emulated(kernel, inputs), lookup_op("matmul").reference(inputs, {}, "f32"))


def test_what_the_op_refuses_is_an_oi_error() -> None:
    with pytest.raises(OiError, match="op sum_axis axes must not be empty"):
        op_kernel("sum_axis", {"axes": []}, [("f32", (2, 3))])
    with pytest.raises(OiError, match="unsupported op nope"):
        op_kernel("nope", {}, [("f32", (2,))])
    with pytest.raises(OiError, match=r"op add: output f32\[3, 3\] is not its result f32\[2, 3\]"):
        op_kernel("add", {}, [("f32", (2, 3)), ("f32", (3,))], output=("f32", (3, 3)))


def _gpu_reason() -> str | None:
    from oi_compiler.runtime import cuda

    cuda.reset()
    reason = cuda.unavailable_reason()
    cuda.reset()
    return reason


@pytest.mark.skipif(_gpu_reason() is not None, reason="no GPU (runtime/cuda.py's unavailable_reason)")
@pytest.mark.parametrize("op", ["add", "softmax", "matmul", "attention", "sum_axis"])
def test_kernels_on_the_gpu(op: str) -> None:
    """The same kernels launched on a GPU (skipped without a driver, a device or a launcher)."""
    from oi_compiler.runtime import cuda

    case = case_of(op)
    _, inputs, settings = CASES[case]
    kernel = kernels_of(case)
    device = cuda.load_module(emit_ptx(kernel.module, NvptxTarget("sm_80")))
    out = np.zeros(kernel.output.get_shape(), numpy_dtype(out_dtype(kernel)))
    scratch = kernel.scratch_arrays()
    for launch in kernel.launches:
        signature = cuda.kernel_signature(kernel.module, launch.kernel)
        device.function(launch.kernel, signature)(*inputs, out, *scratch, grid=launch.grid, block=launch.block)
    want = lookup_op(op).reference(inputs, settings, out_dtype(kernel))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
