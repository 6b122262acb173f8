"""f32 GEMM `C += A @ B` tuned by `oi.tune` over a grid of BLIS-style schedules, side by side with
benchmarks/gemm.py's hand-picked schedule, OpenBLAS (numpy) and TVM's hand schedule, on one thread
and on two, with the search time.

    OPENBLAS_NUM_THREADS is pinned to 1 here, before numpy loads (two threads: switched at run time).
    .venv/bin/python benchmarks/tune_gemm.py [--sizes 1024,2048] [--jobs 1] [--reps 7] [--quick] [--no-cache]
                                            [--threads 2] [--no-tvm]

The grid (order j, k, i, jj, kk, ii, jjj; B's KC x NC panel packed in NR-column slivers, a
multicache at kk triggered at i; C's MR x NR tile accumulated in a cache at kk, which lives in
registers; ii unrolled, jjj vectorised) has as parameters: the j panel NC (jj), the k panel KC
(kk), the register tile MR x NR (ii, jjj), the vector width VB (`oi.Target(vector_bytes=VB)`: 32
is LLVM's default on AVX-512 Intel CPUs, 64 its 512-bit vectors; 64 only where the host has
AVX-512F) and PACK_A: A's MR x KC panel packed column-major at jj, or A read in place. Tiles
keep 8 to 24 vector accumulators (MR * NR / lanes). gemm.py's hand schedule (NC=256, KC=128,
6x16, 256-bit, A packed) is timed beside the winner, not searched. The search builds, checks
(against numpy) and briefly times every point in `--jobs` processes, then times the fastest
`--finalists` again here; the table's timings interleave tuned, hand, OpenBLAS and TVM and report
medians (the machine is shared and noisy). A second run reuses the tuning database's winner (the
search time shown is the stored one) unless `--no-cache`.

Two threads (`--threads 2`): the one-thread winner's tile, width and packing with
`plan.parallelize(j, max_threads=2)` and NC in {N/2, N/4} (the j loop must have a chunk per
thread), a second small search, against OpenBLAS set to two threads (`openblas_set_num_threads`
through ctypes) and TVM's schedule with its outer loop parallel.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy loads OpenBLAS

import argparse  # noqa: E402
import ctypes  # noqa: E402
import glob  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import oi_compiler as oi  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its neighbours, here and in tuning workers
import gemm  # noqa: E402
from gemm import inner_loop_fmas, scheduled_gemm  # noqa: E402
from tvm_gemm import aligned, tvm_available, tvm_gemm  # noqa: E402

P_N, P_NC, P_KC, P_MR, P_NR, P_VB, P_PACK_A, P_THREADS = oi.create_parameters()


def gemm_plan():
    """benchmarks/gemm.py's GEMM with the grid's parameters in place of its sizes."""
    return gemm.gemm_plan(int(P_N), nc=int(P_NC), kc=int(P_KC), mr=P_MR, nr=P_NR, vector_bytes=P_VB,
                          pack_a=P_PACK_A, threads=int(P_THREADS))  # fmt: skip


def gemm_reference(a, b, c):
    c += a @ b


def host_vector_bytes() -> list[int]:
    """The widths this host can do, of 32 and 64."""
    widths = []
    for width in (32, 64):
        try:
            oi.Target(vector_bytes=width)
            widths.append(width)
        except oi.VectorWidthError:
            pass
    return widths


def gemm_grid(n: int, quick: bool = False):
    choices = {
        P_N: [n],
        P_NC: [1024] if quick else [512, 1024],
        P_KC: [256],
        P_MR: [4, 6, 12],
        P_NR: [16, 32, 64],
        P_VB: host_vector_bytes(),
        P_PACK_A: [True, False],
        P_THREADS: [1],
    }

    def fits(n, nc, kc, mr, nr, vb, pack_a, threads):
        # 8 to 24 vector accumulators (AVX-512 and AVX-512VL have 32 zmm/ymm registers; AVX2 16 ymm)
        lanes = vb // 4
        most = 24 if 64 in choices[P_VB] else 12
        return nr % lanes == 0 and 8 <= mr * nr // lanes <= most

    return oi.create_parameter_grid(choices, filter_func=fits)


def parallel_grid(n: int, winner: dict, threads: int):
    """The one-thread winner with `threads` threads over j: NC small enough for a chunk per thread."""
    ncs = sorted({nc for nc in (n // threads, n // (2 * threads)) if nc >= 128}, reverse=True)
    params = {"P_N": P_N, "P_NC": P_NC, "P_KC": P_KC, "P_MR": P_MR, "P_NR": P_NR, "P_VB": P_VB,
              "P_PACK_A": P_PACK_A, "P_THREADS": P_THREADS}  # fmt: skip
    choices = {p: [winner[name]] for name, p in params.items()}
    choices[P_NC], choices[P_THREADS] = ncs, [threads]
    return oi.create_parameter_grid(choices)


def tune_space():
    """For `oi-tune benchmarks/tune_gemm.py`: N=1024 (OI_TUNE_GEMM_N to change it)."""
    return gemm_plan, gemm_grid(int(os.environ.get("OI_TUNE_GEMM_N", "1024"))), gemm_reference


def openblas_threads():
    """numpy's OpenBLAS `set_num_threads`, or None (another BLAS, or the symbol not found)."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__path__[0]), "numpy.libs", "*openblas*.so*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):  # fmt: skip
            if hasattr(lib, name):
                return getattr(lib, name)
    return None


