"""matmul's default GPU mapping: output tiles per block, A and B tiles in shared memory.

The contraction `C[i, j] += A[i, k] * B[k, j]` becomes an Accera-style `oi.nest` with a GPU plan,
and the loop-nest GPU machinery (`--tile`, `--cache`, `--map-gpu`, loopnest/gpu_mapping.py)
maps it, as it maps a user's plan:

    split i, j, k by T (16, or the extent when smaller); order i, j, k, ii, jj, kk
    bind i: BLOCK_Y, j: BLOCK_X, ii: THREAD_Y, jj: THREAD_X
    cache A and B at ii in SHARED memory (a T x T tile each, filled by the whole block)

Each thread sums its element over k in ascending order, a separate multiply and add as the
registry's nest does, so the result is the nest's; C must hold zeros before (the op's
`linalg.fill`, launched first). Taken for 2-d f32 and f64 operands; other matmuls keep the
nest's generic mapping (one thread per output element).
"""

from __future__ import annotations

from xdsl.builder import Builder
from xdsl.dialects import arith, func, gpu, memref
from xdsl.dialects.builtin import Float32Type, Float64Type, IndexType, MemRefType, ModuleOp
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.dialects.oi_nest import NestOp
from oi_compiler.loopnest.affine_lowering import lower_affine
from oi_compiler.loopnest.attrs import to_attr
from oi_compiler.loopnest.caching import apply_caches
from oi_compiler.loopnest.double_buffer import double_buffer
from oi_compiler.loopnest.gpu_mapping import launch_of, map_nest
from oi_compiler.loopnest.materialize import materialize
from oi_compiler.loopnest.unroll import unroll_marked

TILE = 16


def shared_tiles_apply(types: list[MemRefType]) -> bool:
    """Whether (A, B, C) take the shared-tile mapping: 2-d, no empty dim (the tiles split every
    dim), one float element type of f32/f64."""
    elements = {t.element_type for t in types}
    return all(len(t.get_shape()) == 2 and 0 not in t.get_shape() for t in types) and len(elements) == 1 and \
        isinstance(next(iter(elements)), Float32Type | Float64Type)  # fmt: skip


def shared_tiles_kernel(name: str, types: list[MemRefType]) -> tuple[gpu.FuncOp, tuple, tuple]:
    """`gpu.func @name(A, B, C) kernel` accumulating A x B into C; its grid and block."""
    (m, k), (_, n) = types[0].get_shape(), types[1].get_shape()
    function = func.FuncOp(name, (types, []), Region(Block(arg_types=types)))
    a, b, c = function.body.block.args
    body = Block(arg_types=[IndexType()] * 3)
    i, j, kk = body.args
    logic = Builder(InsertPoint.at_end(body))
    total = logic.insert(memref.LoadOp.get(c, [i, j])).res
    product = logic.insert(arith.MulfOp(logic.insert(memref.LoadOp.get(a, [i, kk])).res,
                                        logic.insert(memref.LoadOp.get(b, [kk, j])).res)).result  # fmt: skip
    logic.insert(memref.StoreOp.get(logic.insert(arith.AddfOp(total, product)).result, c, [i, j]))
    nest = NestOp([a, b, c], [m, n, k], ["i", "j", "k"], ["A", "B", "C"], ["input", "input", "input_output"],
                  Region(body))  # fmt: skip
    tiles = {"i": min(TILE, m), "j": min(TILE, n), "k": min(TILE, k)}
    nest.attributes["oi.schedule"] = to_attr({"splits": [[x, f"{x}{x}", t] for x, t in tiles.items()],
                                              "order": ["i", "j", "k", "ii", "jj", "kk"]})  # fmt: skip
    nest.attributes["oi.plan"] = to_attr({
        "caches": [{"name": f"{x}_cache0", "source": x, "index": "ii", "location": "shared"} for x in "AB"],
        "target": {"category": "gpu", "arch": "sm_80", "max_threads_per_block": 1024},
        "bind": {"i": "block_y", "j": "block_x", "ii": "thread_y", "jj": "thread_x"},
    })  # fmt: skip
    function.body.block.add_ops([nest, func.ReturnOp()])
    module = ModuleOp([function])  # map_nest replaces the function by a gpu.module holding a copy
    for step in (materialize, apply_caches, double_buffer, map_nest):
        step(nest)
    kernel = next(op for op in module.walk() if isinstance(op, gpu.FuncOp))
    mapped = next(op for op in kernel.walk() if isinstance(op, NestOp))
    unroll_marked(mapped)
    for op in list(mapped.body.block.ops):
        op.detach()
        Rewriter.insert_op(op, InsertPoint.before(mapped))
    Rewriter.erase_op(mapped)
    lower_affine(kernel.body)
    kernel.detach()
    grid, block = launch_of(kernel)
    return kernel, grid, block
