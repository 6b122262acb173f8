"""TVM's hand schedule of the f32 GEMM, for benchmarks/tune_gemm.py's table (TVM is not a dependency:
`.venv/bin/pip install apache-tvm`; without it `tvm_gemm` returns (None, why)).

The schedule is the plain one of TVM's "How to optimize GEMM on CPU" tutorial, written with
TensorIR (TVM 0.27 has no TE schedules): B packed in NR=16-column slivers by its own stage
(`packedB[j // 16, k, j % 16]`), a 4x16 register tile of C (a write cache at the tile, ii
unrolled, the 16 columns vectorised), k split by 4 and unrolled inside; with `threads > 1`, the
outer i loop parallel (TVM's thread pool, `TVM_NUM_THREADS`). Target `{"kind": "llvm", "mcpu": <the host CPU>}`. It
computes C = A @ B (numpy's matmul does the same); oi's plans compute C += A @ B, the same flops.
"""

from __future__ import annotations

import os

import numpy as np

MR, NR, KU = 4, 16, 4


def tvm_available() -> tuple[bool, str]:
    try:
        import tvm  # noqa: F401
        from tvm import s_tir, te  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means "not here"
        return False, f"not available ({type(e).__name__}: {e}); `.venv/bin/pip install apache-tvm` to add it"
    return True, f"apache-tvm {tvm.__version__}"


def tvm_gemm(n: int, threads: int = 1):
    """(a function f(a, b, c) of numpy arrays computing c = a @ b, note), or (None, why)."""
    ok, note = tvm_available()
    if not ok:
        return None, note
    import tvm
    from tvm import s_tir, te

    A = te.placeholder((n, n), name="A")
    B = te.placeholder((n, n), name="B")
    packed = te.compute((n // NR, n, NR), lambda x, y, z: B[y, x * NR + z], name="packedB")
    k = te.reduce_axis((0, n), "k")
    C = te.compute((n, n), lambda i, j: te.sum(A[i, k] * packed[j // NR, k, j % NR], axis=k), name="C")
    sch = s_tir.Schedule(te.create_prim_func([A, B, C]))
    block = sch.get_sblock("C")
    i, j, kk = sch.get_loops(block)
    io, ii = sch.split(i, [None, MR])
    jo, ji = sch.split(j, [None, NR])
    ko, ki = sch.split(kk, [None, KU])
    sch.reorder(io, jo, ko, ki, ii, ji)
    cc = sch.cache_write(block, 0, "local")
    sch.reverse_compute_at(cc, jo)
    sch.unroll(ki)
    sch.unroll(ii)
    sch.vectorize(ji)
    if threads > 1:
        sch.parallel(io)  # before decompose_reduction, as vectorize: TVM checks the loop's dataflow
    init = sch.decompose_reduction(block, ko)
    sch.vectorize(sch.get_loops(init)[-1])
    _, _, ci, cj = sch.get_loops(cc)
    sch.vectorize(cj)
    pack = sch.get_sblock("packedB")
    px, py, pz = sch.get_loops(pack)
    sch.vectorize(pz)
    if threads > 1:
        sch.parallel(px)
    target = tvm.target.Target({"kind": "llvm", "mcpu": _host_cpu()})
    lib = tvm.compile(sch.mod, target=target)
    fn = lib["main"]
    dev = tvm.cpu()

    def run(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
        ta, tb, tc = (tvm.runtime.from_dlpack(x) for x in (a, b, c))  # no copies: 64-byte aligned arrays
        fn(ta, tb, tc)

    if threads > 1:
        os.environ["TVM_NUM_THREADS"] = str(threads)  # read when TVM's thread pool starts, at the first parallel call
    return run, note


def aligned(array: np.ndarray, alignment: int = 64) -> np.ndarray:
    """A copy of `array` whose data starts on an `alignment`-byte boundary (TVM takes only those)."""
    raw = np.empty(array.nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    out = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def _host_cpu() -> str:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    return llvm.get_host_cpu_name()
