"""softmax, rms_norm and layer_norm over one row of N floats: the compiled nest against numpy.

Each op's nest (`oi_compiler/ops/nests/`) for f32 [R, N] is built as `f(x, out)`, run through
`pipeline.NEST_STAGES` (what `plan.build()` runs) and the JIT, and timed next to the op's numpy
reference (`spec.reference`, the function the differential tests compare with), the two
interleaved: ROUNDS rounds of CALLS calls each, the median over rounds of the mean µs per call.
The nest is timed as its native call alone (ctypes, the memref fields converted once), as a
step calls its kernels. Its results are checked against the reference first (rtol 1e-5, the
differential tests' tolerance).

    python benchmarks/row_reductions.py                       # rows of 64, 1024 and 4096
    python benchmarks/row_reductions.py --lengths 4096 --ir   # also print softmax's optimised IR
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp, f32
from xdsl.ir import Block, Region
from xdsl.rewriter import InsertPoint

from oi_compiler.backend.jit import compile_module
from oi_compiler.ops.registry import lookup_op
from oi_compiler.pipeline import NEST_STAGES, run_stages

OPS = ("softmax", "rms_norm", "layer_norm")
ROUNDS, CALLS = 15, 200


def compiled(op: str, shape: tuple[int, ...]):
    """The op's nest over an f32 `shape`, compiled: (callable f(x, out), optimised LLVM IR)."""
    types = [MemRefType(f32, shape)] * 2
    block = Block(arg_types=types)
    b = Builder(InsertPoint.at_end(block))
    lookup_op(op).nest_builder(b, [block.args[0]], block.args[1], {}, ["f32"], "f32")
    b.insert(func.ReturnOp())
    module = ModuleOp([func.FuncOp("f", (types, []), Region(block))])
    run_stages(NEST_STAGES[:-1], module)
    code = compile_module(module)
    return code.function("f"), code.llvm_ir


def mean_us(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="64,1024,4096")
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--ir", action="store_true", help="print softmax's optimised LLVM IR")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"f32 [{args.rows}, N]; µs per call, median of {ROUNDS} interleaved rounds x {CALLS} calls")
    print(f"{'op':>10} {'N':>6} {'nest':>8} {'numpy':>8} {'numpy/nest':>10}")
    for n in (int(x) for x in args.lengths.split(",")):
        x = rng.standard_normal((args.rows, n)).astype(np.float32) * 4
        for op in OPS:
            fn, ir = compiled(op, x.shape)
            if args.ir and op == "softmax":
                print(ir)
            out = np.empty_like(x)
            reference = lookup_op(op).reference
            fn(x, out)
            np.testing.assert_allclose(out, reference([x], {}, "f32"), rtol=1e-5, atol=1e-6)
            raw = [f for param, a in zip(fn.abi.params, (x, out)) for f in fn._memref_fields(param, a)]
            times = {"nest": [], "numpy": []}
            for _ in range(ROUNDS):
                times["nest"].append(mean_us(lambda: fn._native(*raw), CALLS))
                times["numpy"].append(mean_us(lambda: reference([x], {}, "f32"), CALLS))
            nest, ref = (statistics.median(times[k]) for k in ("nest", "numpy"))
            print(f"{op:>10} {n:>6} {nest:>8.2f} {ref:>8.2f} {ref / nest:>10.2f}")


if __name__ == "__main__":
    main()
