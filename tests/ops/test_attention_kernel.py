"""The shape of the attention kernel (oi_compiler/ops/nests/attention.py), which the decode step
spends its time in at long context: each key and value row read in one generic, exp computed
once per score, the value mix accumulated in registers. The results are checked against the
reference elsewhere (test_op_nests.py, test_ops_decoder.py, tests/cpu, tests/e2e)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from xdsl.builder import Builder
from xdsl.dialects import func
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import DYNAMIC_INDEX, MemRefType, ModuleOp, f32
from xdsl.dialects.linalg.ops import GenericOp
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint

from oi_compiler.ops.registry import lookup_op

pytestmark = pytest.mark.usefixtures("private_compile_cache")

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny_decoder.oi"


def attention_module(heads: int, kv_heads: int, head_dim: int) -> ModuleOp:
    """`f(q [H, Dh], k [?, Hk, Dh], v [?, Hk, Dh], out [H, Dh])`: the nest of one decode step."""
    types = [MemRefType(f32, [heads, head_dim])]
    types += [MemRefType(f32, [DYNAMIC_INDEX, kv_heads, head_dim])] * 2 + [MemRefType(f32, [heads, head_dim])]
    block = Block(arg_types=types)
    b = Builder(InsertPoint.at_end(block))
    lookup_op("attention").nest_builder(b, list(block.args[:3]), block.args[3], {}, ["f32"] * 3, "f32")
    b.insert(func.ReturnOp())
    return ModuleOp([func.FuncOp("f", (types, []), Region(block))])


@pytest.mark.parametrize(("heads", "kv_heads", "head_dim"), [(4, 2, 8), (8, 4, 64), (4, 1, 8), (4, 4, 8)])
def test_each_key_and_value_row_is_read_by_one_generic(heads: int, kv_heads: int, head_dim: int) -> None:
    module = attention_module(heads, kv_heads, head_dim)
    q, k, v, _ = module.body.block.ops.first.body.block.args  # type: ignore[union-attr]
    generics = [op for op in module.walk() if isinstance(op, GenericOp)]
    readers = {name: [g for g in generics if value in g.inputs] for name, value in (("k", k), ("v", v))}
    assert [len(r) for r in readers.values()] == [1, 1]
    # the q.k generic walks t (k's first index) outside the heads and d: one pass over k for all heads
    qk = readers["k"][0]
    k_map = qk.indexing_maps.data[list(qk.inputs).index(k)].data
    assert str(k_map.results[0]) == "d1" and len(qk.iterator_types.data) == 5
    assert sum(isinstance(op, mathd.ExpOp) for op in module.walk()) == 1  # exp(score - max) once per score


def test_the_decoder_attention_kernel_keeps_its_sums_in_registers() -> None:
    """In the tiny decoder's step: no libm call; the sum of exps is vector code; the value mix
    (weights . v) loop keeps the output rows in vector registers: no store inside it. The output
    used to be accumulated in place through an argument that may alias v, stored every t."""
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
    kernel = kernels[0]
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
