"""Running things at once: executors shared by threads, and loops run in parallel.

- Two threads stepping one executor used to corrupt the heap on `device="cpu"` (the native step
  and the host's growth callback raced): an executor's calls now run one at a time, so a shared
  executor ends where the same steps run one after another end.
- `plan.parallelize` of an index the logic reduces over raced (`C[i, j] += ...` from several
  threads): refused, as `plan.bind` of such an index is on a GPU.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import oi_compiler as oi

APPEND = """
dynamic { x: f32[1, 64]; }
persistent { t: i32 @init(0); K(p): f32[1, 64] @table; }
block entry { cache.write x >> K[t]; cache.increment t; }
"""


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_threads_sharing_an_executor_step_one_at_a_time(device: str) -> None:
    """Four threads append 200 entries each through one executor (the table grows, so the host
    reallocates it, many times): every entry arrives once, none is lost or torn."""
    exe = oi.Simulator(None, oi.parse_graph(APPEND, "append.oi"), device=device).make_executor()
    threads, steps = 4, 200
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for s in range(steps):
                with exe.lock:  # insert and step as one unit, so this thread's x is what it steps
                    exe.insert(x=np.full((1, 64), n * steps + s, np.float32))
                    exe.step()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    table = exe.state("K")
    assert table.shape == (threads * steps, 1, 64)
    assert sorted(table[:, 0, 0].tolist()) == list(range(threads * steps))  # each entry once
    assert (table == table[:, :, :1]).all()  # no entry torn between two writers
    assert int(exe.state("t")) == threads * steps


def test_one_thread_needs_no_lock() -> None:
    """insert and step take the lock themselves: calling them while holding it must not be needed,
    and calling them without it from one thread just works."""
    exe = oi.Simulator(None, oi.parse_graph(APPEND, "append.oi"), device="cpu").make_executor()
    exe.insert(x=np.ones((1, 64), np.float32))
    exe.step()
    exe.reset()
    assert int(exe.state("t")) == 0


def test_parallelizing_a_reduction_index_is_refused() -> None:
    M = N = K = 16
    A = oi.Array(role=oi.Role.INPUT, shape=(M, K))
    B = oi.Array(role=oi.Role.INPUT, shape=(K, N))
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(M, N))
    nest = oi.Nest((M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    schedule.reorder(k, i, j)
    plan = schedule.create_plan()
    with pytest.raises(oi.OiError, match=r"parallelize: the logic reduces over k \(every iteration of k updates "
                                         r"the same elements of C\)"):  # fmt: skip
        plan.parallelize(k)  # refused when it is called
    # over i it is safe, and right
    plan = nest.create_schedule().create_plan()
    plan.parallelize(i, max_threads=2)
    a, b = np.random.rand(M, K).astype(np.float32), np.random.rand(K, N).astype(np.float32)
    c = np.zeros((M, N), np.float32)
    plan.build()(a, b, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
