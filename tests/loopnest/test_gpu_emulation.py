"""GPU kernels run on the CPU (`--gpu-emulate`, `runtime/gpu_emulation.emulate`), against numpy.

The kernels are the same generic-form `gpu` dialect modules the NVPTX backend compiles
(tests/backend/test_backend_ptx.py); the emulation runs each block's threads one after another, phase by
phase between barriers, so a kernel that forgets a barrier gives a wrong answer here too.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oi_compiler.backend.ptx import assemble, emit_ptx, ptxas_path
from oi_compiler.errors import PassError
from oi_compiler.graph import parse_mlir
from oi_compiler.runtime.gpu_emulation import emulate, emulated_function


def kernel(name: str, params: str, body: str) -> str:
    """A module holding a gpu.module with one kernel `name(params)`; `body` may use %tid_x/y,
    %bid_x/y, %bdim_x/y and the constants %c0, %c1."""
    types = ", ".join(p.split(":", 1)[1].strip() for p in params.split(",") if p.strip())
    return f"""builtin.module {{
  "gpu.module"() <{{sym_name = "kernels"}}> ({{
    "gpu.func"() <{{function_type = ({types}) -> (), kernel}}> ({{
    ^bb0({params}):
      %tid_x = "gpu.thread_id"() <{{dimension = #gpu<dim x>}}> : () -> index
      %tid_y = "gpu.thread_id"() <{{dimension = #gpu<dim y>}}> : () -> index
      %bid_x = "gpu.block_id"() <{{dimension = #gpu<dim x>}}> : () -> index
      %bid_y = "gpu.block_id"() <{{dimension = #gpu<dim y>}}> : () -> index
      %bdim_x = "gpu.block_dim"() <{{dimension = #gpu<dim x>}}> : () -> index
      %bdim_y = "gpu.block_dim"() <{{dimension = #gpu<dim y>}}> : () -> index
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
{body}
      "gpu.return"() : () -> ()
    }}) {{sym_name = "{name}"}} : () -> ()
  }}) : () -> ()
}}
"""


# y[i] = a * x[i] + y[i] for i < n
AXPY = kernel("axpy", "%x: memref<?xf32>, %y: memref<?xf32>, %a: f32", """
      %n = memref.dim %x, %c0 : memref<?xf32>
      %base = arith.muli %bid_x, %bdim_x : index
      %i = arith.addi %base, %tid_x : index
      %in = arith.cmpi ult, %i, %n : index
      scf.if %in {
        %xi = memref.load %x[%i] : memref<?xf32>
        %yi = memref.load %y[%i] : memref<?xf32>
        %ax = arith.mulf %a, %xi : f32
        %s = arith.addf %ax, %yi : f32
        memref.store %s, %y[%i] : memref<?xf32>
      }
""")

# c[r, k] = 2 * a[r, k] + b[r, k] over a 2-D grid of 2-D blocks (x: columns, y: rows)
ADD2D = kernel("add2d", "%a: memref<?x?xf32>, %b: memref<?x?xf32>, %c: memref<?x?xf32>", """
      %rows = memref.dim %a, %c0 : memref<?x?xf32>
      %cols = memref.dim %a, %c1 : memref<?x?xf32>
      %rbase = arith.muli %bid_y, %bdim_y : index
      %r = arith.addi %rbase, %tid_y : index
      %kbase = arith.muli %bid_x, %bdim_x : index
      %k = arith.addi %kbase, %tid_x : index
      %rin = arith.cmpi ult, %r, %rows : index
      %kin = arith.cmpi ult, %k, %cols : index
      %in = arith.andi %rin, %kin : i1
      scf.if %in {
        %av = memref.load %a[%r, %k] : memref<?x?xf32>
        %bv = memref.load %b[%r, %k] : memref<?x?xf32>
        %two = arith.constant 2.0 : f32
        %a2 = arith.mulf %two, %av : f32
        %s = arith.addf %a2, %bv : f32
        memref.store %s, %c[%r, %k] : memref<?x?xf32>
      }
""")


def reverse_kernel(barrier: bool) -> str:
    """Each block reverses its chunk of the array (the last chunk may be short) through shared
    memory: store your element, barrier, load the mirrored thread's."""
    sync = '"gpu.barrier"() : () -> ()' if barrier else ""
    return kernel("reverse", "%x: memref<?xf32>", f"""
      %n = memref.dim %x, %c0 : memref<?xf32>
      %tile = memref.alloca() : memref<1024xf32, 3>
      %base = arith.muli %bid_x, %bdim_x : index
      %i = arith.addi %base, %tid_x : index
      %start = arith.minui %base, %n : index
      %rest = arith.subi %n, %start : index
      %len = arith.minui %bdim_x, %rest : index
      %in = arith.cmpi ult, %tid_x, %len : index
      scf.if %in {{
        %v = memref.load %x[%i] : memref<?xf32>
        memref.store %v, %tile[%tid_x] : memref<1024xf32, 3>
      }}
      {sync}
      scf.if %in {{
        %last = arith.subi %len, %c1 : index
        %j = arith.subi %last, %tid_x : index
        %w = memref.load %tile[%j] : memref<1024xf32, 3>
        memref.store %w, %x[%i] : memref<?xf32>
      }}
""")


REVERSE = reverse_kernel(barrier=True)
REVERSE_WITHOUT_BARRIER = reverse_kernel(barrier=False)

# C = A @ B: 16x16 tiles of A and B loaded cooperatively into shared memory for each k-tile
MATMUL = kernel("matmul", "%A: memref<?x?xf32>, %B: memref<?x?xf32>, %C: memref<?x?xf32>", """
      %c16 = arith.constant 16 : index
      %c15 = arith.constant 15 : index
      %zero = arith.constant 0.0 : f32
      %M = memref.dim %A, %c0 : memref<?x?xf32>
      %K = memref.dim %A, %c1 : memref<?x?xf32>
      %N = memref.dim %B, %c1 : memref<?x?xf32>
      %As = memref.alloca() : memref<16x16xf32, 3>
      %Bs = memref.alloca() : memref<16x16xf32, 3>
      %rbase = arith.muli %bid_y, %c16 : index
      %row = arith.addi %rbase, %tid_y : index
      %cbase = arith.muli %bid_x, %c16 : index
      %col = arith.addi %cbase, %tid_x : index
      %rin = arith.cmpi ult, %row, %M : index
      %cin = arith.cmpi ult, %col, %N : index
      %kup = arith.addi %K, %c15 : index
      %ktiles = arith.divui %kup, %c16 : index
      %acc = scf.for %t = %c0 to %ktiles step %c1 iter_args(%sum = %zero) -> (f32) {
        %kbase = arith.muli %t, %c16 : index
        %acol = arith.addi %kbase, %tid_x : index
        %acin = arith.cmpi ult, %acol, %K : index
        %ain = arith.andi %rin, %acin : i1
        %av = scf.if %ain -> (f32) {
          %v = memref.load %A[%row, %acol] : memref<?x?xf32>
          scf.yield %v : f32
        } else {
          scf.yield %zero : f32
        }
        memref.store %av, %As[%tid_y, %tid_x] : memref<16x16xf32, 3>
        %brow = arith.addi %kbase, %tid_y : index
        %brin = arith.cmpi ult, %brow, %K : index
        %bin = arith.andi %brin, %cin : i1
        %bv = scf.if %bin -> (f32) {
          %v = memref.load %B[%brow, %col] : memref<?x?xf32>
          scf.yield %v : f32
        } else {
          scf.yield %zero : f32
        }
        memref.store %bv, %Bs[%tid_y, %tid_x] : memref<16x16xf32, 3>
        "gpu.barrier"() : () -> ()
        %s = scf.for %kk = %c0 to %c16 step %c1 iter_args(%p = %sum) -> (f32) {
          %a = memref.load %As[%tid_y, %kk] : memref<16x16xf32, 3>
          %b = memref.load %Bs[%kk, %tid_x] : memref<16x16xf32, 3>
          %ab = arith.mulf %a, %b : f32
          %q = arith.addf %p, %ab : f32
          scf.yield %q : f32
        }
        "gpu.barrier"() : () -> ()
        scf.yield %s : f32
      }
      %inc = arith.andi %rin, %cin : i1
      scf.if %inc {
        memref.store %acc, %C[%row, %col] : memref<?x?xf32>
      }
""")

# out[i] = x[i]^2 + x[next] where next is the following thread of the block (wrapping):
# x[i]^2 is computed before the barrier and used after it
SQUARE_PLUS_NEXT = kernel("square_plus_next", "%x: memref<?xf32>, %out: memref<?xf32>", """
      %tile = memref.alloca() : memref<256xf32, 3>
      %base = arith.muli %bid_x, %bdim_x : index
      %i = arith.addi %base, %tid_x : index
      %v = memref.load %x[%i] : memref<?xf32>
      %sq = arith.mulf %v, %v : f32
      memref.store %v, %tile[%tid_x] : memref<256xf32, 3>
      "gpu.barrier"() : () -> ()
      %t1 = arith.addi %tid_x, %c1 : index
      %next = arith.remui %t1, %bdim_x : index
      %w = memref.load %tile[%next] : memref<256xf32, 3>
      %r = arith.addf %sq, %w : f32
      memref.store %r, %out[%i] : memref<?xf32>
""")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def reverse_reference(x: np.ndarray, grid: int, block: int) -> np.ndarray:
    out = x.copy()
    for b in range(grid):
        chunk = slice(b * block, min((b + 1) * block, len(x)))
        out[chunk] = x[chunk][::-1]
    return out


def emulated_text(text: str) -> str:
    from oi_compiler.ir_context import make_context
    from oi_compiler.passes.gpu_emulate import GpuEmulate

    module = parse_mlir(text, "k.mlir")
    GpuEmulate().apply(make_context(), module)
    module.verify()
    return str(module)


# ----------------------------------------------------------------------------- elementwise


@pytest.mark.parametrize(("n", "block"), [(1000, 128), (37, 16), (5, 32)])
def test_elementwise_1d_with_a_guarded_tail(n: int, block: int) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    expected = np.float32(1.5) * x + y
    emulate(AXPY, "axpy", (ceil_div(n, block),), (block,), x, y, 1.5)
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_elementwise_2d_grid_of_2d_blocks() -> None:
    rng = np.random.default_rng(0)
    rows, cols, block = 45, 70, (16, 8)  # neither divides its block size
    a, b = rng.standard_normal((rows, cols), dtype=np.float32), rng.standard_normal((rows, cols), dtype=np.float32)
    c = np.full((rows, cols), np.nan, dtype=np.float32)
    emulate(ADD2D, "add2d", (ceil_div(cols, block[0]), ceil_div(rows, block[1])), block, a, b, c)
    np.testing.assert_allclose(c, 2 * a + b, rtol=1e-6)


def test_a_grid_smaller_than_the_data_leaves_the_rest_alone() -> None:
    x, y = np.ones(100, dtype=np.float32), np.zeros(100, dtype=np.float32)
    emulate(AXPY, "axpy", (2,), (16,), x, y, 3.0)
    assert (y[:32] == 3).all() and (y[32:] == 0).all()


# ----------------------------------------------------------------------------- shared memory, barriers


def test_reverse_each_block_through_shared_memory() -> None:
    x = np.arange(100, dtype=np.float32)
    expected = reverse_reference(x, 4, 32)
    emulate(REVERSE, "reverse", 4, 32, x)
    np.testing.assert_array_equal(x, expected)


def test_a_missing_barrier_gives_a_wrong_answer() -> None:
    """Without the barrier, thread t reads tile[31 - t] before thread 31 - t has written it: the
    emulation runs thread 0 to the end before thread 1 starts, so the race shows."""
    x = np.arange(1, 129, dtype=np.float32)
    expected = reverse_reference(x, 4, 32)
    emulate(REVERSE_WITHOUT_BARRIER, "reverse", 4, 32, x)
    assert not np.array_equal(x, expected)
    # the second half of each block reads what earlier threads wrote; the first half does not
    for b in range(4):
        lo, hi = x[b * 32 : b * 32 + 16], x[b * 32 + 16 : (b + 1) * 32]
        np.testing.assert_array_equal(hi, expected[b * 32 + 16 : (b + 1) * 32])
        assert not np.array_equal(lo, expected[b * 32 : b * 32 + 16])


def test_a_value_computed_before_a_barrier_is_used_after_it() -> None:
    rng = np.random.default_rng(1)
    block, grid = 64, 5
    x = rng.standard_normal(block * grid, dtype=np.float32)
    out = np.zeros_like(x)
    emulate(SQUARE_PLUS_NEXT, "square_plus_next", grid, block, x, out)
    chunks = x.reshape(grid, block)
    expected = (chunks * chunks + np.roll(chunks, -1, axis=1)).reshape(-1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    text = emulated_text(SQUARE_PLUS_NEXT)
    # %sq goes through a per-thread buffer: stored in the first phase, loaded in the second
    assert "%sq_per_thread = memref.alloca(%threads) : memref<?xf32>" in text
    assert "memref.store %sq, %sq_per_thread[%thread] : memref<?xf32>" in text
    assert "%sq_1 = memref.load %sq_per_thread[%thread_1] : memref<?xf32>" in text


def test_a_private_buffer_living_across_a_barrier_gets_a_row_per_thread() -> None:
    text = kernel("k", "%x: memref<?xf32>, %out: memref<?xf32>", """
      %priv = memref.alloca() : memref<2xf32>
      %tile = memref.alloca() : memref<256xf32, 3>
      %base = arith.muli %bid_x, %bdim_x : index
      %i = arith.addi %base, %tid_x : index
      %v = memref.load %x[%i] : memref<?xf32>
      %v2 = arith.mulf %v, %v : f32
      memref.store %v, %priv[%c0] : memref<2xf32>
      memref.store %v2, %priv[%c1] : memref<2xf32>
      memref.store %v, %tile[%tid_x] : memref<256xf32, 3>
      "gpu.barrier"() : () -> ()
      %t1 = arith.addi %tid_x, %c1 : index
      %next = arith.remui %t1, %bdim_x : index
      %w = memref.load %tile[%next] : memref<256xf32, 3>
      %p0 = memref.load %priv[%c0] : memref<2xf32>
      %p1 = memref.load %priv[%c1] : memref<2xf32>
      %r0 = arith.addf %p0, %p1 : f32
      %r = arith.addf %r0, %w : f32
      memref.store %r, %out[%i] : memref<?xf32>
""")
    assert "%priv_per_thread = memref.alloca(%threads) : memref<?x2xf32>" in emulated_text(text)
    x = np.random.default_rng(2).standard_normal(96, dtype=np.float32)
    out = np.zeros_like(x)
    emulate(text, "k", 3, 32, x, out)
    c = x.reshape(3, 32)
    np.testing.assert_allclose(out, (c + c * c + np.roll(c, -1, axis=1)).reshape(-1), rtol=1e-6)


def test_launch_func_in_host_code_calls_the_emulated_kernel() -> None:
    from oi_compiler.backend.jit import compile_module
    from oi_compiler.ir_context import make_context
    from oi_compiler.passes.gpu_emulate import GpuEmulate

    text = """builtin.module attributes {gpu.container_module} {
  func.func @host(%x: memref<?xf32>, %n: index) {
    %c1 = arith.constant 1 : index
    %c32 = arith.constant 32 : index
    %c31 = arith.constant 31 : index
    %up = arith.addi %n, %c31 : index
    %grid = arith.divui %up, %c32 : index
    "gpu.launch_func"(%grid, %c1, %c1, %c32, %c1, %c1, %x) <{kernel = @kernels::@double, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0>}> : (index, index, index, index, index, index, memref<?xf32>) -> ()
    func.return
  }
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<?xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<?xf32>):
      %c0 = arith.constant 0 : index
      %g = "gpu.global_id"() <{dimension = #gpu<dim x>}> : () -> index
      %n = memref.dim %x, %c0 : memref<?xf32>
      %in = arith.cmpi ult, %g, %n : index
      scf.if %in {
        %v = memref.load %x[%g] : memref<?xf32>
        %d = arith.addf %v, %v : f32
        memref.store %d, %x[%g] : memref<?xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "double"} : () -> ()
  }) : () -> ()
}
"""
    module = parse_mlir(text, "host.mlir")
    GpuEmulate().apply(make_context(), module)
    module.verify()
    assert "func.call @double(%x, %grid, %c1, %c1, %c32, %c1, %c1)" in str(module)
    x = np.arange(70, dtype=np.float32)
    compile_module(module).function("host")(x, 70)
    np.testing.assert_array_equal(x, 2 * np.arange(70, dtype=np.float32))


@pytest.mark.parametrize(("m", "n", "k"), [(64, 48, 80), (37, 29, 53), (5, 70, 3)])
def test_tiled_matmul(m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(m * n * k)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    c = np.full((m, n), np.nan, dtype=np.float32)
    emulate(MATMUL, "matmul", (ceil_div(n, 16), ceil_div(m, 16)), (16, 16), a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


def test_the_matmul_loop_over_k_tiles_wraps_the_phases() -> None:
    text = emulated_text(MATMUL)
    module = parse_mlir(text, "emulated.mlir")
    from xdsl.dialects import scf

    block_x = next(op for op in module.walk() if isinstance(op, scf.ForOp) and op.body.block.args[0].name_hint == "bid_x")
    # in a block: the shared tiles, the phase before the loop, the carried sum's initial value,
    # the loop over the k-tiles, the phase after it
    kinds = [op.name for op in block_x.body.block.ops]
    assert kinds[:2] == ["memref.alloca", "memref.alloca"] and kinds[-1] == "scf.yield"
    fors = [op for op in block_x.body.block.ops if isinstance(op, scf.ForOp)]
    assert [op.body.block.args[0].name_hint for op in fors] == ["tid_z", "tid_z", "t", "tid_z"]
    # the loop over the k-tiles holds two phases, each a loop nest over the block's threads
    k_tiles = fors[2]
    phases = [op for op in k_tiles.body.block.ops if isinstance(op, scf.ForOp)]
    assert len(phases) == 2 and all(op.body.block.args[0].name_hint.startswith("tid_z") for op in phases)
    # the carried sum is a per-thread buffer; nothing of the GPU is left
    assert "%sum_per_thread = memref.alloca(%threads) : memref<?xf32>" in text
    assert "gpu." not in text and ", 3>" not in text


@pytest.mark.skipif(ptxas_path() is None, reason="no ptxas (pip install nvidia-cuda-nvcc)")
def test_the_tiled_matmul_assembles_for_the_gpu() -> None:
    ptx = emit_ptx(parse_mlir(MATMUL, "matmul.mlir"))
    assert "bar.sync" in ptx and "ld.shared" in ptx and "st.shared" in ptx
    assert len(assemble(ptx, "sm_90")) > 0


# ----------------------------------------------------------------------------- refusals


def test_a_barrier_under_thread_dependent_control_flow_is_refused() -> None:
    text = kernel("k", "%x: memref<64xf32>", """
      %c16 = arith.constant 16 : index
      %lo = arith.cmpi ult, %tid_x, %c16 : index
      scf.if %lo {
        "gpu.barrier"() : () -> ()
      }
""")
    with pytest.raises(PassError, match=r"k\.mlir:17:9: error: gpu-emulate: a gpu\.barrier under an scf\.if whose "
                                        r"condition depends on the thread id \(at k\.mlir:16:7\)"):  # fmt: skip
        emulated_text(text)


def test_a_barrier_in_a_loop_with_thread_dependent_bounds_is_refused() -> None:
    text = kernel("k", "%x: memref<64xf32>", """
      scf.for %j = %c0 to %tid_x step %c1 {
        "gpu.barrier"() : () -> ()
      }
""")
    with pytest.raises(PassError, match=r"k\.mlir:15:9: .*scf\.for whose bounds depend on the thread id"):
        emulated_text(text)


def test_a_barrier_in_a_loop_with_bounds_loaded_from_memory_is_refused() -> None:
    """Another thread may have written the bound: not provably the same for the whole block."""
    text = kernel("k", "%x: memref<64xindex>", """
      %n = memref.load %x[%c0] : memref<64xindex>
      scf.for %j = %c0 to %n step %c1 {
        "gpu.barrier"() : () -> ()
      }
""")
    with pytest.raises(PassError, match=r"k\.mlir:16:9: .*bounds are not provably the same for every thread"):
        emulated_text(text)


def test_a_memref_living_across_a_barrier_is_refused() -> None:
    text = kernel("k", "%x: memref<64xf32>", """
      %v = memref.subview %x[%tid_x] [4] [1] : memref<64xf32> to memref<4xf32, strided<[1], offset: ?>>
      "gpu.barrier"() : () -> ()
      %e = memref.load %v[%c0] : memref<4xf32, strided<[1], offset: ?>>
      memref.store %e, %x[%tid_x] : memref<64xf32>
""")
    with pytest.raises(PassError, match=r"k\.mlir:14:7: .*%v of type memref<4xf32.* lives across a gpu\.barrier"):
        emulated_text(text)


def test_gpu_ops_without_an_emulation_are_refused() -> None:
    text = kernel("k", "%x: memref<64xf32>", """
      %l = "gpu.lane_id"() : () -> index
""")
    with pytest.raises(PassError, match=r"k\.mlir:14:7: .*gpu\.lane_id cannot be emulated"):
        emulated_text(text)


def test_an_unknown_kernel_is_an_error() -> None:
    from oi_compiler.errors import ExecutionError

    with pytest.raises(ExecutionError, match=r"no kernel @nope \(kernels: @axpy\)"):
        emulated_function(AXPY, "nope")


# ----------------------------------------------------------------------------- properties


@settings(max_examples=30, deadline=None, derandomize=True)
@given(n=st.integers(0, 300), block=st.integers(1, 64), extra_blocks=st.integers(-2, 2),
       which=st.sampled_from(["axpy", "reverse"]))  # fmt: skip
def test_random_grids_blocks_and_lengths(n: int, block: int, extra_blocks: int, which: str) -> None:
    grid = max(0, ceil_div(n, block) + extra_blocks)
    x = np.arange(1, n + 1, dtype=np.float32)
    if which == "axpy":
        y = np.ones(n, dtype=np.float32)
        expected = y.copy()
        covered = min(n, grid * block)
        expected[:covered] += 2 * x[:covered]
        emulate(AXPY, "axpy", grid, block, x, y, 2.0)
        np.testing.assert_array_equal(y, expected)
    else:
        expected = reverse_reference(x, grid, block)
        emulate(REVERSE, "reverse", (grid, 1, 1), (block, 1, 1), x)
        np.testing.assert_array_equal(x, expected)
