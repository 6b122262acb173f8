"""f32 GEMM `C += A @ B` tuned by `oi.tune` over a grid of BLIS-style schedules, side by side with
benchmarks/gemm.py's hand-picked schedule and OpenBLAS (numpy, one thread), with the search time.

    OPENBLAS_NUM_THREADS is pinned to 1 here, before numpy loads.
    .venv/bin/python benchmarks/tune_gemm.py [--sizes 1024,2048] [--jobs 2] [--reps 7] [--quick] [--no-cache]

The grid is the hand schedule's family (order j, k, i, jj, kk, ii, jjj; B's panel packed as a
multicache at kk triggered at i, A's panel column-major at jj, C's register tile at kk; ii
unrolled, jjj vectorised) with its sizes as parameters: the j panel NC (jj), the k panel KC (kk),
the register tile MR x NR (ii, jjj), the caches on or off, and double buffering of B's panel. The
hand schedule (NC=256, KC=128, MR=6, NR=16, caches, no double buffer) is one of its points. The
search builds, checks (against numpy) and briefly times every point in `--jobs` processes, then
times the fastest `--finalists` again here, one after another; the table's timings interleave
tuned, hand and OpenBLAS and report medians (the machine is shared and noisy). A second run
reuses the tuning database's winner (the search time shown is the stored one) unless `--no-cache`.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy loads OpenBLAS

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import oi_compiler as oi  # noqa: E402

P_N, P_NC, P_KC, P_MR, P_NR, P_CACHES, P_DB = oi.create_parameters()


def gemm_plan():
    """The GEMM with the grid's parameters in place of benchmarks/gemm.py's sizes."""
    n = int(P_N)
    A = oi.Array(role=oi.Role.INPUT, shape=(n, n), name="A")
    B = oi.Array(role=oi.Role.INPUT, shape=(n, n), name="B")
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(n, n), name="C")
    nest = oi.Nest(shape=(n, n, n))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    jj = schedule.split(j, min(int(P_NC), n))
    kk = schedule.split(k, min(int(P_KC), n))
    ii = schedule.split(i, P_MR)
    jjj = schedule.split(jj, P_NR)
    schedule.reorder(j, k, i, jj, kk, ii, jjj)
    plan = schedule.create_plan(target="cpu")
    if P_CACHES:
        plan.cache(B, index=kk, trigger_index=i, double_buffer=P_DB)
        plan.cache(A, index=jj, layout=oi.Layout.LAST_MAJOR)
        plan.cache(C, index=kk)
    plan.unroll(ii)
    plan.vectorize(jjj)
    return plan, (A, B, C)


def gemm_reference(a, b, c):
    c += a @ b


def gemm_grid(n: int, quick: bool = False):
    choices = {
        P_N: [n],
        P_NC: [256, 512] if quick else [128, 256, 512],
        P_KC: [128, 256],
        P_MR: [4, 6] if quick else [4, 6, 8],
        P_NR: [16, 32],
        P_CACHES: [True] if quick else [True, False],
        P_DB: [False, True],
    }

    def fits(n, nc, kc, mr, nr, caches, db):
        # at most 24 ymm accumulators (AVX-512VL has 32 ymm registers); double buffering needs caches
        return mr * nr <= 192 and (caches or not db)

    return oi.create_parameter_grid(choices, filter_func=fits)


def tune_space():
    """For `oi-tune benchmarks/tune_gemm.py`: N=1024 (OI_TUNE_GEMM_N to change it)."""
    return gemm_plan, gemm_grid(int(os.environ.get("OI_TUNE_GEMM_N", "1024"))), gemm_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2048")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reps", type=int, default=7, help="interleaved timing rounds of the final table")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds of the search's finalists")
    parser.add_argument("--finalists", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smaller grid (32 points)")
    parser.add_argument("--no-cache", action="store_true", help="search even when the tuning database has a winner")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gemm import scheduled_gemm

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
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.zeros((n, n), np.float32)
        impls = {"tuned": lambda: result.function(a, b, c), "hand": lambda: hand(a, b, c),
                 "OpenBLAS": lambda: np.matmul(a, b, out=c)}  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in impls}
        for name, run in impls.items():
            run()  # warm up
        for _ in range(args.reps):
            for name, run in impls.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        gflops = {name: 2 * n**3 / statistics.median(ts) / 1e9 for name, ts in times.items()}
        winner = " ".join(f"{k.removeprefix('P_')}={v}" for k, v in result.parameters.items() if k != "P_N")
        stored = " (stored)" if result.from_database else ""
        rows.append((n, gflops, result.search_s, stored, len(grid), winner))
    print(f"\n{'N':>5} {'tuned GF/s':>11} {'hand GF/s':>10} {'OpenBLAS GF/s':>14} {'tuned/BLAS':>11} "
          f"{'hand/BLAS':>10} {'search s':>9} {'points':>7}  winner")  # fmt: skip
    for n, g, search_s, stored, points, winner in rows:
        print(f"{n:>5} {g['tuned']:>11.1f} {g['hand']:>10.1f} {g['OpenBLAS']:>14.1f} "
              f"{g['tuned'] / g['OpenBLAS']:>10.2f}x {g['hand'] / g['OpenBLAS']:>9.2f}x "
              f"{search_s:>9.1f}{stored} {points:>7}  {winner}")  # fmt: skip


if __name__ == "__main__":
    main()
