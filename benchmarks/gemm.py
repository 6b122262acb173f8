"""f32 GEMM `C += A @ B` scheduled with oi's Accera-style loop nests, against OpenBLAS (numpy,
one thread) and a numba loop nest, in one run.

    OPENBLAS_NUM_THREADS is pinned to 1 here, before numpy loads.
    .venv/bin/python benchmarks/gemm.py [--sizes 256,512,1024] [--reps 7]

The oi schedule is the classic one (BLIS/Accera's MLAS-like): j tiles of 256 columns, k tiles
of 128, i tiles of 6 rows, j tiles of 16 inside; order j, k, i, jj, kk, ii, jjj. Caches:
B's 128x256 panel packed as BLIS packs it, in 16-column slivers: a multicache (index=kk,
trigger_index=i) whose block at kk is 128x16 and whose leading dimension is jj, filled once
before the i loop, so every row tile streams each sliver contiguously; A's 6x128 panel packed
column-major (LAST_MAJOR, so each kk reads 6 consecutive floats); C's 6x16 tile accumulated in
a cache at kk (96 floats: registers). ii is unrolled and jjj
vectorised: the inner loop is 12 `vfmadd231ps` on ymm registers. Variants drop the caches,
or add double buffering of B's panel (the next k panel is packed while the current one is
used; on a CPU the copy is synchronous), so each feature's effect shows. On an AVX-512 host one
more variant uses 512-bit vectors (`oi.Target(vector_bytes=64)`; LLVM prefers 256-bit ones on
these CPUs otherwise): a 6x64 tile in 24 zmm accumulators, NC 1024, KC 256, A read in place
(tune_gemm.py's winner family). Timings interleave the implementations and report medians (the
machine is shared and noisy).
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy loads OpenBLAS

import argparse  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import oi_compiler as oi  # noqa: E402


def scheduled_gemm(n: int, **options):
    """`gemm_plan(n, **options)` built: the function `gemm(A, B, C)`."""
    plan, arrays = gemm_plan(n, **options)
    return plan.build(args=arrays, name="gemm")


def gemm_plan(n: int, caches: bool = True, double_buffer: bool = False, nc: int = 256, kc: int = 128,
              mr: int = 6, nr: int = 16, vector_bytes: int | None = None, pack_a: bool = True, threads: int = 1):  # fmt: skip
    """The schedule above as a plan, and its arrays (A, B, C); `threads` > 1: the j loop parallel.
    benchmarks/tune_gemm.py calls it with oi.Parameters for the sizes it searches."""
    A = oi.Array(role=oi.Role.INPUT, shape=(n, n), name="A")
    B = oi.Array(role=oi.Role.INPUT, shape=(n, n), name="B")
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(n, n), name="C")
    nest = oi.Nest(shape=(n, n, n))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    jj = schedule.split(j, min(nc, n))
    kk = schedule.split(k, min(kc, n))
    ii = schedule.split(i, mr)
    jjj = schedule.split(jj, nr)
    schedule.reorder(j, k, i, jj, kk, ii, jjj)
    plan = schedule.create_plan(oi.Target(vector_bytes=vector_bytes))
    if caches:
        plan.cache(B, index=kk, trigger_index=i, double_buffer=double_buffer)
        if pack_a:
            plan.cache(A, index=jj, layout=oi.Layout.LAST_MAJOR)
        plan.cache(C, index=kk)
    plan.unroll(ii)
    plan.vectorize(jjj)
    if threads > 1:
        plan.parallelize(j, max_threads=threads)
    return plan, (A, B, C)


def numba_gemm():
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(fastmath=True, cache=False)
    def gemm(a, b, c):
        n, kdim = a.shape
        m = b.shape[1]
        for i in range(n):
            for k in range(kdim):
                aik = a[i, k]
                for j in range(m):
                    c[i, j] += aik * b[k, j]

    return gemm


def inner_loop_fmas(asm: str) -> str:
    """The micro-kernel: of the loops that branch back to their own first block, the one densest in
    FMAs; its FMA count, register kind, distinct accumulators and stack accesses (spills)."""
    best = None
    for block in re.split(r"\n(?=\.LBB)", asm):
        label = block.split(":", 1)[0]
        back = re.search(rf"\sj\w+\s+{re.escape(label)}\s*$", block, re.M)
        if not back:
            continue
        body = block[: back.end()]
        fmas = re.findall(r"vfmadd\w+\s+([^\n]*)", body)
        if not fmas:
            continue
        density = len(fmas) / len(body.splitlines())
        if best is None or density > best[0]:
            kind = re.findall(r"%([xyz]mm)", fmas[0])[-1]
            accumulators = len(set(re.findall(r"(%[xyz]mm\d+)\s*$", "\n".join(fmas), re.M)))
            best = (density, len(fmas), kind, accumulators, len(re.findall(r"\(%rsp\)", body)))
    if best is None:
        return "no FMA loop"
    _, count, kind, accumulators, stack = best
    return f"{count} vfmadd on {kind}, {accumulators} accumulators, {stack} stack accesses"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    nb = numba_gemm()
    try:
        oi.Target(vector_bytes=64)
        avx512 = True
    except oi.VectorWidthError:
        avx512 = False
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.zeros((n, n), np.float32)
        variants = {
            "oi": scheduled_gemm(n),
            "oi, no caches": scheduled_gemm(n, caches=False),
            "oi, + double buffer": scheduled_gemm(n, double_buffer=True),
        }
        if avx512:  # 512-bit vectors: a 6x64 tile (24 zmm accumulators), NC 1024, KC 256, A read in place
            variants["oi, 512-bit 6x64"] = scheduled_gemm(n, nc=1024, kc=256, nr=64, vector_bytes=64, pack_a=False)
        expected = a.astype(np.float64) @ b
        for name, fn in variants.items():
            c[:] = 0
            fn(a, b, c)
            error = np.abs(c - expected).max() / np.abs(expected).max()
            assert error < 1e-5, f"{name} at n={n}: relative error {error}"
        impls = {name: (lambda fn=fn: fn(a, b, c)) for name, fn in variants.items()}
        impls["OpenBLAS (numpy, 1 thread)"] = lambda: np.matmul(a, b, out=c)
        if nb is not None:
            nb(a, b, c)  # compile outside the timing
            impls["numba loop nest"] = lambda: nb(a, b, c)
        times: dict[str, list[float]] = {name: [] for name in impls}
        for _ in range(args.reps):
            for name, run in impls.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        gflops = {name: 2 * n**3 / statistics.median(ts) / 1e9 for name, ts in times.items()}
        rows.append((n, gflops, inner_loop_fmas(variants["oi"].asm)))
    names = list(rows[0][1])
    wide = "oi, 512-bit 6x64" in names
    print(f"{'N':>5} " + " ".join(f"{name:>26}" for name in names) + "   oi/OpenBLAS  oi/numba"
          + ("  512-bit/OpenBLAS" if wide else "") + "  inner loop")  # fmt: skip
    for n, gflops, fmas in rows:
        blas = gflops["OpenBLAS (numpy, 1 thread)"]
        numba_ratio = f"{gflops['oi'] / gflops['numba loop nest']:8.2f}x" if "numba loop nest" in gflops else "       -"
        wide_ratio = f"{gflops['oi, 512-bit 6x64'] / blas:17.2f}x" if wide else ""
        print(f"{n:>5} " + " ".join(f"{gflops[name]:>20.1f} GF/s" for name in names)
              + f"   {gflops['oi'] / blas:10.2f}x {numba_ratio} {wide_ratio}  {fmas}")  # fmt: skip


if __name__ == "__main__":
    main()
