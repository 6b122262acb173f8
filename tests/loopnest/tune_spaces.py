"""Tiny tuning spaces the tuner's tests share: module-level builders, so a process pool can send
them to its workers (and the CLI tests load this file as a space file)."""

from __future__ import annotations

import numpy as np

import oi_compiler as oi

N = 16
P_TI, P_TJ, P_BAD = oi.create_parameters()


def gemm_plan():
    """C += A @ B (16x16x16) tiled by (P_TI, P_TJ); with P_BAD the logic adds B twice (wrong)."""
    A = oi.Array(role=oi.Role.INPUT, shape=(N, N))
    B = oi.Array(role=oi.Role.INPUT, shape=(N, N))
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(N, N))
    nest = oi.Nest(shape=(N, N, N))
    i, j, k = nest.get_indices()

    if P_BAD:

        @nest.iteration_logic
        def _():
            C[i, j] += A[i, k] * (B[k, j] + B[k, j])

    else:

        @nest.iteration_logic
        def _():
            C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    ii = schedule.split(i, P_TI)
    jj = schedule.split(j, P_TJ)
    schedule.reorder(i, j, k, ii, jj)
    plan = schedule.create_plan()
    plan.vectorize(jj)
    return plan, (A, B, C)


def gemm_reference(a, b, c):
    c += a @ b


def tune_space():
    grid = oi.create_parameter_grid({P_TI: [0, 4], P_TJ: [8], P_BAD: [False, True]})
    return gemm_plan, grid, gemm_reference


def all_invalid_space():
    return gemm_plan, oi.create_parameter_grid({P_TI: [0, -1], P_TJ: [8], P_BAD: [False]})


def gemm_inputs(seed: int = 1):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((N, N), dtype=np.float32) for _ in range(2))
    return a, b, np.zeros((N, N), np.float32)


#: what tune_space()'s search finds for each point
EXPECTED = {"P_TI=0 P_TJ=8 P_BAD=False": "invalid", "P_TI=0 P_TJ=8 P_BAD=True": "invalid",
            "P_TI=4 P_TJ=8 P_BAD=False": "ok", "P_TI=4 P_TJ=8 P_BAD=True": "wrong results"}  # fmt: skip


def verdicts(result) -> dict[str, str]:
    return {c.point: c.status for c in result.candidates}