def check(fn, a, b, c, what: str) -> None:
    """`fn` computes c = a @ b (to float32 rounding)."""
    c[...] = 0
    fn(a, b, c)
    expected = a.astype(np.float64) @ b
    error = np.abs(c - expected).max() / np.abs(expected).max()
    assert error < 1e-5, f"{what}: relative error {error}"


def time_interleaved(impls: dict, reps: int, settle_s: float = 0.0) -> dict[str, float]:
    """Median seconds per call of each implementation, `reps` rounds in turn (after one warm-up).
    `settle_s`: a pause before each call, for the multi-threaded rows: OpenBLAS's threads spin for
    a while after a call (up to ~0.1 s), and a call timed right after one would share the cores."""
    for run in impls.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in impls}
    for _ in range(reps):
        for name, run in impls.items():
            time.sleep(settle_s)
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--reps", type=int, default=7, help="interleaved timing rounds of the final table")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds of the search's finalists")
    parser.add_argument("--finalists", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smaller grid (NC=1024 only)")
    parser.add_argument("--no-cache", action="store_true", help="search even when the tuning database has a winner")
    parser.add_argument("--threads", type=int, default=2, help="the parallel rows' threads (1: none)")
    parser.add_argument("--no-tvm", action="store_true", help="leave TVM out even when it is installed")
    args = parser.parse_args()

    set_blas_threads = openblas_threads()
    rng = np.random.default_rng(0)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        grid = gemm_grid(n, args.quick)
        result = oi.tune(gemm_plan, grid, name="gemm", reference=gemm_reference, jobs=args.jobs,
                         repeats=args.repeats, finalists=args.finalists, use_db=not args.no_cache,
                         progress=True)  # fmt: skip
        print(f"N={n}: {len(grid)} candidates, {sum(c.status == 'ok' for c in result.candidates)} usable")
        print("\n".join(result.table().splitlines()[:6]))
        hand = scheduled_gemm(n)
        a = aligned(rng.standard_normal((n, n), dtype=np.float32))  # 64-byte aligned: TVM takes only those
        b = aligned(rng.standard_normal((n, n), dtype=np.float32))
        c = aligned(np.zeros((n, n), np.float32))
        tvm1, tvm_note = (None, "left out (--no-tvm)") if args.no_tvm else tvm_gemm(n, threads=1)
        impls = {"tuned": lambda: result.function(a, b, c), "hand": lambda: hand(a, b, c),
                 "OpenBLAS": lambda: np.matmul(a, b, out=c)}  # fmt: skip
        if tvm1 is not None:
            check(tvm1, a, b, c, "TVM")
            impls["TVM"] = lambda: tvm1(a, b, c)
        seconds = time_interleaved(impls, args.reps)
        row = {"n": n, "search_s": result.search_s, "stored": result.from_database, "points": len(grid),
               "winner": result.parameters, "kernel": inner_loop_fmas(result.function.asm),
               **{k: 2 * n**3 / s / 1e9 for k, s in seconds.items()}}  # fmt: skip
        if args.threads > 1 and set_blas_threads is not None:
            par = oi.tune(gemm_plan, parallel_grid(n, result.parameters, args.threads), name="gemm",
                          reference=gemm_reference, jobs=1, repeats=args.repeats, finalists=2,
                          use_db=not args.no_cache, progress=False)  # fmt: skip
            tvm2 = None if args.no_tvm else tvm_gemm(n, threads=args.threads)[0]

            def blas_n():
                set_blas_threads(args.threads)
                try:
                    np.matmul(a, b, out=c)
                finally:
                    set_blas_threads(1)

            impls = {"tuned par": lambda: par.function(a, b, c), "OpenBLAS par": blas_n}
            if tvm2 is not None:
                check(tvm2, a, b, c, "TVM, parallel")
                impls["TVM par"] = lambda: tvm2(a, b, c)
            seconds = time_interleaved(impls, args.reps, settle_s=0.25)
            row.update({k: 2 * n**3 / s / 1e9 for k, s in seconds.items()})
            row["par_search_s"], row["par_nc"] = par.search_s, par.parameters["P_NC"]
        rows.append(row)

    def winner(p: dict) -> str:
        return " ".join(f"{k.removeprefix('P_')}={v}" for k, v in p.items() if k not in ("P_N", "P_THREADS"))

    def ratio(row, name, base):
        return f"{row[name] / row[base]:.2f}x" if name in row and base in row else "-"

    def gf(row, name):
        return f"{row[name]:.1f}" if name in row else "-"

    print(f"\nGFLOP/s; one thread (OpenBLAS pinned to one), medians of {args.reps} interleaved rounds")
    print(f"{'N':>5} {'tuned':>7} {'hand':>7} {'TVM':>7} {'OpenBLAS':>9} {'tuned/BLAS':>11} {'hand/BLAS':>10} "
          f"{'TVM/BLAS':>9} {'search s':>9} {'points':>7}  winner")  # fmt: skip
    for r in rows:
        stored = " (stored)" if r["stored"] else ""
        print(f"{r['n']:>5} {gf(r, 'tuned'):>7} {gf(r, 'hand'):>7} {gf(r, 'TVM'):>7} {gf(r, 'OpenBLAS'):>9} "
              f"{ratio(r, 'tuned', 'OpenBLAS'):>11} {ratio(r, 'hand', 'OpenBLAS'):>10} {ratio(r, 'TVM', 'OpenBLAS'):>9} "
              f"{r['search_s']:>9.1f}{stored} {r['points']:>7}  {winner(r['winner'])}")  # fmt: skip
    for r in rows:
        print(f"N={r['n']}: the winner's inner loop: {r['kernel']}")
    if any("tuned par" in r for r in rows):
        print(f"\n{args.threads} threads: the winner with plan.parallelize(j), OpenBLAS and TVM set to {args.threads}")
        print(f"{'N':>5} {'tuned':>7} {'TVM':>7} {'OpenBLAS':>9} {'tuned/BLAS':>11} {'TVM/BLAS':>9} "
              f"{'x 1 thread':>10} {'BLAS x 1':>9} {'search s':>9}  NC")  # fmt: skip
        for r in rows:
            if "tuned par" in r:
                print(f"{r['n']:>5} {gf(r, 'tuned par'):>7} {gf(r, 'TVM par'):>7} {gf(r, 'OpenBLAS par'):>9} "
                      f"{ratio(r, 'tuned par', 'OpenBLAS par'):>11} {ratio(r, 'TVM par', 'OpenBLAS par'):>9} "
                      f"{ratio(r, 'tuned par', 'tuned'):>10} {ratio(r, 'OpenBLAS par', 'OpenBLAS'):>9} "
                      f"{r['par_search_s']:>9.1f}  {r['par_nc']}")  # fmt: skip
    print(f"TVM: {'left out (--no-tvm)' if args.no_tvm else tvm_available()[1]}")


if __name__ == "__main__":
    main()
