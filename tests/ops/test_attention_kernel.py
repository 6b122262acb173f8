"""The shape of the attention kernel (oi_compiler/ops/nests/attention.py), which the decode step
spends its time in at long context: each key and value row read in one generic, exp computed
once per score, the value mix accumulated in registers, and no allocation per call (its
temporaries hold one chunk of keys, on the stack). The results are checked against the
reference here for keys over several chunks, and elsewhere (test_op_nests.py,
test_ops_decoder.py, tests/cpu, tests/e2e)."""

from __future__ import annotations

import math
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from xdsl.builder import Builder
from xdsl.dialects import func, memref
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import DYNAMIC_INDEX, MemRefType, ModuleOp
from xdsl.dialects.linalg.ops import GenericOp
from xdsl.ir import Block, Region, SSAValue
from xdsl.rewriter import InsertPoint

from oi_compiler.backend.jit import compile_module
from oi_compiler.backend.llvm_memref import STACK_BUFFER_BYTES
from oi_compiler.dtypes import dtype_type
from oi_compiler.ops.nests.attention import MAX_CHUNK
from oi_compiler.ops.registry import lookup_op
from oi_compiler.pipeline import NEST_STAGES, run_stages

pytestmark = pytest.mark.usefixtures("private_compile_cache")

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny_decoder.oi"


def attention_module(q: tuple, kv: tuple, dtypes=("f32",) * 3, out="f32", settings=None) -> ModuleOp:
    """`f(q, k, v, out)` whose body is the attention nest; a None dim is dynamic."""

    def memref_type(dims: tuple, dtype: str) -> MemRefType:
        return MemRefType(dtype_type(dtype), [DYNAMIC_INDEX if d is None else d for d in dims])

    types = [memref_type(q, dtypes[0]), memref_type(kv, dtypes[1]), memref_type(kv, dtypes[2]), memref_type(q, out)]
    block = Block(arg_types=types)
    b = Builder(InsertPoint.at_end(block))
    lookup_op("attention").nest_builder(b, list(block.args[:3]), block.args[3], settings or {}, list(dtypes), out)
    b.insert(func.ReturnOp())
    return ModuleOp([func.FuncOp("f", (types, []), Region(block))])


def decode_module(heads: int, kv_heads: int, head_dim: int) -> ModuleOp:
    """`f(q [H, Dh], k [?, Hk, Dh], v [?, Hk, Dh], out [H, Dh])`: the nest of one decode step."""
    return attention_module((heads, head_dim), (None, kv_heads, head_dim))


def views_of(value: SSAValue) -> set[SSAValue]:
    """`value` and the subviews taken of it."""
    return {value} | {use.operation.results[0] for use in value.uses if isinstance(use.operation, memref.SubviewOp)}


@pytest.mark.parametrize(("heads", "kv_heads", "head_dim"), [(4, 2, 8), (8, 4, 64), (4, 1, 8), (4, 4, 8)])
def test_each_key_and_value_row_is_read_by_one_generic(heads: int, kv_heads: int, head_dim: int) -> None:
    module = decode_module(heads, kv_heads, head_dim)
    q, k, v, _ = module.body.block.ops.first.body.block.args  # type: ignore[union-attr]
    generics = [op for op in module.walk() if isinstance(op, GenericOp)]
    readers = {name: [g for g in generics if views_of(value) & set(g.inputs)] for name, value in (("k", k), ("v", v))}
    assert [len(r) for r in readers.values()] == [1, 1]
    # the q.k generic walks t (k's first index) outside the heads and d: one pass over k for all heads
    qk = readers["k"][0]
    k_map = qk.indexing_maps.data[next(i for i, x in enumerate(qk.inputs) if x in views_of(k))].data
    assert str(k_map.results[0]) == "d0" and len(qk.iterator_types.data) == 4
    # exp(score - shift) once per score: one exp in the generics over the chunk's scores (the other
    # exp is once per head and chunk, rescaling the sums)
    (scores,) = qk.outputs
    over_scores = [g for g in generics if scores in g.outputs]
    assert sum(isinstance(op, mathd.ExpOp) for g in over_scores for op in g.walk()) == 1


def test_the_temporaries_do_not_grow_with_the_keys() -> None:
    """Every temporary of the decode nest has a static size (one chunk of keys), small enough for
    the backend to keep on the stack, although the number of keys is dynamic."""
    allocs = [op for op in decode_module(4, 2, 8).walk() if isinstance(op, memref.AllocOp)]
    assert allocs
    for op in allocs:
        shape = op.memref.type.get_shape()
        assert DYNAMIC_INDEX not in shape and math.prod(shape) * 4 <= STACK_BUFFER_BYTES, op.memref.type


@cache
def decoder_attention_kernel() -> str:
    """The optimised LLVM IR of the attention kernel in the tiny decoder's step."""
    import oi_compiler as oi
    from oi_compiler.backend import jit
    from oi_compiler.pipeline import lower_step
    from oi_compiler.runtime.native_step import _install_callback

    sizes = {"D": 32, "H": 4, "Hk": 2, "Dh": 8, "F": 64, "NV": 48, "L": 2, "T": 64}
    module = lower_step(oi.Graph.load(TINY).module, sizes)
    _install_callback()
    optimized = jit.compile_module(module).llvm_ir
    kernels = [k for k in optimized.split("define internal") if "_attention(" in k.split("\n")[0]]
    assert len(kernels) == 1
    return kernels[0]


def test_the_decoder_attention_kernel_allocates_nothing() -> None:
    """No allocator call: its temporaries used to be heap buffers, the scores T floats per head
    (64 KiB at 4096 positions), allocated and freed on every call."""
    kernel = decoder_attention_kernel()
    assert not re.search(r"call [^@]*@\"?(aligned_alloc|malloc|calloc|free|posix_memalign)\b", kernel)
    assert re.search(r"= alloca ", kernel)


def test_the_decoder_attention_kernel_keeps_its_sums_in_registers() -> None:
    """In the tiny decoder's step: no libm call; the sum of exps is vector code; the value mix
    (weights . v) loop keeps the output rows in vector registers: no store inside it. The output
    used to be accumulated in place through an argument that may alias v, stored every t."""
    kernel = decoder_attention_kernel()
    assert not re.search(r"call [^@]*@\"?(expf|exp|llvm\.exp)\b", kernel)
    assert re.search(r"fadd reassoc <\d+ x float>", kernel)
    register_loops = []  # loops multiplying vectors into accumulators held in phis, storing nothing
    for block in re.split(r"\n(?=[-\w.$]+:)", kernel):  # one basic block each
        label = block.split(":", 1)[0]
        loops_to_itself = re.search(rf"^\s+br .*label %{re.escape(label)}(?![-\w.$])", block, re.M)
        accumulates = re.search(r"= phi <\d+ x float>", block) and re.search(r"= fmul <\d+ x float>", block)
        if loops_to_itself and accumulates and not re.search(r"^\s+store ", block, re.M):
            register_loops.append(label)
    assert register_loops, "the value mix stores its accumulators in every iteration"


NUMPY = {"f16": np.float16, "f32": np.float32, "f64": np.float64}
TOLERANCE = {"f16": 2e-3, "f32": 1e-5, "f64": 1e-12}
KEYS = 2 * MAX_CHUNK + 100  # three chunks, the last one partial


@pytest.mark.parametrize(
    ("q", "kv", "dtypes", "settings"),
    [
        ((4, 8), (KEYS, 2, 8), ("f32",) * 3, {}),  # a decode step
        ((5, 4, 8), (KEYS, 2, 8), ("f32",) * 3, {"causal": True}),
        ((KEYS - MAX_CHUNK, 2, 4), (KEYS, 1, 4), ("f32",) * 3, {"causal": True}),  # chunks hidden from the first queries
        ((3, 4, 8), (KEYS, 2, 8), ("f16",) * 3, {"causal": True, "scale": 0.5}),
        ((2, 4, 8), (KEYS, 4, 8), ("f32", "f64", "f32"), {}),  # in f64: half as many keys per chunk
    ],
)
def test_keys_over_several_chunks_match_the_reference(q: tuple, kv: tuple, dtypes: tuple, settings: dict) -> None:
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape).astype(NUMPY[d]) for shape, d in zip((q, kv, kv), dtypes)]
    check_compiled(inputs, dtypes, settings)


def test_keys_of_minus_infinite_scores_get_no_weight() -> None:
    """The first chunk's scores all -inf (and part of the second's): their weights are 0, as the
    reference's, not NaN (exp(-inf - -inf)) while no finite score has been seen."""
    rng = np.random.default_rng(1)
    q = np.abs(rng.standard_normal((4, 8))).astype(np.float32) + 0.1
    k, v = (rng.standard_normal((KEYS, 2, 8)).astype(np.float32) for _ in range(2))
    k[: MAX_CHUNK + 10] = -np.inf
    check_compiled([q, k, v], ("f32",) * 3, {})


def test_dynamic_head_dims_over_several_chunks() -> None:
    """Dh dynamic: acc has no static size, so it is a heap buffer (freed at the end)."""
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal(shape).astype(np.float32) for shape in ((3, 4, 8), (KEYS, 2, 8), (KEYS, 2, 8))]
    check_compiled(inputs, ("f32",) * 3, {"causal": True}, dynamic=True)


def check_compiled(inputs: list[np.ndarray], dtypes: tuple, settings: dict, dynamic: bool = False) -> None:
    """The nest, compiled with the query and key counts dynamic (and Dh, when `dynamic`), equals
    the reference."""

    def dims(shape: tuple) -> tuple:
        counted = (None, *shape[1:]) if len(shape) == 3 else shape  # S of q, T of k and v
        return (*counted[:-1], None) if dynamic else counted

    q, k, _ = inputs
    out = lookup_op("attention").output_dtype_for(list(dtypes), settings)
    module = attention_module(dims(q.shape), dims(k.shape), dtypes, out, settings)
    run_stages(NEST_STAGES[:-1], module)
    got = np.empty(q.shape, NUMPY[out])
    compile_module(module).function("f")(*inputs, got)
    want = lookup_op("attention").reference(inputs, settings, out)
    np.testing.assert_allclose(got, want, rtol=TOLERANCE[out], atol=TOLERANCE[out])
